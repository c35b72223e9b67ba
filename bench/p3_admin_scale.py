"""P3: the admin at 100,000 products against the same pages at 100.

Run by ``make bench`` after the suite (or alone: ``python bench/p3_admin_scale.py``).
Both sizes live in one PostgreSQL database of their own (``P3_BENCH_DB``,
default ``artfactory_bench_p3``, recreated each run), one schema each, and
are filled with ``bulk_create``: products with their media file rows, order
items, orders and tags. Every page is fetched through Django's test Client
as a signed-in superuser, the two sizes interleaved, five times each; the
median time and the query count of each page are compared and the P3
section of docs/benchmarks.md is rewritten.
"""
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "artfactory.settings")

from bench.own_database import fresh_database, write_section  # noqa: E402
PG_NAME = os.environ.get("P3_BENCH_DB", "artfactory_bench_p3")
# Items per order. Small: 100 products, the newest order of 50 items (as
# many as an order page shows) and 50 orders of one, so the orders list is
# as full as at 100,000 (1,000 orders of 100).
ORDERS = {"small": [50] + [1] * 50, "large": [100] * 1000}
SIZES = {size: sum(orders) for size, orders in ORDERS.items()}
# Both sizes render pages of the same length, so the ratio measures the
# database, not the longer page: 100 cards and 50 orders a page.
PAGE_LENGTHS = {"product": 100, "order": 50}
REPEATS = 5
TARGET_RATIO = 1.3
MAX_QUERIES = 12
BATCH = 5_000
WORDS = (
    "kite dune lantern harbor fox owl meadow glacier neon city forest river "
    "portrait castle robot garden desert storm candle violin comet canyon "
    "orchard temple bridge lighthouse moth tiger whale cactus cliff ember"
).split()
TAGS = [f"tag-{n:02d}" for n in range(40)]
SECTION_START = "<!-- p3-admin-scale:start -->"
SECTION_END = "<!-- p3-admin-scale:end -->"


def _fresh_database() -> str:
    """Drop and create the benchmark database; its URL."""
    return fresh_database(PG_NAME, extensions=("pg_trgm",))  # shared by both schemas


def use_schema(schema: str) -> None:
    """Point the default connection, open or next, at one size's schema."""
    from django.db import connection

    connection.settings_dict.setdefault("OPTIONS", {})["options"] = (
        f"-c search_path={schema},public"
    )
    if connection.connection is not None:
        with connection.cursor() as cursor:
            cursor.execute(f"SET search_path TO {schema}, public")


def _fill(size: str) -> dict[str, Any]:
    """Migrate one size's schema and fill it; what its pages are addressed by."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {size}")
    use_schema(size)
    call_command("migrate", verbosity=0)
    call_command("load_seed_data", verbosity=0)
    user = get_user_model().objects.create_superuser("bench", "", "bench")
    facts = fill_inventory(ORDERS[size], uniform=size == "small", user=user)
    with connection.cursor() as cursor:  # visibility map and statistics, as autovacuum keeps them
        cursor.execute("VACUUM ANALYZE")
    return {**facts, "user": user}


def fill_inventory(order_sizes: list[int], uniform: bool = False,
                   user: Any = None) -> dict[str, Any]:
    """Orders of the given sizes, their items, products, media rows and tags.

    Needs the seeded catalog; everything goes in by ``bulk_create``. The
    newest order is running (a tenth of its items failed, a tenth pending);
    every older one is finished, one item in fifty failed. Prompts are
    eight words from ``WORDS``, each product has two of the ``TAGS``, five
    in six are rated and one in seven is a favorite; creation times are one
    second apart. ``uniform`` gives every product what the filters and
    searches of ``page_urls`` look for, so each of those pages is full.
    """
    from django.db import connection, transaction

    from factory.models import (
        FactoryMachine, ItemStatus, MediaFile, Order, OrderItem, OrderStatus,
        Product, Project, Tag,
    )

    rng = random.Random(3)
    machines = list(FactoryMachine.objects.filter(modality="image")[:6])
    running = [ItemStatus.COMPLETED] * 8 + [ItemStatus.FAILED, ItemStatus.PENDING]
    finished = [ItemStatus.COMPLETED] * 49 + [ItemStatus.FAILED]
    with transaction.atomic():
        projects = Project.objects.bulk_create(
            Project(name=f"Project {n}") for n in range(8))
        tags = Tag.objects.bulk_create(Tag(name=name) for name in TAGS)
        orders = Order.objects.bulk_create(
            (Order(machine=machines[n % len(machines)], project=projects[n % 8],
                   prompt="a {red|blue} " + WORDS[n % len(WORDS)], item_count=size,
                   status=OrderStatus.RUNNING if n == 0 else OrderStatus.DONE_WITH_FAILURES,
                   created_by=user)
             for n, size in enumerate(order_sizes)), batch_size=BATCH)
        items = OrderItem.objects.bulk_create(
            (OrderItem(order=order, machine=order.machine, index=index,
                       status=(running if n == 0 else finished)[index % (10 if n == 0 else 50)],
                       parameters={}, seed=order.pk * 1000 + index)
             for n, (order, size) in enumerate(zip(orders, order_sizes))
             for index in range(size)), batch_size=BATCH)
        media = MediaFile.objects.bulk_create(
            (MediaFile(content_hash=f"{n:064x}", file=f"files/{n:064x}.png",
                       thumbnail=f"thumbs/{n:064x}.webp", media_type="image",
                       content_type="image/png", size=1000, width=64, height=64)
             for n in range(len(items))), batch_size=BATCH)
        made = Product.objects.bulk_create(
            (Product(item=item, media=file, machine=machines[0] if uniform else item.machine,
                     project=projects[1] if uniform else projects[n % 8],
                     media_type="image", parameters={}, seed=item.seed,
                     prompt=" ".join(["lantern"] * uniform
                                     + [rng.choice(WORDS) for _ in range(8 - uniform)]),
                     is_favorite=uniform or n % 7 == 0,
                     rating=5 if uniform else (n % 6) or None)
             for n, (item, file) in enumerate(zip(items, media))), batch_size=BATCH)
        through = Product.tags.through
        through.objects.bulk_create(
            (through(product_id=product.pk, tag_id=tag.pk)
             for product in made
             for tag in ([tags[5], rng.choice(tags[6:])] if uniform
                         else rng.sample(tags, 2))), batch_size=BATCH)
        with connection.cursor() as cursor:  # distinct, ordered creation times
            for table in ("factory_product", "factory_order"):
                cursor.execute(f"UPDATE {table} SET created_at = "
                               f"CURRENT_TIMESTAMP - id * INTERVAL '1 second'"
                               if connection.vendor == "postgresql" else
                               f"UPDATE {table} SET created_at = "
                               f"datetime(created_at, '-' || id || ' seconds')")
    return {"order": orders[0].pk, "machine": machines[0].pk, "project": projects[1].pk,
            "tag": tags[5].pk, "products": len(made)}


def page_urls(facts: dict[str, Any]) -> dict[str, str]:
    """Each measured page and its address at one size."""
    last = -(-facts["products"] // PAGE_LENGTHS["product"])
    grid = "/admin/factory/product/"
    return {
        "products grid": grid,
        "products: type filter": grid + "?media_type__exact=image",
        "products: favorite filter": grid + "?is_favorite__exact=1",
        "products: rating filter": grid + "?min_rating=5",
        "products: machine filter": grid + f"?machine__id__exact={facts['machine']}",
        "products: project filter": grid + f"?project__id__exact={facts['project']}",
        "products: tag filter": grid + f"?tags__id__exact={facts['tag']}",
        "products: search a word": grid + "?q=lantern",
        "products: search a tag": grid + "?q=tag-05",
        "products: last page": grid + f"?p={last}",
        "orders list": "/admin/factory/order/",
        "items list": "/admin/factory/orderitem/",
        "an order page": f"/admin/factory/order/{facts['order']}/change/",
        "dashboard": "/admin/",
    }


def _measure(clients: dict[str, Any], pages: dict[str, dict[str, str]]) -> list[dict]:
    """Median seconds and query count of every page at both sizes."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    timings: dict[tuple[str, str], list[float]] = {}
    queries: dict[tuple[str, str], int] = {}
    names = list(pages["small"])
    for size in SIZES:  # warm caches and connections once, untimed
        use_schema(size)
        for name in names:
            clients[size].get(pages[size][name])
    for _ in range(REPEATS):
        for name in names:
            for size in SIZES:
                use_schema(size)
                with CaptureQueriesContext(connection) as captured:
                    start = time.perf_counter()
                    response = clients[size].get(pages[size][name])
                    seconds = time.perf_counter() - start
                if response.status_code != 200:
                    raise SystemExit(f"{name} ({size}) answered {response.status_code}")
                timings.setdefault((name, size), []).append(seconds)
                queries[(name, size)] = len(captured)
    rows = []
    for name in names:
        small = statistics.median(timings[(name, "small")])
        large = statistics.median(timings[(name, "large")])
        counts = (queries[(name, "small")], queries[(name, "large")])
        rows.append({"page": name, "small": small, "large": large,
                     "ratio": large / small, "queries": counts})
    return rows


def _table(rows: list[dict]) -> str:
    lines = [
        "| page | 100 products | 100,000 products | ratio | queries (100 / 100k) | target met |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        small, large = row["queries"]
        met = (row["ratio"] <= TARGET_RATIO and small == large and large <= MAX_QUERIES)
        lines.append(
            f"| {row['page']} | {row['small'] * 1000:.1f} ms | {row['large'] * 1000:.1f} ms "
            f"| {row['ratio']:.2f}× | {small} / {large} | {'yes' if met else '**no**'} |")
    return "\n".join(lines)


def _write(rows: list[dict]) -> None:
    """Replace the P3 section of docs/benchmarks.md, keeping the rest."""
    from datetime import datetime, timezone

    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"{SECTION_START}\n## P3: the admin at 100,000 products\n\n"
        f"Written by `bench/p3_admin_scale.py` ({stamp}), run by `make bench`.\n"
        "PostgreSQL, 100 versus 100,000 products, each with its media file row,\n"
        f"order item and two of {len(TAGS)} tags. At 100,000: 1,000 orders of 100 items,\n"
        "varied machines, projects, ratings and favorites. At 100: the newest order\n"
        "of 50 items and 50 orders of one, every product matching the filters and\n"
        "searches measured, so that each page is as full at both sizes: "
        f"{PAGE_LENGTHS['product']} cards\nand {PAGE_LENGTHS['order']} orders a page "
        "(the bench sets these lengths). The ratio\nthen measures what grows with "
        "the tables, not a longer page. Median of\n"
        f"{REPEATS} requests per page, the sizes interleaved, through Django's test "
        "Client as\na signed-in superuser, after `VACUUM ANALYZE`. Target: at most "
        f"{TARGET_RATIO}× the time at\n100 products, the same number of queries, "
        f"at most {MAX_QUERIES}.\n\n" + _table(rows) + "\n\n" + NOTES + SECTION_END + "\n"
    )
    write_section(SECTION_START, SECTION_END, section)


NOTES = """What keeps the pages flat:

- Counting (`admin_ext/paging.py`): an unfiltered list reads PostgreSQL's
  planner estimate (`pg_class.reltuples`: "about 100,000 products"), exact
  below 10,000 rows; a filtered list is counted only up to a bound
  (`LIMIT n+1`: "1,100+ products"). No page runs `COUNT(*)` over a table.
- Pages: the page's ids are picked from the filtered, ordered list through
  the (-created_at, -id) index, and only those rows are read and joined, so
  a deep page skips index entries, not joined rows.
- Search (`factory/search.py`): pg_trgm GIN indexes on `UPPER(prompt)` and
  `UPPER(notes)`, the expressions `icontains` compares; tagged products as
  `id = ANY(ARRAY(…))`, which PostgreSQL can OR with those index scans. A
  rare word is read through the indexes, a common one along the grid's
  order until the page is full. No DISTINCT over the grid's columns.
  SQLite keeps plain `icontains` (and `id IN (…)` for tags).
- Filters: rating from fixed choices (no `SELECT DISTINCT rating`), tags
  through a subquery of ids instead of a join.
- Orders: item tallies are one grouped query for the page's orders; an
  order's page reads its machine, provider and project with the order.
- Dashboard: products by estimate, failed items by a bounded count.

Most of a page's time is rendering its cards or rows, the same at both
sizes. On a busy machine the absolute times vary by a fifth between runs;
the ratio of the interleaved medians is what the target reads.

"""


def _set_page_lengths() -> None:
    """The same page length at both sizes (see PAGE_LENGTHS)."""
    from django.contrib import admin

    from factory.models import Order, Product

    admin.site._registry[Product].list_per_page = PAGE_LENGTHS["product"]
    admin.site._registry[Order].list_per_page = PAGE_LENGTHS["order"]


def main() -> None:
    import django

    os.environ["DATABASE_URL"] = _fresh_database()
    os.environ.setdefault("DB_CONN_MAX_AGE", "600")
    django.setup()
    from django.conf import settings
    from django.test import Client

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    # No setup_test_environment(): its instrumented templates copy every
    # context for the test Client, which costs more than the pages do.
    settings.DEBUG = False
    _set_page_lengths()
    clients, urls = {}, {}
    for size in SIZES:
        started = time.perf_counter()
        facts = _fill(size)
        print(f"filled {size} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        clients[size] = Client()
        clients[size].force_login(facts["user"])
        urls[size] = page_urls(facts)
    rows = _measure(clients, urls)
    _write(rows)
    print(_table(rows))


if __name__ == "__main__":
    main()

"""P5: the admin under load, served by gunicorn while production runs.

Run alone (``python bench/p5_admin_load.py [--seconds 60]``, ``make
bench-load``) or by ``make bench`` after P3. One PostgreSQL database of its
own (``P5_BENCH_DB``, default ``artfactory_bench_p5``, recreated each run)
holds the inventory of P3 (``fill_inventory``: 1,000 orders of 100 items,
100,000 products) and ``P5_USERS`` staff users with the operator role.
Every product's thumbnail is a file in a temporary MEDIA_ROOT.

The servers are the Procfile's: ``collectstatic`` with STATIC_MANIFEST=1
into a temporary STATIC_ROOT, gunicorn with artfactory/gunicorn.conf.py on
a free port of 127.0.0.1, and a ``run_worker`` and a ``run_foreman``
producing a demo order all along. Each user signs in through the login
form with a cookie jar of its own (``httpx.Client``), then every
``THINK_SECONDS`` asks for an inventory, order or dashboard page and the
thumbnails on it that it has not fetched yet, as a browser keeps them
(a thumbnail named by its content hash answers ``immutable``). Then
``CEILING_CLIENTS`` of them loop on the same mix without waiting. The
server's CPU is read from /proc for gunicorn's master and its workers.
The P5 section of docs/benchmarks.md is rewritten.
"""
import argparse
import html
import io
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "artfactory.settings")

from bench.own_database import fresh_database, write_section  # noqa: E402
from bench.p3_admin_scale import fill_inventory  # noqa: E402

PG_NAME = os.environ.get("P5_BENCH_DB", "artfactory_bench_p5")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
USERS = int(os.environ.get("P5_USERS", 50))
ORDERS = [100] * (int(os.environ.get("P5_PRODUCTS", 100_000)) // 100)
THINK_SECONDS = 5.0
CEILING_CLIENTS = 16
CEILING_SECONDS = 20.0
THUMBNAIL_SAMPLE = 400
PAGE_SAMPLE = 10
# The demo order produced during the run: small pictures, a short latency,
# a few slots, enough items to outlast both phases.
DEMO_ITEMS = 3000
DEMO_LATENCY = "0.5"
DEMO_SLOTS = 4
TARGET_P95_MS = 300
PASSWORD = "p5-bench-password"
IMG_SRC = re.compile(r'<img[^>]*\ssrc="([^"]+)"')
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
SECTION_START = "<!-- p5-admin-load:start -->"
SECTION_END = "<!-- p5-admin-load:end -->"


def _fill(media_root: Path) -> dict[str, Any]:
    """The catalog, the users, 100,000 products with thumbnail files, a demo order."""
    from django.contrib.auth import get_user_model
    from PIL import Image
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command
    from django.db import connection

    from factory.models import FactoryMachine, MediaFile, Order
    from factory.ordering import place_order
    from factory.roles import OPERATOR, grant_role

    with connection.cursor() as cursor:  # as P3 makes it
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
    call_command("migrate", verbosity=0)
    call_command("load_seed_data", verbosity=0)
    User = get_user_model()
    hashed = make_password(PASSWORD)  # hashed once: the users share the password
    users = User.objects.bulk_create(
        User(username=f"operator-{n:02d}", password=hashed) for n in range(USERS))
    for user in users:
        grant_role(user, OPERATOR)
    facts = fill_inventory(ORDERS, user=users[0])
    picture = io.BytesIO()  # every thumbnail holds the same picture
    Image.new("RGB", (256, 256), (200, 120, 40)).save(picture, "WEBP")
    (media_root / "thumbs").mkdir(parents=True)
    for name in MediaFile.objects.values_list("thumbnail", flat=True).iterator():
        (media_root / name).write_bytes(picture.getvalue())
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    from bench.production_bench import _reset_demo_limits

    _reset_demo_limits(DEMO_SLOTS)
    order = Order.objects.create(
        title=f"load {DEMO_ITEMS} demo images", item_ceiling=DEMO_ITEMS,
        machine=FactoryMachine.objects.get(slug="demo-image"),
        prompt="a paper kite over dunes at dusk",
        base_parameters={"width": 64, "height": 64, "num_images": 1},
        runs=DEMO_ITEMS, seed_strategy="increment", seed=1, created_by=users[0],
    )
    place_order(order, users[0])
    return {**facts, "demo_order": order.pk,
            "usernames": [user.username for user in users]}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Servers:
    """gunicorn, a run_worker and a run_foreman, as the Procfile starts them."""

    def __init__(self, tmp: Path, media_root: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ, "DATABASE_URL": os.environ["DATABASE_URL"],
            "REDIS_URL": REDIS_URL, "MEDIA_ROOT": str(media_root),
            "STATIC_ROOT": str(tmp / "static"), "STATIC_MANIFEST": "1",
            "DEMO_LATENCY_SECONDS": DEMO_LATENCY, "PORT": str(self.port),
            "PYTHONPATH": str(ROOT),
        }
        self.log = open(tmp / "processes.log", "ab")  # noqa: SIM115
        self.log_path = tmp / "processes.log"
        self.processes: list[subprocess.Popen] = []
        self.web: subprocess.Popen | None = None

    def _start(self, *args: str) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, *args], env=self.env, cwd=ROOT,
                                   stdout=self.log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def __enter__(self) -> "Servers":
        subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput",
                        "--verbosity", "0"], env=self.env, cwd=ROOT, check=True)
        self.web = self._start("-m", "gunicorn", "--config", "artfactory/gunicorn.conf.py")
        self._start("manage.py", "run_worker")
        self._start("manage.py", "run_foreman")
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(self.url + "/admin/login/", timeout=2)
                return self
            except httpx.HTTPError:
                if time.monotonic() > deadline or self.web.poll() is not None:
                    raise SystemExit("gunicorn did not answer:\n"
                                     + self.log_path.read_text()[-4000:]) from None
                time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.log.close()

    def cpu_seconds(self) -> float:
        """User and system CPU of gunicorn's master and its workers, children included."""
        ticks = os.sysconf("SC_CLK_TCK")
        master = self.web.pid
        total = 0
        for pid in [master, *_children(master)]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:  # a worker gone between listing and reading
                continue
            total += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
        return total / ticks


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


class User:
    """One signed-in operator: its own cookie jar and thumbnail cache."""

    def __init__(self, base_url: str, username: str, pages: list[str], seed: int) -> None:
        import httpx

        # Idle connections are dropped before gunicorn's keep-alive (2 s) ends
        # them, as browsers do: a request sent on a connection the server is
        # closing at that moment is reset.
        self.client = httpx.Client(base_url=base_url, timeout=60,
                                   limits=httpx.Limits(keepalive_expiry=1.0))
        self.pages = pages
        self.rng = random.Random(seed)
        self.seen: set[str] = set()
        self.username = username

    def sign_in(self) -> None:
        form = self.client.get("/admin/login/")
        token = CSRF_INPUT.search(form.text).group(1)
        answer = self.client.post("/admin/login/", data={
            "username": self.username, "password": PASSWORD,
            "csrfmiddlewaretoken": token, "next": "/admin/"})
        if answer.status_code != 302 or "sessionid" not in self.client.cookies:
            raise SystemExit(f"{self.username} could not sign in: {answer.status_code}")

    def visit(self, record: "Record") -> None:
        """One page and the thumbnails on it not fetched before."""
        path = self.rng.choice(self.pages)
        text = record.fetch(self.client, path, "page")
        for src in IMG_SRC.findall(text or ""):
            src = html.unescape(src)
            if src.startswith("/media/") and src not in self.seen:
                self.seen.add(src)
                record.fetch(self.client, src, "thumbnail")


class Record:
    """Latencies by kind and the errors, shared by the users' threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seconds: dict[str, list[float]] = {"page": [], "thumbnail": []}
        self.errors: list[str] = []

    def fetch(self, client: Any, path: str, kind: str) -> str | None:
        start = time.perf_counter()
        try:
            response = client.get(path)
        except Exception as exc:  # noqa: BLE001 - every failure is counted
            with self.lock:
                self.errors.append(f"{path}: {exc!r}")
            return None
        seconds = time.perf_counter() - start
        with self.lock:
            self.seconds[kind].append(seconds)
            if not 200 <= response.status_code < 400:
                self.errors.append(f"{path}: HTTP {response.status_code}")
        return response.text if kind == "page" else None


def _named_pages(facts: dict[str, Any]) -> dict[str, str]:
    """Each page of the mix by name."""
    grid = "/admin/factory/product/"
    return {
        "product grid, page 1": grid, "product grid, page 2": grid + "?p=2",
        "product grid, page 3": grid + "?p=3", "orders list": "/admin/factory/order/",
        "running order": f"/admin/factory/order/{facts['demo_order']}/change/",
        "finished order": f"/admin/factory/order/{facts['order']}/change/",
        "dashboard": "/admin/",
    }


def _pages(facts: dict[str, Any]) -> list[str]:
    """The page mix: inventory, orders, dashboard, a third each."""
    named = _named_pages(facts)
    return [named["product grid, page 1"], named["product grid, page 2"],
            named["product grid, page 3"], named["orders list"], named["running order"],
            named["orders list"], named["finished order"]] + [named["dashboard"]] * 3


def _cpu_by_page(servers: "Servers", user: "User", facts: dict[str, Any]) -> dict[str, float]:
    """Server CPU seconds per request of each page, one user asking alone."""
    found = {}
    for name, path in _named_pages(facts).items():
        user.client.get(path)  # warm
        before = servers.cpu_seconds()
        for _ in range(PAGE_SAMPLE):
            response = user.client.get(path)
            if response.status_code != 200:
                raise SystemExit(f"{path}: HTTP {response.status_code}")
        found[name] = (servers.cpu_seconds() - before) / PAGE_SAMPLE
    return found


def _think_time_phase(users: list[User], seconds: float) -> Record:
    """Each user visits a page every THINK_SECONDS, starts spread over the first."""
    record = Record()
    start = time.monotonic()
    end = start + seconds

    def run(user: User, offset: float) -> None:
        due = start + offset
        while due < end:
            time.sleep(max(0.0, due - time.monotonic()))
            user.visit(record)
            due += THINK_SECONDS

    threads = [threading.Thread(target=run, args=(user, n * THINK_SECONDS / len(users)))
               for n, user in enumerate(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return record


def _ceiling_phase(users: list[User], seconds: float) -> tuple[Record, float]:
    """Users looping on the mix without waiting; the record and the wall time."""
    record = Record()
    start = time.monotonic()
    end = start + seconds

    def run(user: User) -> None:
        while time.monotonic() < end:
            user.visit(record)

    threads = [threading.Thread(target=run, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return record, time.monotonic() - start


def _thumbnail_cpu(servers: Servers, users: list[User]) -> float:
    """Server CPU seconds per thumbnail: a few users fetch theirs again, nothing else."""
    record = Record()
    batches = [sorted(user.seen)[:THUMBNAIL_SAMPLE // len(users)] for user in users]
    before = servers.cpu_seconds()

    def run(user: User, paths: list[str]) -> None:
        for path in paths:
            record.fetch(user.client, path, "thumbnail")

    threads = [threading.Thread(target=run, args=pair) for pair in zip(users, batches)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if record.errors:
        raise SystemExit(f"thumbnails failed: {record.errors[:5]}")
    return (servers.cpu_seconds() - before) / max(len(record.seconds["thumbnail"]), 1)


def _ms(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _produced(order_pk: int) -> int:
    from factory.models import ItemStatus, OrderItem

    return OrderItem.objects.filter(order_id=order_pk, status=ItemStatus.COMPLETED).count()


def _measure(seconds: float) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="p5-"))
    media_root = tmp / "media"
    try:
        started = time.perf_counter()
        facts = _fill(media_root)
        filled = time.perf_counter() - started
        print(f"filled {facts['products']} products in {filled:.0f} s", file=sys.stderr)
        with Servers(tmp, media_root) as servers:
            pages = _pages(facts)
            users = [User(servers.url, name, pages, n)
                     for n, name in enumerate(facts["usernames"])]
            for user in users:
                user.sign_in()
            produced_before = _produced(facts["demo_order"])
            cpu_before = servers.cpu_seconds()
            load_before = os.getloadavg()
            load = _think_time_phase(users, seconds)
            load_after = os.getloadavg()
            cpu = servers.cpu_seconds() - cpu_before
            produced = _produced(facts["demo_order"]) - produced_before
            thumb_cpu = _thumbnail_cpu(servers, users[:4])
            by_page = _cpu_by_page(servers, users[0], facts)
            ceiling, wall = _ceiling_phase(users[:CEILING_CLIENTS], CEILING_SECONDS)
            if servers.web.poll() is not None:
                raise SystemExit("gunicorn stopped:\n" + servers.log_path.read_text()[-4000:])
        for user in users:
            user.client.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    page, thumbs = load.seconds["page"], load.seconds["thumbnail"]
    return {
        "products": facts["products"], "filled": filled, "seconds": seconds,
        "pages": len(page), "thumbnails": len(thumbs),
        "page_p50": _ms(page, 0.5), "page_p95": _ms(page, 0.95), "page_max": _ms(page, 1.0),
        "thumb_p50": _ms(thumbs, 0.5), "thumb_p95": _ms(thumbs, 0.95),
        "thumb_max": _ms(thumbs, 1.0),
        "errors": load.errors, "cpu": cpu, "produced": produced, "thumb_cpu": thumb_cpu,
        "ceiling_pages": len(ceiling.seconds["page"]), "ceiling_wall": wall,
        "ceiling_thumbnails": len(ceiling.seconds["thumbnail"]),
        "ceiling_p50": _ms(ceiling.seconds["page"], 0.5),
        "ceiling_p95": _ms(ceiling.seconds["page"], 0.95),
        "ceiling_errors": ceiling.errors, "by_page": by_page,
        "load_before": load_before, "load_after": load_after,
    }


def _table(r: dict[str, Any]) -> str:
    errors = len(r["errors"]) + len(r["ceiling_errors"])
    met = r["page_p95"] <= TARGET_P95_MS and errors == 0
    per_page = r["cpu"] / max(r["pages"], 1) * 1000
    page_only = (r["cpu"] - r["thumb_cpu"] * r["thumbnails"]) / max(r["pages"], 1) * 1000
    return "\n".join([
        "| measure | result | target |",
        "|---|---|---|",
        f"| page requests in {r['seconds']:.0f} s ({USERS} users, one every "
        f"{THINK_SECONDS:.0f} s each) | {r['pages']:,} | |",
        f"| page latency p50 / p95 / max | {r['page_p50']:.0f} / {r['page_p95']:.0f} / "
        f"{r['page_max']:.0f} ms | p95 ≤ {TARGET_P95_MS} ms |",
        f"| thumbnail requests | {r['thumbnails']:,} | |",
        f"| thumbnail latency p50 / p95 / max | {r['thumb_p50']:.0f} / {r['thumb_p95']:.0f} / "
        f"{r['thumb_max']:.0f} ms | |",
        f"| errors (non-2xx/3xx or exceptions), both phases | {errors} | 0 |",
        f"| server CPU per page, thumbnails included | {per_page:.0f} ms | |",
        f"| server CPU per thumbnail (fetched alone afterwards) | "
        f"{r['thumb_cpu'] * 1000:.1f} ms | |",
        f"| server CPU per page, thumbnails taken out | {page_only:.0f} ms | |",
        f"| server CPU, whole window | {r['cpu']:.1f} s of {r['seconds'] * 2:.0f} "
        "core-seconds | |",
        f"| demo items produced during the window | {r['produced']:,} | |",
        f"| ceiling: pages per second, {CEILING_CLIENTS} clients without think time | "
        f"{r['ceiling_pages'] / r['ceiling_wall']:.1f} | |",
        f"| ceiling: page latency p50 / p95 | {r['ceiling_p50']:.0f} / "
        f"{r['ceiling_p95']:.0f} ms | |",
        f"| load average (1 min) before / after the window | {r['load_before'][0]:.2f} / "
        f"{r['load_after'][0]:.2f} | |",
        f"| target met | {'yes' if met else '**no**'} | |",
    ])


def _gunicorn_sizes() -> str:
    """"N processes of M threads," as artfactory/gunicorn.conf.py reads them."""
    import runpy

    conf = runpy.run_path(str(ROOT / "artfactory" / "gunicorn.conf.py"))
    plural = "thread" if conf["threads"] == 1 else "threads"
    return f"{conf['workers']} processes of {conf['threads']} {plural},"


def _page_table(r: dict[str, Any]) -> str:
    """Server CPU per request of each page of the mix, asked alone."""
    return "\n".join([
        "| page (one user, nothing else asking) | server CPU per request |",
        "|---|---|",
        *(f"| {name} | {seconds * 1000:.0f} ms |" for name, seconds in r["by_page"].items()),
    ])


def _write(r: dict[str, Any]) -> None:
    """Replace the P5 section of docs/benchmarks.md, keeping the rest."""
    import platform
    from datetime import datetime, timezone

    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = (f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
               f"Python {platform.python_version()}")
    section = (
        f"{SECTION_START}\n## P5: the admin under load\n\n"
        f"Written by `bench/p5_admin_load.py` ({stamp}; {machine}), run by `make bench`\n"
        "after P3 or alone by `make bench-load` (`--seconds N` sets the window,\n"
        f"{r['seconds']:.0f} s here). PostgreSQL with P3's inventory of "
        f"{r['products']:,} products (filled in\n{r['filled']:.0f} s), "
        "gunicorn as the Procfile starts it (artfactory/gunicorn.conf.py:\n"
        f"{_gunicorn_sizes()} whitenoise serving the "
        "collected static files),\n"
        "a `run_worker` and a `run_foreman` producing a demo order of 64×64 images\n"
        f"({DEMO_LATENCY} s latency, {DEMO_SLOTS} slots) all along. {USERS} staff users "
        "with the operator\nrole each sign in through the login form with a cookie jar "
        "of their own,\nthen every "
        f"{THINK_SECONDS:.0f} s ask for one page of the mix (the product grid's first three\n"
        "pages, the orders list, the running and a finished order's page, the\n"
        "dashboard: a third each) and then, one after another, the thumbnails on\n"
        "it they have not fetched before, as a browser keeps them (a thumbnail\n"
        "named by its content hash answers `immutable`). Page latency is the\n"
        "HTML alone. Server CPU is utime + stime of gunicorn's master and its\n"
        "workers (children included) from /proc, before and after the window,\n"
        "divided by the pages served; the thumbnails' cost is in it. Their share\n"
        f"comes from {THUMBNAIL_SAMPLE} thumbnails fetched again afterwards with nothing "
        "else\nrunning in the server, its CPU divided by them. The ceiling\n"
        f"is {CEILING_CLIENTS} of the same users looping on the mix without think time "
        f"for\n{CEILING_SECONDS:.0f} s. Targets: page p95 ≤ {TARGET_P95_MS} ms, 0 errors.\n\n"
        + _table(r) + "\n\n"
        f"Then one of the users asks for each page of the mix {PAGE_SAMPLE} times in a row,\n"
        "alone (production still running), and the server's CPU is divided by\n"
        "the requests: what one page costs, gzip and the middleware included.\n\n"
        + _page_table(r) + "\n\n"
        "The load generator (Python threads, httpx) runs on the same 2 cores as\n"
        "gunicorn, PostgreSQL, Redis and the production processes, so it takes\n"
        "CPU from the server and inflates every latency here, the ceiling's most.\n\n"
        + SECTION_END + "\n"
    )
    write_section(SECTION_START, SECTION_END, section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="length of the measured window with think time (default 60)")
    args = parser.parse_args()
    if args.seconds <= 0:
        parser.error(f"--seconds {args.seconds:g} must be above 0")
    import logging

    import django

    os.environ["DATABASE_URL"] = fresh_database(PG_NAME)
    os.environ["REDIS_URL"] = REDIS_URL
    os.environ["DEMO_LATENCY_SECONDS"] = DEMO_LATENCY
    django.setup()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    result = _measure(args.seconds)
    _write(result)
    print(_table(result))
    for error in (result["errors"] + result["ceiling_errors"])[:20]:
        print("error:", error, file=sys.stderr)


if __name__ == "__main__":
    main()

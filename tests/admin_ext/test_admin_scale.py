"""The admin's lists at a few hundred products: bounded queries, honest counts."""
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from admin_ext import paging
from admin_ext.paging import EstimatedCountPaginator, rounded
from bench.p3_admin_scale import fill_inventory, page_urls
from factory.models import OrderItem, Product
from factory.search import search_products, search_words

GRID = reverse("admin:factory_product_changelist")
PRODUCTS = 300
on_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL's planner estimate"
)


@pytest.fixture
def inventory(catalog):
    """300 products of 100 orders, with tags, ratings and favorites."""
    return fill_inventory([3] * (PRODUCTS // 3))


@pytest.fixture
def client(lead) -> Client:
    client = Client()
    client.force_login(lead)
    return client


def _pages(facts: dict) -> dict[str, str]:
    """The benchmark's pages, and a few more."""
    return {
        **page_urls(facts),
        "products: unrated": GRID + "?min_rating=none",
        "products: table": GRID + "?view=table&p=2",
    }


# Spend figures, each one sum over the ledger: the order's estimate versus
# actual; the dashboard's days, month, cap and budgets reached.
EXTRA = {"an order page": 1, "dashboard": 4}


@pytest.mark.django_db
def test_each_page_stays_within_twelve_queries(
    inventory, client, django_assert_max_num_queries
):
    for name, url in _pages(inventory).items():
        client.get(url)  # sessions and content types warmed
        with django_assert_max_num_queries(12 + EXTRA.get(name, 0), info=name):
            response = client.get(url)
        assert response.status_code == 200, name


@pytest.mark.django_db
def test_filters_and_search_add_no_distinct_over_the_grid(inventory, client):
    facts = inventory
    for url in (GRID + f"?tags__id__exact={facts['tag']}", GRID + "?q=tag-05",
                GRID + "?q=lantern+kite"):
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        assert not [q for q in captured if "DISTINCT" in q["sql"].upper()], url


@pytest.mark.django_db
def test_rating_and_tag_filters_offer_fixed_choices_and_filter(inventory, client):
    with CaptureQueriesContext(connection) as captured:
        html = client.get(GRID + "?min_rating=5").content.decode()
    assert not [q for q in captured if '"rating"' in q["sql"] and "DISTINCT" in q["sql"]]
    shown = set(re.findall(r'id="product-card-(\d+)"', html))
    assert shown == {str(pk) for pk in Product.objects.filter(rating=5).values_list(
        "pk", flat=True)}
    html = client.get(GRID + f"?tags__id__exact={inventory['tag']}").content.decode()
    shown = set(re.findall(r'id="product-card-(\d+)"', html))
    expected = Product.objects.filter(tags=inventory["tag"]).values_list("pk", flat=True)
    assert shown == {str(pk) for pk in expected[:120]}


@pytest.mark.django_db
def test_a_malformed_filter_value_is_refused_with_a_message(inventory, client):
    for url, message in ((GRID + "?min_rating=9", "choose 1 to 5 stars"),
                         (GRID + "?tags__id__exact=pink", "choose tags from the list")):
        response = client.get(url)
        assert response.status_code == 200
        assert message in response.content.decode(), url


@pytest.mark.django_db
def test_search_finds_by_prompt_words_and_tags(catalog):
    fill_inventory([1] * 30)
    product = Product.objects.order_by("pk").first()
    product.prompt = "a copper lighthouse at dawn"
    product.notes = "keep for the harbour series"
    product.save()
    product.tags.create(name="seaside")
    found = lambda term: set(search_products(Product.objects.all(), term))  # noqa: E731
    assert product in found("COPPER lighthouse")
    assert product in found("harbour")
    assert product in found("seasi")
    assert product in found('"copper lighthouse" seaside')
    assert product not in found("copper violet-nowhere")
    # Two matching tags never repeat a product.
    product.tags.create(name="seaside-north")
    assert list(search_products(Product.objects.all(), "seaside")).count(product) == 1


def test_search_words_keep_quoted_phrases():
    assert search_words(' kite  "red dune" ') == ["kite", "red dune"]
    assert search_words("   ") == []


def test_estimates_are_rounded_to_two_figures():
    assert [rounded(n) for n in (7, 99, 1234, 99_998, 100_499)] == [
        7, 99, 1200, 100_000, 100_000]


@pytest.mark.django_db
def test_a_filtered_count_is_bounded_and_says_so(inventory, monkeypatch):
    monkeypatch.setattr(paging, "MIN_BOUND", 50)
    paginator = EstimatedCountPaginator(
        Product.objects.filter(media_type="image"), 10, page_hint=1)
    assert paginator.bound == 110
    assert paginator.count == 111 and paginator.capped
    assert paginator.count_label() == "110+ products"
    assert paginator.num_pages == 12
    deep = EstimatedCountPaginator(
        Product.objects.filter(media_type="image"), 10, page_hint=25)
    assert deep.count == PRODUCTS and deep.exact
    assert deep.count_label() == "300 products"
    page = deep.page(30)
    assert [p.pk for p in page.object_list] == list(
        Product.objects.filter(media_type="image").values_list("pk", flat=True)[290:300])


@pytest.mark.django_db
def test_sqlite_and_other_databases_bound_the_whole_list_too(inventory, monkeypatch):
    monkeypatch.setattr(paging, "MIN_BOUND", 50)
    monkeypatch.setattr(connection, "vendor", "sqlite")
    paginator = EstimatedCountPaginator(Product.objects.all(), 10)
    with CaptureQueriesContext(connection) as captured:
        assert paginator.count == 111
    assert "LIMIT" in captured[0]["sql"].upper()
    assert paginator.count_label() == "110+ products"


@on_postgres
@pytest.mark.django_db
def test_the_whole_list_is_counted_from_the_planner_estimate(inventory, monkeypatch):
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE factory_product")
    paginator = EstimatedCountPaginator(Product.objects.for_grid(), 120)
    assert paginator.count == PRODUCTS and paginator.exact  # small: counted exactly
    monkeypatch.setattr(paging, "EXACT_BELOW", 100)
    estimate = EstimatedCountPaginator(Product.objects.for_grid(), 120)
    with CaptureQueriesContext(connection) as captured:
        assert estimate.count == PRODUCTS
    assert "reltuples" in captured[0]["sql"]
    assert estimate.estimated
    assert estimate.count_label() == "about 300 products"


@on_postgres
@pytest.mark.django_db
def test_a_products_page_never_counts_the_whole_table(inventory, client, monkeypatch):
    monkeypatch.setattr(paging, "EXACT_BELOW", 100)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE factory_product")
    for url in (GRID, GRID + "?p=2", GRID + "?q=kite", GRID + "?min_rating=3"):
        with CaptureQueriesContext(connection) as captured:
            html = client.get(url).content.decode()
        counts = [q["sql"].upper() for q in captured
                  if "COUNT(" in q["sql"].upper() and "FACTORY_PRODUCT" in q["sql"].upper()]
        for sql in counts:
            if "RELTUPLES" in sql:  # the estimate; it counts only small tables
                assert url in (GRID, GRID + "?p=2"), url
            else:
                assert " WHERE " in sql and " LIMIT " in sql, (url, sql)
        if url == GRID:  # archived products are filtered out: a bounded count
            assert re.search(r"\b300 products\b", html), url


@on_postgres
@pytest.mark.django_db
def test_search_uses_the_trigram_indexes(inventory):
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'factory_product'")
        names = {row[0] for row in cursor.fetchall()}
        assert {"factory_product_prompt_trgm", "factory_product_notes_trgm"} <= names
        cursor.execute("SET enable_seqscan = off")  # a small table would be scanned
        cursor.execute("SET enable_indexscan = off")
        query = Product.objects.filter(prompt__icontains="lantern").order_by().query
        sql, params = query.sql_with_params()
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "factory_product_prompt_trgm" in plan


@pytest.mark.django_db
def test_item_tallies_are_counted_for_the_page_only(inventory, client):
    with CaptureQueriesContext(connection) as captured:
        client.get(reverse("admin:factory_order_changelist"))
    grouped = [q["sql"] for q in captured if "GROUP BY" in q["sql"].upper()
               and OrderItem._meta.db_table in q["sql"]]
    assert grouped and all(" IN (" in sql for sql in grouped)

"""The products changelist as a thumbnail grid, with the table one click away."""
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from admin_ext.inventory import ProductAdmin
from factory.models import Product
from tests.gallery import bulk_products, produce

URL = reverse("admin:factory_product_changelist")


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _cards(html: str) -> list[str]:
    return re.findall(r'<article class="af-card[^>]*>', html)


@pytest.mark.django_db
def test_grid_shows_a_card_per_product_with_thumbnail_and_state(catalog, operator):
    products = produce("demo-image", 2) + produce("demo-video", 1) \
        + produce("demo-audio", 1)
    favorite = products[0]
    favorite.set_favorite(True)
    favorite.set_rating(4)
    html = _client(operator).get(URL).content.decode()
    assert len(_cards(html)) == 4
    assert html.count('loading="lazy"') == 4
    for product in products:
        assert product.media.thumbnail.url in html
        assert f'name="_selected_action" value="{product.pk}"' in html
    card = re.search(rf'<article[^>]*id="product-card-{favorite.pk}"[^>]*>', html)[0]
    assert 'data-favorite="true"' in card and 'data-rating="4"' in card
    assert "is-favorite" in card
    video, audio = products[2], products[3]
    assert f'<video src="{video.media.file.url}"' in html
    assert f'<audio x-ref="audio" src="{audio.media.file.url}"' in html
    assert reverse("admin:factory_product_rating", args=[favorite.pk]) in html
    assert 'hx-headers=\'{"X-CSRFToken": "' in html
    assert 'id="result_list"' not in html


@pytest.mark.django_db
def test_card_escapes_the_prompt_it_shows(catalog, operator):
    product = bulk_products(1)[0]
    hostile = '<script>alert("x")</script> & <b>bold</b>'
    Product.objects.filter(pk=product.pk).update(prompt=hostile)
    html = _client(operator).get(URL).content.decode()
    card = html[html.index(f'id="product-card-{product.pk}"'):]
    card = card[:card.index("</article>")]
    assert "<script>" not in card and "<b>" not in card
    escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;"
    assert f'title="{escaped}"' in card  # the prompt's title
    assert f'alt="{escaped}"' in card  # the thumbnail's alt text
    assert f">{escaped}</p>" in card


@pytest.mark.django_db
def test_viewer_sees_the_grid_without_curation_controls(catalog, viewer):
    product = bulk_products(1)[0]
    html = _client(viewer).get(URL).content.decode()
    assert len(_cards(html)) == 1
    assert reverse("admin:factory_product_rating", args=[product.pk]) not in html
    assert "data-favorite-toggle" not in html


@pytest.mark.django_db
def test_table_is_one_click_away_and_remembered(catalog, operator):
    bulk_products(3)
    client = _client(operator)
    grid = client.get(URL).content.decode()
    assert 'href="?view=table"' in grid
    table = client.get(URL, {"view": "table"})
    assert table.status_code == 200
    html = table.content.decode()
    assert 'id="result_list"' in html and not _cards(html)
    again = client.get(URL).content.decode()  # no parameter: still the table
    assert 'id="result_list"' in again
    back = client.get(URL, {"view": "grid"}).content.decode()
    assert len(_cards(back)) == 3


@pytest.mark.django_db
def test_view_switch_keeps_filters(catalog, operator):
    bulk_products(2)
    Product.objects.filter(pk=Product.objects.first().pk).update(is_favorite=True)
    html = _client(operator).get(URL, {"is_favorite__exact": "1"}).content.decode()
    assert len(_cards(html)) == 1
    assert 'href="?is_favorite__exact=1&amp;view=table"' in html


def test_a_page_holds_at_least_a_hundred_cards():
    assert ProductAdmin.list_per_page >= 100
    assert ProductAdmin.show_full_result_count is False


def _page_queries(client: Client, django_assert_max_num_queries) -> int:
    with django_assert_max_num_queries(12):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(URL)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.django_db
def test_grid_queries_do_not_grow_with_the_page(
    catalog, operator, django_assert_max_num_queries
):
    client = _client(operator)
    counts = {}
    made = 0
    for total in (10, 100, 150):
        bulk_products(total - made)
        made = total
        counts[total] = _page_queries(client, django_assert_max_num_queries)
        shown = min(total, ProductAdmin.list_per_page)
        assert len(_cards(client.get(URL).content.decode())) == shown
    assert counts[10] == counts[100] == counts[150], counts

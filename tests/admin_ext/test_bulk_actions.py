"""Bulk actions on products: a selection or all the filter matches, confirmed."""
import io
import json
import re
import zipfile

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from factory.models import Order, OrderStatus, Product, Project, Tag
from tests.factory.test_exporting import large_products
from tests.gallery import bulk_products, produce

URL = reverse("admin:factory_product_changelist")


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _ask(client, action: str, pks, query: str = "", across: bool = False, **data):
    """The action bar's post: runs the action's first step."""
    payload = {"action": action, ACTION_CHECKBOX_NAME: [str(pk) for pk in pks],
               "index": "0", **data}
    if across:
        payload["select_across"] = "1"
    return client.post(URL + query, payload)


def _confirm(client, action: str, pks, query: str = "", across: bool = False,
             **data):
    """The confirmation page's post, as its hidden fields send it."""
    payload = {"action": action, ACTION_CHECKBOX_NAME: [str(pk) for pk in pks],
               "confirm": "yes", **data}
    if across:
        payload["select_across"] = "1"
    return client.post(URL + query, payload)


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _pks(products) -> list[int]:
    return [product.pk for product in products]


@pytest.fixture
def products(catalog) -> list[Product]:
    return bulk_products(6)


@pytest.fixture
def mixed(catalog) -> tuple[list[Product], list[Product]]:
    """Five images and three clips, made small and shared."""
    return bulk_products(5), bulk_products(3, slug="demo-video")


# -- archive -----------------------------------------------------------------

@pytest.mark.django_db
def test_archived_products_leave_the_default_view_and_come_back(products, operator):
    client = _client(operator)
    chosen = products[:2]
    page = _ask(client, "archive_selected", _pks(chosen))
    assert page.status_code == 200
    assert "Archive 2 products" in page.content.decode()
    assert Product.objects.archived().count() == 0  # nothing before confirming
    done = _confirm(client, "archive_selected", _pks(chosen))
    assert done.status_code == 302
    assert _messages(done) == ["2 products archived; “Archived: yes” shows them."]
    assert set(Product.objects.archived()) == set(chosen)

    default = client.get(URL).context["cl"]
    assert {p.pk for p in default.result_list} == set(_pks(products[2:]))
    archived = client.get(URL + "?archived=yes").context["cl"]
    assert {p.pk for p in archived.result_list} == set(_pks(chosen))
    assert client.get(URL + "?archived=all").context["cl"].result_count == 6
    html = client.get(URL).content.decode()
    assert "?archived=yes" in html and "?archived=all" in html

    _confirm(client, "restore_selected", _pks(chosen), "?archived=yes")
    assert Product.objects.archived().count() == 0
    assert client.get(URL).context["cl"].result_count == 6
    # the files stay: the media rows are untouched
    assert Product.objects.filter(pk=chosen[0].pk, media=chosen[0].media).exists()


@pytest.mark.django_db
def test_archived_product_page_still_opens(products, operator):
    Product.objects.filter(pk=products[0].pk).archive()
    url = reverse("admin:factory_product_change", args=[products[0].pk])
    assert _client(operator).get(url).status_code == 200


# -- select across ------------------------------------------------------------

@pytest.mark.django_db
def test_select_across_acts_on_everything_the_filter_matches(
    catalog, operator, settings
):
    from admin_ext.inventory import ProductAdmin

    images = bulk_products(ProductAdmin.list_per_page + 5)
    clips = bulk_products(3, slug="demo-video")
    client = _client(operator)
    query = "?media_type__exact=image"
    grid = client.get(URL + query).content.decode()
    matching = re.search(r'data-matching="(\d*)"', grid).group(1)
    assert int(matching) == len(images)

    page_pks = _pks(images[:3])  # whatever the page sent; across ignores them
    ask = _ask(client, "archive_selected", page_pks, query, across=True)
    html = ask.content.decode()
    assert f"Archive {len(images)} products" in html
    assert f"All <strong>{len(images)}</strong> products the current filter" in html
    assert 'name="select_across" value="1"' in html
    _confirm(client, "archive_selected", page_pks, query, across=True)
    assert Product.objects.archived().count() == len(images)
    assert Product.objects.active().count() == len(clips)


@pytest.mark.django_db
def test_select_across_a_search_and_a_tag_filter(products, operator):
    sea = Tag.objects.create(name="sea")
    for product in products[:4]:
        product.tags.add(sea, Tag.objects.get_or_create(name="sky")[0])
    client = _client(operator)
    query = f"?tags__id__exact={sea.pk}&q=lantern"
    ask = _ask(client, "move_selected", _pks(products[:1]), query, across=True)
    assert ask.context["count"] == 4
    harbour = Project.objects.create(name="Harbour")
    _confirm(client, "move_selected", _pks(products[:1]), query, across=True,
             project=str(harbour.pk))
    assert set(Product.objects.filter(project=harbour)) == set(products[:4])
    _confirm(client, "untag_selected", _pks(products[:1]), query, across=True,
             tags=[str(sea.pk)])
    assert not sea.products.exists()
    assert Tag.objects.get(name="sky").products.count() == 4


@pytest.mark.django_db
def test_favorite_and_rating_across_confirm_the_count_first(mixed, operator):
    images, clips = mixed
    client = _client(operator)
    query = "?media_type__exact=video"
    ask = _ask(client, "mark_favorite", _pks(clips[:1]), query, across=True)
    assert "Favorite 3 products" in ask.content.decode()
    assert not Product.objects.filter(is_favorite=True).exists()
    _confirm(client, "mark_favorite", _pks(clips[:1]), query, across=True)
    assert set(Product.objects.filter(is_favorite=True)) == set(clips)

    # a page selection still marks at once
    _ask(client, "unmark_favorite", _pks(clips[:1]))
    assert Product.objects.filter(is_favorite=True).count() == 2

    ask = _ask(client, "rate_selected", _pks(clips[:1]), query, across=True)
    assert "Rate 3 products" in ask.content.decode()
    _confirm(client, "rate_selected", _pks(clips[:1]), query, across=True, rating="5")
    assert set(Product.objects.filter(rating=5)) == set(clips)
    assert not Product.objects.filter(pk__in=_pks(images), rating=5).exists()


# -- tags and projects --------------------------------------------------------

@pytest.mark.django_db
def test_tag_picks_existing_and_creates_typed_tags(products, operator):
    sky = Tag.objects.create(name="Sky")
    old = Tag.objects.create(name="old")
    products[0].tags.add(old)
    client = _client(operator)
    chosen = _pks(products[:3])
    page = _ask(client, "tag_selected", chosen).content.decode()
    assert "Tag 3 products" in page and "Sky" in page
    done = _confirm(client, "tag_selected", chosen, tags=[str(old.pk)],
                    new="sky, harbour ,, Harbour")
    assert _messages(done) == ["3 products tagged old, Sky, harbour."]
    assert Tag.objects.filter(name__iexact="sky").count() == 1
    harbour = Tag.objects.get(name="harbour")
    for product in products[:3]:
        assert set(product.tags.all()) == {sky, old, harbour}
    assert not products[3].tags.exists()

    # a rerun changes nothing
    _confirm(client, "tag_selected", chosen, tags=[str(sky.pk)])
    assert Product.tags.through.objects.count() == 9


@pytest.mark.django_db
def test_tag_without_a_tag_is_refused_on_the_page(products, operator):
    client = _client(operator)
    page = _confirm(client, "tag_selected", _pks(products[:2]), new=" , ")
    assert page.status_code == 200
    assert "Pick a tag or type a new one." in page.content.decode()
    long = _confirm(client, "tag_selected", _pks(products[:2]), new="x" * 70)
    assert "A tag is at most 64 characters" in long.content.decode()
    assert not Tag.objects.exists()


@pytest.mark.django_db
def test_untag_offers_the_selections_tags_and_removes_them(products, operator):
    sea, sky, far = (Tag.objects.create(name=n) for n in ("sea", "sky", "far"))
    for product in products[:3]:
        product.tags.add(sea, sky)
    products[5].tags.add(far)
    client = _client(operator)
    page = _ask(client, "untag_selected", _pks(products[:3]))
    choices = {tag.name for tag in page.context["form"].fields["tags"].queryset}
    assert choices == {"sea", "sky"}
    done = _confirm(client, "untag_selected", _pks(products[:2]), tags=[str(sea.pk)])
    assert _messages(done) == ["2 tags removed (sea)."]
    assert list(products[0].tags.all()) == [sky]
    assert set(products[2].tags.all()) == {sea, sky}
    assert list(products[5].tags.all()) == [far]


@pytest.mark.django_db
def test_move_to_a_project_and_out_of_it(products, operator):
    harbour = Project.objects.create(name="Harbour")
    Project.objects.create(name="Old", is_archived=True)
    client = _client(operator)
    page = _ask(client, "move_selected", _pks(products[:4]))
    assert [p.name for p in page.context["form"].fields["project"].queryset] == ["Harbour"]
    done = _confirm(client, "move_selected", _pks(products[:4]), project=str(harbour.pk))
    assert _messages(done) == ["4 products moved to Harbour."]
    assert Product.objects.filter(project=harbour).count() == 4
    done = _confirm(client, "move_selected", _pks(products[:1]), project="")
    assert _messages(done)[-1] == "1 product taken out of their project."
    assert Product.objects.filter(project=harbour).count() == 3


# -- order again --------------------------------------------------------------

@pytest.mark.django_db
def test_order_again_writes_one_draft_per_product_and_places_nothing(
    products, operator
):
    client = _client(operator)
    before = Order.objects.count()
    page = _ask(client, "order_again_selected", _pks(products[:3]))
    assert "Order 3 products again" in page.content.decode()
    assert Order.objects.count() == before
    done = _confirm(client, "order_again_selected", _pks(products[:3]))
    assert done["Location"].endswith("?status__exact=draft")
    drafts = Order.objects.order_by("-pk")[:3]
    assert {d.status for d in drafts} == {OrderStatus.DRAFT}
    assert sorted(d.seed for d in drafts) == sorted(p.seed for p in products[:3])
    assert not any(d.items.exists() for d in drafts)


@pytest.mark.django_db
def test_order_again_of_more_than_the_cap_is_refused(products, operator, monkeypatch):
    monkeypatch.setattr("admin_ext.bulk.MAX_AGAIN", 2)
    client = _client(operator)
    page = _ask(client, "order_again_selected", _pks(products[:3])).content.decode()
    assert "one go writes at most 2 drafts" in page
    assert 'id="bulk-submit"' not in page
    before = Order.objects.count()
    _confirm(client, "order_again_selected", _pks(products[:3]))
    assert Order.objects.count() == before


@pytest.mark.django_db
def test_vary_seed_across_more_than_the_cap_is_refused(products, operator, monkeypatch):
    monkeypatch.setattr("admin_ext.variations.MAX_AGAIN", 2)
    client = _client(operator)
    before = Order.objects.count()
    done = _ask(client, "vary_seed_selected", _pks(products[:1]), across=True)
    assert done.status_code == 302
    assert _messages(done) == [
        "Vary seed writes at most 2 drafts in one go; select fewer products."]
    assert Order.objects.count() == before


# -- zip ------------------------------------------------------------------------

@pytest.mark.django_db
def test_zip_page_shows_count_and_size_then_streams(catalog, operator):
    made = produce("demo-image", 3)
    client = _client(operator)
    chosen = made[:2]
    total = sum(p.media.size for p in chosen)
    page = _ask(client, "download_zip", _pks(chosen))
    html = page.content.decode()
    assert "Download 2 products" in html
    assert page.context["size"] == f"{total / 1024:.1f}\xa0KB"
    assert re.search(r'id="zip-count">2 \+ 2 sidecars', html)

    response = _confirm(client, "download_zip", _pks(chosen))
    assert response.streaming
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith('attachment; filename="products-')
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert sorted(archive.namelist()) == sorted(
        f"{p.pk}-demo-image.{ext}" for p in chosen for ext in ("png", "json"))
    meta = json.loads(archive.read(f"{chosen[0].pk}-demo-image.json"))
    assert meta["product_id"] == chosen[0].pk


@pytest.mark.django_db
def test_zip_above_the_cap_is_refused_with_a_message(catalog, operator, settings):
    settings.ZIP_MAX_PRODUCTS = 2
    made = large_products(3, 100)
    client = _client(operator)
    page = _ask(client, "download_zip", _pks(made)).content.decode()
    assert "3 products match; a zip holds at most 2." in page
    assert 'id="bulk-submit"' not in page
    refused = _confirm(client, "download_zip", _pks(made))
    assert not refused.streaming and refused.status_code == 200


@pytest.mark.django_db
def test_zip_across_a_filter_counts_and_streams_with_bounded_queries(
    catalog, operator, django_assert_max_num_queries
):
    made = large_products(40, 100)
    Product.objects.filter(pk__in=_pks(made[:10])).archive()
    client = _client(operator)
    page = _ask(client, "download_zip", _pks(made[-1:]), across=True)
    assert page.context["count"] == 30
    assert page.context["size"] == "2.9\xa0KB"
    response = _confirm(client, "download_zip", _pks(made[-1:]), across=True)
    with django_assert_max_num_queries(4):
        archive = b"".join(response.streaming_content)
    assert len(zipfile.ZipFile(io.BytesIO(archive)).namelist()) == 60


# -- permissions --------------------------------------------------------------

@pytest.mark.django_db
def test_viewer_may_download_but_not_curate(products, viewer):
    client = _client(viewer)
    choices = [value for value, _ in client.get(URL).context["action_form"]
               .fields["action"].choices]
    assert "download_zip" in choices
    for name in ("tag_selected", "untag_selected", "move_selected", "archive_selected",
                 "restore_selected", "order_again_selected", "mark_favorite"):
        assert name not in choices
        _confirm(client, name, _pks(products[:2]), new="x", project="")
    assert not Product.objects.archived().exists()
    assert not Tag.objects.exists()
    assert not Product.objects.filter(is_favorite=True).exists()


@pytest.mark.django_db
def test_order_again_needs_add_permission_on_orders(products, operator):
    from django.contrib.auth.models import Permission

    operator.groups.first().permissions.remove(
        Permission.objects.get(codename="add_order"))
    client = _client(operator)
    before = Order.objects.count()
    _confirm(client, "order_again_selected", _pks(products[:2]))
    assert Order.objects.count() == before
    _confirm(client, "archive_selected", _pks(products[:2]))
    assert Product.objects.archived().count() == 2


@pytest.mark.django_db
def test_confirmation_pages_count_with_bounded_queries(
    catalog, operator, django_assert_max_num_queries
):
    made = bulk_products(50)
    client = _client(operator)
    for action in ("tag_selected", "untag_selected", "move_selected",
                   "archive_selected", "download_zip", "order_again_selected"):
        with django_assert_max_num_queries(16):
            page = _ask(client, action, _pks(made[:1]), across=True)
        assert page.context["count"] == 50, action

"""The products list's filters: alone, combined, as chips, and bounded."""
import datetime
import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from factory.models import (
    FactoryMachine, ItemStatus, MediaFile, Order, OrderItem, OrderStatus, Product,
    Project, Tag,
)
from tests.gallery import bulk_products

URL = reverse("admin:factory_product_changelist")

# machine slug, project, media type, rating, favorite, seed, parameters, prompt
ROWS = [
    ("fal-flux-dev", "Covers", "image", 5, True, 42,
     {"seed": 42, "guidance_scale": 3.5, "num_inference_steps": 28,
      "image_size": {"width": 1024, "height": 768}}, "a fox in the snow"),
    ("fal-flux-dev", "Covers", "image", 3, False, 11,
     {"seed": 11, "guidance_scale": 2, "num_inference_steps": 40,
      "image_size": {"width": 512, "height": 512}}, "a heron at dawn"),
    ("replicate-sdxl", "Posters", "image", None, True, 7,
     {"seed": 7, "guidance_scale": 7, "num_inference_steps": 20,
      "output_format": "png"}, "neon street, a fox"),
    ("demo-video", None, "video", 4, False, 1100,
     {"seed": 1100, "fps": 8, "duration": 1}, "rain on a window"),
    ("demo-audio", "Posters", "audio", 1, False, None,
     {"seconds_total": 2}, "a harbour bell"),
]


@pytest.fixture
def assorted(catalog) -> list[Product]:
    """Five products differing in every filtered field; newest last."""
    projects = {name: Project.objects.create(name=name) for name in ("Covers", "Posters")}
    Project.objects.create(name="Empty")
    hero, _ = Tag.objects.get_or_create(name="hero")
    moody, _ = Tag.objects.get_or_create(name="moody")
    products = []
    start = timezone.now() - datetime.timedelta(days=10)
    for index, (slug, project, kind, rating, favorite, seed, parameters, prompt) \
            in enumerate(ROWS):
        product = _product(slug, index, prompt=prompt, parameters=parameters,
                           seed=seed, project=projects.get(project), media_type=kind,
                           rating=rating, is_favorite=favorite)
        Product.objects.filter(pk=product.pk).update(
            created_at=start + datetime.timedelta(days=2 * index))
        products.append(product)
    products[0].tags.add(hero, moody)
    products[2].tags.add(hero)
    products[3].tags.add(moody)
    return products


def _product(slug: str, index: int, **fields) -> Product:
    """One product of machine ``slug`` with its own order, item and file."""
    machine = FactoryMachine.objects.get(slug=slug)
    order = Order.objects.create(title="", machine=machine, prompt=fields["prompt"],
                                 status=OrderStatus.DONE)
    item = OrderItem.objects.create(order=order, machine=machine, index=0,
                                    status=ItemStatus.COMPLETED,
                                    parameters=fields["parameters"], seed=fields["seed"])
    media = MediaFile.objects.create(
        content_hash=f"filters-{index}", file=f"files/f{index}.png",
        thumbnail=f"thumbs/f{index}.webp", media_type=fields["media_type"],
        content_type="image/png", size=1, width=8, height=8,
    )
    return Product.objects.create(item=item, media=media, machine=machine, **fields)


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _shown(products: list[Product], page: str) -> list[int]:
    """Indexes into ROWS of the products whose cards the page shows."""
    ids = {int(pk) for pk in re.findall(r'id="product-card-(\d+)"', page)}
    return [index for index, product in enumerate(products) if product.pk in ids]


def _get(client: Client, params: dict) -> str:
    response = client.get(URL, params)
    assert response.status_code == 200
    return response.content.decode()


def _machine(slug: str) -> int:
    return FactoryMachine.objects.get(slug=slug).pk


@pytest.mark.django_db
@pytest.mark.parametrize("params, expected", [
    ({}, [0, 1, 2, 3, 4]),
    ({"machine__id__exact": "fal-flux-dev"}, [0, 1]),
    ({"machine__provider__id__exact": "replicate"}, [2]),
    ({"project__id__exact": "Posters"}, [2, 4]),
    ({"media_type__exact": ["video", "audio"]}, [3, 4]),
    ({"min_rating": "4"}, [0, 3]),
    ({"min_rating": "1"}, [0, 1, 3, 4]),
    ({"min_rating": "none"}, [2]),
    ({"is_favorite__exact": "1"}, [0, 2]),
    ({"is_favorite__exact": "0"}, [1, 3, 4]),
    ({"tags__id__exact": ["hero"]}, [0, 2]),
    ({"tags__id__exact": ["hero", "moody"]}, [0, 2, 3]),
    ({"prompt": "FOX"}, [0, 2]),
    ({"param": "seed=42"}, [0]),
    ({"param": "guidance_scale>=3"}, [0, 2]),
    ({"param": "num_inference_steps 20..30"}, [0, 2]),
    ({"param": "image_size.width=1024"}, [0]),
    ({"param": "output_format=png"}, [2]),
    ({"param": "fps<10"}, [3]),
    ({"param": "nothing_has_this=1"}, []),
    # combined: every filter narrows the others
    ({"machine__id__exact": "fal-flux-dev", "min_rating": "4"}, [0]),
    ({"prompt": "fox", "is_favorite__exact": "1", "param": "guidance_scale>5"}, [2]),
    ({"project__id__exact": "Covers", "param": "seed>=11; num_inference_steps>30",
      "tags__id__exact": ["hero", "moody"]}, []),
    ({"media_type__exact": ["image"], "tags__id__exact": ["hero"],
      "param": "guidance_scale 1..4"}, [0]),
])
def test_each_filter_alone_and_combined(assorted, operator, params, expected):
    resolved = {key: _resolve(key, value) for key, value in params.items()}
    assert _shown(assorted, _get(_client(operator), resolved)) == expected


def _resolve(key: str, value):
    """Names in the table above turned into the ids the URL carries."""
    if key == "machine__id__exact":
        return _machine(value)
    if key == "machine__provider__id__exact":
        return FactoryMachine.objects.filter(provider__slug=value)[0].provider_id
    if key == "project__id__exact":
        return Project.objects.get(name=value).pk
    if key == "tags__id__exact":
        return [Tag.objects.get(name=name).pk for name in value]
    return value


@pytest.mark.django_db
def test_date_range_includes_both_days(assorted, operator):
    days = [p.created_at for p in Product.objects.order_by("created_at")]
    local = [timezone.localtime(day).date().isoformat() for day in days]
    page = _get(_client(operator), {"created_at_from": local[1], "created_at_to": local[3]})
    assert _shown(assorted, page) == [1, 2, 3]
    assert f"Created {local[1]} – {local[3]}" in page
    only_until = _get(_client(operator), {"created_at_to": local[0]})
    assert _shown(assorted, only_until) == [0]


@pytest.mark.django_db
def test_order_filter_takes_the_order_pages_link(assorted, operator):
    order = assorted[1].item.order
    Order.objects.filter(pk=order.pk).update(title="Heron study")
    page = _get(_client(operator), {"item__order__id__exact": order.pk})
    assert _shown(assorted, page) == [1]
    assert f"Order: Heron study (#{order.pk})" in page
    typed = _get(_client(operator), {"item__order__id__exact": f"#{order.pk}"})
    assert _shown(assorted, typed) == [1]


@pytest.mark.django_db
def test_choices_list_only_what_has_products(assorted, operator):
    page = _get(_client(operator), {})
    machine_select = re.search(
        r'<select name="machine__id__exact".*?</select>', page, re.S)[0]
    assert "FLUX.1 [dev] (fal)" in machine_select
    assert "Demo video (demo)" in machine_select
    assert "Fast SDXL (fal)" not in machine_select
    provider_select = re.search(
        r'<select name="machine__provider__id__exact".*?</select>', page, re.S)[0]
    assert "Replicate" in provider_select and "Civitai" not in provider_select
    project_select = re.search(
        r'<select name="project__id__exact".*?</select>', page, re.S)[0]
    assert "Covers" in project_select and "Empty" not in project_select


@pytest.mark.django_db
@pytest.mark.parametrize("expression, fragment", [
    ("guidance_scale>=high", "compares numbers"),
    ("guidance_scale", "is not a parameter expression"),
    ("steps 40..20", "starts above its end"),
])
def test_bad_expression_shows_a_message_and_keeps_the_rest(
    assorted, operator, expression, fragment
):
    response = _client(operator).get(URL, {"param": f"{expression}; seed=42"})
    assert response.status_code == 200
    page = response.content.decode()
    messages = [str(m) for m in response.context["messages"]]
    assert len(messages) == 1 and fragment in messages[0]
    assert messages[0] in html.unescape(page)
    assert _shown(assorted, page) == [0]
    assert f"Not understood: {expression}" in html.unescape(page)


@pytest.mark.django_db
@pytest.mark.parametrize("params, fragment", [
    ({"min_rating": "9"}, "choose 1 to 5"),
    ({"created_at_from": "yesterday"}, "is not a date"),
    ({"item__order__id__exact": "latest"}, "not an order number"),
])
def test_bad_values_elsewhere_get_a_message_not_an_error(
    assorted, operator, params, fragment
):
    response = _client(operator).get(URL, params)
    assert response.status_code == 200
    messages = [str(m) for m in response.context["messages"]]
    assert any(fragment in message for message in messages), messages
    assert _shown(assorted, response.content.decode()) == [0, 1, 2, 3, 4]


@pytest.mark.django_db
@pytest.mark.parametrize("term, expected", [
    ("11", [1]),
    (" 42 ", [0]),
    ("1100", [3]),  # a seed; no prompt holds the number
    ("fox", [0, 2]),
    ("99999999999999999999999", []),  # beyond any seed: no error
    ("-3", []),
])
def test_search_finds_seeds(assorted, operator, term, expected):
    page = _get(_client(operator), {"q": term})
    assert _shown(assorted, page) == expected


@pytest.mark.django_db
def test_search_by_seed_keeps_the_filters(assorted, operator):
    page = _get(_client(operator), {"q": "42", "is_favorite__exact": "0"})
    assert _shown(assorted, page) == []


PARAMETER_CHIPS = {  # chip: the expressions its × leaves
    "guidance_scale ≥ 3": "image_size.width=1024",
    "image_size.width = 1024": "guidance_scale>=3",
}


def _chips(page: str) -> dict[str, dict[str, list[str]]]:
    """Each chip's label and the query its × link leaves."""
    chips = re.findall(
        r'<span data-chip-label>(.*?)</span>\s*<a href="([^"]*)"',
        page, re.S,
    )
    return {html.unescape(label): parse_qs(urlsplit(html.unescape(href)).query)
            for label, href in chips}


@pytest.mark.django_db
def test_chips_name_each_filter_and_remove_only_it(assorted, operator):
    flux = _machine("fal-flux-dev")
    hero = Tag.objects.get(name="hero").pk
    params = {
        "machine__id__exact": flux, "min_rating": "3", "tags__id__exact": hero,
        "param": "guidance_scale>=3; image_size.width=1024", "q": "fox",
        "media_type__exact": "image", "is_favorite__exact": "1", "prompt": "snow",
        "o": "1",
    }
    page = _get(_client(operator), params)
    assert _shown(assorted, page) == [0]
    chips = _chips(page)
    assert list(chips) == [
        "guidance_scale ≥ 3", "image_size.width = 1024", "Prompt: “snow”",
        "Machine: FLUX.1 [dev] (fal)", "Type: Image", "Rating ≥ 3", "Favorite",
        "Tags: hero", "Search: “fox”",
    ]
    full = {key: [str(value)] for key, value in params.items()}
    for label, left in chips.items():
        removed = {key for key in full if key not in left}
        changed = {key for key in left if left[key] != full[key]}
        if label in PARAMETER_CHIPS:
            assert removed == set() and changed == {"param"}
            assert left["param"] == [PARAMETER_CHIPS[label]]
        else:
            assert len(removed) == 1 and not changed, (label, left)
        assert left["o"] == ["1"]  # the sort order stays
    assert chips["Machine: FLUX.1 [dev] (fal)"].keys() == full.keys() - {"machine__id__exact"}
    assert "q" not in chips["Search: “fox”"]
    clear = re.search(r'<a href="([^"]*)" id="af-clear-filters"', page)[1]
    assert parse_qs(urlsplit(html.unescape(clear)).query) == {"o": ["1"]}


@pytest.mark.django_db
def test_no_chips_without_filters(assorted, operator):
    page = _get(_client(operator), {})
    assert "af-filter-chips" not in page
    assert "Show counts" not in page  # counting every choice would read every product


@pytest.mark.django_db
def test_parameter_keys_are_suggested_from_the_filtered_set(assorted, operator):
    page = _get(_client(operator), {"machine__id__exact": _machine("fal-flux-dev")})
    keys = re.findall(r'data-parameter-key="([^"]+)"', page)
    assert keys == ["guidance_scale", "image_size.height", "image_size.width",
                    "num_inference_steps", "seed"]
    assert '<option value="image_size.width">' in page
    audio = _get(_client(operator), {"media_type__exact": "audio"})
    assert re.findall(r'data-parameter-key="([^"]+)"', audio) == ["seconds_total"]


@pytest.mark.django_db
def test_filtered_grid_queries_are_bounded(
    assorted, operator, django_assert_max_num_queries
):
    bulk_products(150)
    client = _client(operator)
    params = {
        "machine__id__exact": _machine("fal-flux-dev"), "min_rating": "1",
        "project__id__exact": Project.objects.get(name="Covers").pk,
        "tags__id__exact": Tag.objects.get(name="hero").pk,
        "param": "guidance_scale>=1; num_inference_steps 1..100",
        "item__order__id__exact": assorted[0].item.order_id,
        "media_type__exact": "image", "is_favorite__exact": "1", "q": "42",
        "created_at_from": "2000-01-01", "prompt": "fox",
    }
    client.get(URL)  # session and view choice settle first
    with django_assert_max_num_queries(12):
        response = client.get(URL, params)
    assert _shown(assorted, response.content.decode()) == [0]
    with django_assert_max_num_queries(12):
        client.get(URL)

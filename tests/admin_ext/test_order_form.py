"""The order form over HTTP: each machine's own fields, preview, placing."""
import html
import json
import re

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from admin_ext.orders import parameters
from factory.models import FactoryMachine, Order, OrderItem, OrderStatus, Wildcard

ADD = "/admin/factory/order/add/"
PREVIEW = "/admin/factory/order/preview/"


@pytest.fixture
def client(lead) -> Client:
    client = Client()
    client.force_login(lead)
    return client


def _config(page: str) -> dict:
    """The jsonform editor's configuration on a rendered page."""
    found = re.search(r'name="base_parameters"[^>]*data-django-jsonform="([^"]*)"', page)
    assert found, "no parameter editor on the page"
    return json.loads(html.unescape(found.group(1)))


def _required_sample(machine: FactoryMachine) -> dict:
    """Values for required inputs other than the prompt (an image URL, say)."""
    props = machine.input_schema["properties"]
    values = {}
    for key in machine.input_schema.get("required", []):
        if key != "prompt":
            assert props[key]["type"] == "string", key
            values[key] = "https://example.com/start.png"
    return values


def _data(target: FactoryMachine, **over) -> dict:
    machine = target
    values = {**parameters.machine_defaults(machine), **_required_sample(machine)}
    data = {
        "title": "", "machine": str(machine.pk), "project": "",
        "prompt": "a red kite over dunes", "prompt_mode": "combinatorial",
        "prompt_samples": "1", "tokens": "{}", "base_parameters": json.dumps(values),
        "sweeps": "[]", "runs": "1", "seed_strategy": "random", "seed": "",
        "required_parameters": "[]", "item_ceiling": "", "template": "",
        "source_order": "", "seed_base": "4242",
    }
    data.update(over)
    return data


@pytest.mark.django_db
def test_every_machine_form_offers_its_schema_fields_with_its_defaults(catalog, client):
    machines = list(FactoryMachine.objects.all())
    assert len(machines) >= 16
    for machine in machines:
        page = client.get(f"{ADD}?machine={machine.pk}").content.decode()
        config = _config(page)
        offered = list(config["schema"]["properties"])
        safety = (machine.safety or {}).get("key")
        expected = [k for k in machine.accepted_keys if k not in ("prompt", "seed", safety)]
        assert offered == expected, machine.slug
        data = json.loads(config["data"])
        assert data == parameters.machine_defaults(machine), machine.slug
        for key, value in machine.defaults.items():
            if key in offered:
                assert data[key] == value, (machine.slug, key)


@pytest.mark.django_db
def test_placing_the_defaults_from_the_form_sends_only_schema_keys(catalog, client):
    for machine in FactoryMachine.objects.all():
        response = client.post(f"{ADD}?machine={machine.pk}", _data(machine, _place="1"))
        assert response.status_code == 302, (machine.slug, response.content[:2000])
        order = Order.objects.get(machine=machine)
        assert order.status == OrderStatus.PLACED, machine.slug
        item = order.items.get()
        beside = {machine.safety["key"]} if machine.safety.get("workflow") else set()
        assert set(item.parameters) <= {*machine.accepted_keys, *beside}, machine.slug
        assert item.parameters["prompt"] == "a red kite over dunes"


@pytest.mark.django_db
def test_saved_draft_keeps_only_changed_values_and_knows_its_count_and_cost(catalog, client):
    machine = FactoryMachine.objects.get(slug="fal-flux-dev")
    values = {**parameters.machine_defaults(machine), "num_inference_steps": 12}
    response = client.post(ADD, _data(machine, base_parameters=json.dumps(values),
                                      runs="3", _continue="1"))
    assert response.status_code == 302
    order = Order.objects.get()
    assert order.base_parameters == {"num_inference_steps": 12}
    assert order.item_count == 3
    assert order.estimated_cost > 0
    page = client.get(reverse("admin:factory_order_change", args=[order.pk])).content.decode()
    assert json.loads(_config(page)["data"])["num_inference_steps"] == 12


@pytest.mark.django_db
def test_preview_seeds_are_the_seeds_placed_from_the_form(catalog, client):
    machine = FactoryMachine.objects.get(slug="demo-image")
    page = client.get(f"{ADD}?machine={machine.pk}").content.decode()
    seed_base = re.search(r'name="seed_base" value="(\d+)"', page).group(1)
    data = _data(machine, runs="3", seed_base=seed_base,
                 prompt="a {fox|owl} in the snow")
    previews = [
        re.findall(r'data-seed="(\d+)"', client.post(PREVIEW, data).content.decode())
        for _ in range(2)
    ]
    assert previews[0] == previews[1]
    assert len(set(previews[0])) == 6
    client.post(ADD, {**data, "_place": "1"})
    placed = Order.objects.get().items.order_by("index").values_list("seed", flat=True)
    assert [str(seed) for seed in placed] == previews[0]


@pytest.mark.django_db
def test_preview_counts_costs_and_labels_the_place_button(catalog, client):
    machine = FactoryMachine.objects.get(slug="fal-flux-dev")
    data = _data(machine, prompt="a {fox|owl}", runs="3")
    page = client.post(PREVIEW, data).content.decode()
    assert 'id="preview-count">6<' in page
    # landscape_4_3 is 1024×768: 0.786432 MP at 0.025 USD is 0.0197 an item.
    assert "Place 6 items · 0.1182 USD" in page
    assert ('id="preview-estimate">1 output × 0.786432 MP = 0.786432 megapixels × '
            '0.025 USD = 0.0197 USD</span> an item, × 6 items = 0.1182 USD') in page
    assert "Price 0.025 USD per megapixel, from" in page
    assert 'href="https://fal.ai/models/fal-ai/flux/dev"' in page
    one = client.post(PREVIEW, _data(machine)).content.decode()
    assert "Place 1 item · " in one


@pytest.mark.django_db
def test_missing_provider_key_is_refused_before_placing_naming_the_variable(
    catalog, client, settings
):
    settings.FAL_KEY = ""
    machine = FactoryMachine.objects.get(slug="fal-flux-dev")
    preview = client.post(PREVIEW, _data(machine)).content.decode()
    assert "until FAL_KEY is set" in preview
    assert 'id="place-from-form"' in preview and "disabled" in preview
    response = client.post(ADD, _data(machine, _place="1"))
    assert response.status_code == 200
    assert "until FAL_KEY is set" in response.content.decode()
    assert not Order.objects.exists() and not OrderItem.objects.exists()


@pytest.mark.django_db
def test_expensive_order_placed_from_the_form_asks_once_more(catalog, client, settings):
    settings.ORDER_CONFIRM_ABOVE = "0.10"
    machine = FactoryMachine.objects.get(slug="fal-flux-dev")
    response = client.post(ADD, _data(machine, runs="10", _place="1"))
    order = Order.objects.get()
    assert response["Location"] == reverse("admin:factory_order_place", args=[order.pk])
    assert order.status == OrderStatus.DRAFT and not order.items.exists()


def _wildcards() -> None:
    Wildcard.objects.create(name="loop", values=["__loop__"])


BAD_INPUT = [
    ("out of range", {"base_parameters": '{"width": 5000}'}, "greater than the maximum"),
    ("wrong type", {"base_parameters": '{"width": "wide"}'}, "is not of type 'integer'"),
    ("unknown key", {"base_parameters": '{"widht": 512}'}, "Did you mean 'width'"),
    ("template syntax", {"prompt": "a {fox|owl"}, "is never closed"),
    ("undefined token", {"prompt": "a ${nowhere} fox"}, "nowhere"),
    ("unknown wildcard", {"prompt": "a __nothing__ fox"}, "nothing"),
    ("recursive wildcard", {"prompt": "a __loop__ fox"}, "loop"),
    ("over the ceiling", {"sweeps": json.dumps(
        [[{"field": "width", "values": list(range(64, 2048))}]])}, "over the ceiling"),
    ("NaN", {"base_parameters": '{"width": NaN}'}, "NaN is not a number"),
    ("Infinity", {"tokens": '{"a": Infinity}'}, "Infinity is not a number"),
    ("long prompt", {"prompt": "x" * 4001}, "at most 4,000"),
    ("deep parameters", {"base_parameters": '{"a":' * 5000 + "1" + "}" * 5000},
     "Nested deeper"),
    ("deep sweeps", {"sweeps": "[" * 150_000 + "]" * 150_000}, "characters of JSON"),
    ("deep tokens", {"tokens": "[" * 50 + "]" * 50}, "Nested deeper"),
    ("deep required", {"required_parameters": "[" * 3000 + "]" * 3000}, "Nested deeper"),
    ("control character", {"prompt": "a fox\x07 in snow"}, "control character"),
    ("NUL", {"prompt": "a fox\x00"}, "Null characters are not allowed"),
    ("lone surrogate", {"tokens": '{"a": "\\ud800"}'}, "lone surrogate"),
    ("surrogate key", {"base_parameters": '{"\\udfff": 1}'}, "lone surrogate"),
    ("invalid JSON", {"sweeps": "[[{"}, "Not valid JSON"),
    ("tokens not an object", {"tokens": "[1]"}, "Expected an object"),
    ("malformed sweep", {"sweeps": '[[{"field": "width"}]]'}, "sweeps[0][0]"),
    ("unequal zip", {"sweeps": json.dumps([[{"field": "width", "values": [256, 512]},
                                            {"field": "height", "values": [256]}]])},
     "equal lengths"),
    ("negative seed", {"seed": "-1", "seed_strategy": "fixed"}, "greater than or equal to 0"),
    ("huge seed", {"seed": str(2**64)}, "less than or equal to 4294967295"),
    ("seed text", {"seed": "abc"}, "Enter a whole number"),
    ("zero runs", {"runs": "0"}, "runs: must be a whole number from 1"),
    ("prompt in parameters", {"base_parameters": '{"prompt": "sneaky"}'},
     "has a field of its own"),
    ("no prompt", {"prompt": ""}, "needs a prompt"),
    ("no such machine", {"machine": "99999"}, "Select a valid choice"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("kind,over,message", BAD_INPUT, ids=[b[0] for b in BAD_INPUT])
def test_bad_input_is_refused_in_form_and_preview_and_nothing_is_written(
    catalog, client, kind, over, message
):
    _wildcards()
    machine = FactoryMachine.objects.get(slug="demo-image")
    data = _data(machine, **over)
    preview = client.post(PREVIEW, data)
    assert preview.status_code == 200
    assert message in html.unescape(preview.content.decode()), kind
    assert 'id="place-from-form"' in preview.content.decode()
    placed = client.post(ADD, {**data, "_place": "1"})
    assert placed.status_code == 200, kind
    assert message in html.unescape(placed.content.decode()), kind
    assert not Order.objects.exists() and not OrderItem.objects.exists()


@pytest.mark.django_db
def test_a_draft_holding_a_lone_surrogate_still_opens(catalog, client):
    if connection.vendor == "postgresql":
        pytest.skip("PostgreSQL's jsonb refuses lone surrogates: such a draft cannot exist")
    order = Order.objects.create(
        machine=FactoryMachine.objects.get(slug="demo-image"), prompt="a fox",
        tokens={"mood": "\udfff"},
    )
    response = client.get(reverse("admin:factory_order_change", args=[order.pk]))
    assert response.status_code == 200
    assert "\\udfff" in response.content.decode()


@pytest.mark.django_db
def test_placed_order_shows_neither_save_nor_delete(demo_order, client):
    page = client.get(reverse("admin:factory_order_change", args=[demo_order.pk]))
    text = page.content.decode()
    assert page.status_code == 200
    assert 'name="_save"' not in text and 'name="_continue"' not in text
    assert "/delete/" not in text
    assert "/place/" not in text  # no "Place order" on a placed order
    delete = client.get(reverse("admin:factory_order_delete", args=[demo_order.pk]))
    assert delete.status_code == 403


@pytest.mark.django_db
def test_preview_answers_only_post_from_people_who_may_order(catalog, client, viewer):
    machine = FactoryMachine.objects.get(slug="demo-image")
    assert client.get(PREVIEW).status_code == 405
    other = Client()
    other.force_login(viewer)
    assert other.post(PREVIEW, _data(machine)).status_code == 403


@pytest.mark.django_db
def test_preview_of_a_placed_order_is_refused(demo_order, client):
    url = reverse("admin:factory_order_preview_change", args=[demo_order.pk])
    assert client.post(url, _data(demo_order.machine)).status_code == 403


@pytest.mark.django_db
def test_switching_machine_carries_values_and_lists_what_was_dropped(catalog, client):
    demo = FactoryMachine.objects.get(slug="demo-image")
    flux = FactoryMachine.objects.get(slug="fal-flux-dev")
    values = {**parameters.machine_defaults(demo), "width": 640, "height": 480,
              "negative_prompt": "blurry"}
    response = client.post(reverse("admin:factory_order_switch_machine"), {
        "machine": str(flux.pk), "parameters_machine": str(demo.pk),
        "base_parameters": json.dumps(values),
        "sweeps": '[[{"field": "seed", "values": [1, 2]}]]',
    })
    assert response.status_code == 200
    text = response.content.decode()
    data = json.loads(_config(text)["data"])
    assert data["image_size"] == {"width": 640, "height": 480}
    assert data["num_inference_steps"] == 28  # the new machine's default
    assert "negative_prompt" in html.unescape(text) and "dropped" in text
    assert f'name="parameters_machine" value="{flux.pk}"' in text
    # The sweep editor comes again, offering the new machine's fields.
    assert 'hx-swap-oob="outerHTML:.af-sweeps"' in text
    assert "guidance_scale" in html.unescape(text)


@pytest.mark.django_db
def test_switching_carries_a_size_when_only_one_side_changed(catalog, client):
    demo = FactoryMachine.objects.get(slug="demo-image")
    flux = FactoryMachine.objects.get(slug="fal-flux-dev")
    values = {**parameters.machine_defaults(demo), "width": 512}
    response = client.post(reverse("admin:factory_order_switch_machine"), {
        "machine": str(flux.pk), "parameters_machine": str(demo.pk),
        "base_parameters": json.dumps(values),
    })
    data = json.loads(_config(response.content.decode())["data"])
    assert data["image_size"] == {"width": 512, "height": 768}
    assert "order-note-warning" not in response.content.decode()

"""The sweep, prompt and tokens editors: fields described, values rendered."""
import html
import json

import pytest
from django.urls import reverse
from django.utils.html import escape

from admin_ext.widgets import (
    PromptWidget, SweepsWidget, TokensWidget, sweepable_fields,
)
from factory.models import FactoryMachine, Order, Wildcard

TYPES = {"integer", "number", "string", "boolean", "object"}


def _data(html_text: str, attribute: str) -> object:
    """The JSON in one data-* attribute of rendered HTML."""
    start = html_text.index(f'data-{attribute}="') + len(attribute) + 7
    return json.loads(html.unescape(html_text[start:html_text.index('"', start)]))


def test_every_seed_machine_describes_its_sweepable_fields(catalog):
    machines = list(FactoryMachine.objects.select_related("provider"))
    active = sorted(m.slug for m in FactoryMachine.objects.active())
    assert len(machines) >= 10
    for machine in machines:
        fields = {f["name"]: f for f in sweepable_fields(machine)}
        properties = machine.input_schema["properties"]
        safety_key = machine.safety.get("key")
        if safety_key:
            assert safety_key not in fields, machine.slug
        expected = {"prompt", "seed", "machine"} | set(properties) - {safety_key}
        assert set(fields) == expected, machine.slug
        assert sorted(fields["machine"]["enum"]) == active
        for name, spec in properties.items():
            if name == safety_key:
                continue
            assert fields[name]["type"] in TYPES, (machine.slug, name)
            if "enum" in spec:
                assert fields[name]["enum"] == spec["enum"], (machine.slug, name)
            if "minimum" in spec:
                assert fields[name]["minimum"] == spec["minimum"]


def test_fields_say_how_values_are_typed(catalog):
    flux = FactoryMachine.objects.get(slug="fal-flux-dev")
    fields = {f["name"]: f for f in sweepable_fields(flux)}
    assert "enable_safety_checker" not in fields
    assert fields["num_inference_steps"] == {
        "name": "num_inference_steps", "label": "num_inference_steps",
        "type": "integer", "enum": None, "minimum": 1, "maximum": 50,
        "group": "machine",
    }
    assert fields["guidance_scale"]["type"] == "number"
    # A preset name or a {"width", "height"} object: typed as JSON values.
    assert fields["image_size"]["type"] == "object"
    assert "landscape_16_9" in fields["image_size"]["enum"]
    assert fields["seed"]["maximum"] == 2**32 - 1
    assert [f["group"] for f in sweepable_fields(flux)][:3] == ["order"] * 3


def test_machine_choices_are_the_machines_given(catalog):
    demo = FactoryMachine.objects.get(slug="demo-image")
    video = FactoryMachine.objects.get(slug="demo-video")
    video.is_active = False
    fields = {f["name"]: f for f in sweepable_fields(demo, [demo, video])}
    assert fields["machine"]["enum"] == ["demo-image"]


def test_sweeps_widget_renders_the_engine_value_and_its_fields(catalog):
    demo = FactoryMachine.objects.get(slug="demo-image")
    sweeps = [[{"field": "prompt", "values": ["a \"fox\"", "<b>owl</b>"]}]]
    rendered = SweepsWidget(sweepable_fields(demo)).render(
        "sweeps", json.dumps(sweeps), attrs={"id": "id_sweeps"})
    assert 'x-data="afSweeps"' in rendered
    assert 'name="sweeps"' in rendered and 'x-ref="json"' in rendered
    assert f'x-ref="json" x-on:input="jsonTyped()">{escape(json.dumps(sweeps))}<' in rendered
    assert "<b>owl</b>" not in rendered
    fields = _data(rendered, "fields")
    assert [f["name"] for f in fields][:3] == ["prompt", "seed", "machine"]
    assert _data(rendered, "cap") == 1000


def test_prompt_widget_offers_wildcards_and_parameters():
    rendered = PromptWidget(["colors/warm", "animals"], parameters=["width"]).render(
        "prompt", "a ${subject} in __colors/warm__", attrs={"id": "id_prompt"})
    assert 'x-data="afPrompt"' in rendered
    assert _data(rendered, "wildcards") == ["animals", "colors/warm"]
    assert _data(rendered, "parameters") == ["width"]
    assert ">a ${subject} in __colors/warm__</textarea>" in rendered
    assert "{2$$fox|heron|owl}" in rendered  # the syntax help


def test_tokens_widget_renders_the_current_dict():
    rendered = TokensWidget().render("tokens", '{"subject": "fox", "n": 42}')
    assert 'x-data="afTokens"' in rendered
    assert "{&quot;subject&quot;: &quot;fox&quot;, &quot;n&quot;: 42}" in rendered


@pytest.mark.django_db
def test_order_change_page_uses_the_editors(client, lead, catalog):
    Wildcard.objects.create(name="lighting/golden", values=["golden hour"])
    order = Order.objects.create(
        machine=FactoryMachine.objects.get(slug="fal-flux-dev"), prompt="a ${x}",
        tokens={"x": "fox"}, sweeps=[[{"field": "seed", "values": [1, 2]}]],
    )
    client.force_login(lead)
    page = client.get(reverse("admin:factory_order_change", args=[order.pk]))
    text = page.content.decode()
    assert page.status_code == 200
    for name in ("afPrompt", "afTokens", "afSweeps"):
        assert f'x-data="{name}"' in text
    assert _data(text, "wildcards") == ["lighting/golden"]
    names = [f["name"] for f in _data(text, "fields")]
    assert "guidance_scale" in names and "enable_safety_checker" not in names
    assert "[[{&quot;field&quot;: &quot;seed&quot;, &quot;values&quot;: [1, 2]}]]" in text
    assert "admin_ext/editors.js" in text and "admin_ext/editors.css" in text


@pytest.mark.django_db
def test_add_page_takes_the_machine_from_the_query(client, lead, catalog):
    client.force_login(lead)
    url = reverse("admin:factory_order_add")
    demo = FactoryMachine.objects.get(slug="demo-audio")
    chosen = [f["name"] for f in _data(
        client.get(f"{url}?machine={demo.pk}").content.decode(), "fields")]
    assert "seconds_total" in chosen
    assert chosen[3:] == [n for n in demo.accepted_keys
                          if n not in ("prompt", "seed", demo.safety.get("key"))]

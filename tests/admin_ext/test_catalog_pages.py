"""Catalog pages read first: a machine's inputs as a table, key status."""
import html as html_lib
import re

import pytest
from django.test import Client
from django.urls import reverse

from factory.models import FactoryMachine, Provider
from factory.parameters.describe import describe_schema

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def machine_page(client: Client, machine: FactoryMachine) -> str:
    response = client.get(
        reverse("admin:factory_factorymachine_change", args=[machine.pk])
    )
    assert response.status_code == 200, machine.slug
    return response.content.decode()


def test_machine_page_shows_a_row_for_every_property_of_every_seed_machine(
    catalog, lead
):
    client = client_for(lead)
    machines = list(FactoryMachine.objects.all())
    assert len(machines) >= 15
    for machine in machines:
        page = machine_page(client, machine)
        shown = re.findall(r'<tr data-field="([^"]+)">', page)
        assert shown == list(machine.input_schema["properties"]), machine.slug


def test_schema_table_shows_type_range_default_and_description(catalog, lead):
    flux = FactoryMachine.objects.get(slug="fal-flux-dev")
    page = machine_page(client_for(lead), flux)
    steps = re.search(r'<tr data-field="num_inference_steps">.*?</tr>', page, re.S).group(0)
    assert "<td class=\"whitespace-nowrap\">integer</td>" in steps
    assert "1–50" in steps
    assert "<code>28</code>" in steps
    guidance = re.search(r'<tr data-field="guidance_scale">.*?</tr>', page, re.S).group(0)
    assert "How closely to follow the prompt (CFG)." in guidance
    # The machine's default (off) wins over the schema's (on).
    safety = re.search(r'<tr data-field="enable_safety_checker">.*?</tr>', page, re.S).group(0)
    assert "<code>false</code>" in safety
    size = re.search(r'<tr data-field="image_size">.*?</tr>', page, re.S).group(0)
    assert "Preset: one of square_hd" in html_lib.unescape(size)
    assert "0.025 USD per megapixel" in page
    for row in describe_schema(flux.input_schema, flux.defaults):
        assert f'<tr data-field="{row.name}">' in page


def test_raw_json_fields_sit_in_a_collapsed_fieldset(catalog, lead):
    page = machine_page(client_for(lead), FactoryMachine.objects.get(slug="demo-image"))
    raw = page[page.index("Raw model inputs") - 600:]
    assert "<details>" in raw[:700]
    for name in ("input_schema", "defaults", "aliases", "safety"):
        assert f'name="{name}"' in raw
    assert page.index('id="schema-table"') < page.index("Raw model inputs")


def test_machine_page_shows_key_status(catalog, lead, settings):
    flux = FactoryMachine.objects.get(slug="fal-flux-dev")
    client = client_for(lead)
    assert "configured" in re.search(
        r'id="machine-key".*?</dd>', machine_page(client, flux), re.S
    ).group(0)
    settings.FAL_KEY = ""
    key = re.search(r'id="machine-key".*?</dd>', machine_page(client, flux), re.S).group(0)
    assert "needs FAL_KEY" in key
    assert "restart" in key


def test_provider_changelist_shows_key_status(catalog, lead, settings, django_assert_max_num_queries):
    settings.FAL_KEY = ""
    client = client_for(lead)
    with django_assert_max_num_queries(10):
        response = client.get(reverse("admin:factory_provider_changelist"))
    page = response.content.decode()
    rows = {
        re.search(r">([^<]+)</a></th>", row).group(1): row
        for row in page.split("<tr")[1:] if "field-display_key" in row
    }
    assert "needs FAL_KEY" in rows["fal.ai"]
    assert "configured" in rows["Replicate"]
    assert "needs" not in rows["Replicate"]


def test_provider_page_shows_key_status(catalog, lead, settings):
    settings.REPLICATE_API_TOKEN = ""
    provider = Provider.objects.get(slug="replicate")
    response = client_for(lead).get(
        reverse("admin:factory_provider_change", args=[provider.pk])
    )
    page = response.content.decode()
    assert "needs REPLICATE_API_TOKEN" in page
    assert "in the environment or <code>.env</code>" in page


def test_machine_changelist_price_uses_the_price_label(catalog, lead):
    page = client_for(lead).get(
        reverse("admin:factory_factorymachine_changelist")
    ).content.decode()
    assert "0.025 USD per megapixel" in page
    assert "Free" in page
    assert "E+" not in page


def test_viewer_reads_the_machine_page(catalog, viewer):
    page = machine_page(client_for(viewer), FactoryMachine.objects.get(slug="demo-image"))
    assert '<tr data-field="width">' in page

"""The machine picker: the first step of "New order", and machine stars."""
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from factory.models import FactoryMachine, Modality, Product, Provider

pytestmark = pytest.mark.django_db

ADD = reverse("admin:factory_order_add")
PICKER_QUERIES = 6


def star_url(machine: FactoryMachine) -> str:
    return reverse("admin:factory_order_star", args=[machine.pk])


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def card_groups(html: str) -> dict[int, str]:
    """Machine pk → the data-group of the section its card sits in."""
    groups = {}
    for group, body in re.findall(
        r'<section class="picker-group" data-group="(\w+)"(.*?)</section>', html, re.S
    ):
        for pk in re.findall(r'id="machine-card-(\d+)"', body):
            assert int(pk) not in groups, f"machine {pk} shown twice"
            groups[int(pk)] = group
    return groups


def test_picker_lists_every_active_machine_in_its_modality_group(catalog, operator):
    retired = FactoryMachine.objects.get(slug="fal-flux-schnell")
    retired.is_active = False
    retired.save()
    Provider.objects.filter(slug="civitai").update(is_active=False)

    response = client_for(operator).get(ADD)

    assert response.status_code == 200
    assert response.templates[0].name == "admin_ext/orders/picker.html"
    expected = {
        m.pk: m.modality for m in FactoryMachine.objects.active()
    }
    assert len(expected) >= 12
    assert card_groups(response.content.decode()) == expected
    html = response.content.decode()
    assert f"{ADD}?machine={retired.pk}\"" not in html
    civitai = FactoryMachine.objects.get(slug="civitai-sdxl-1-0")
    assert f'id="machine-card-{civitai.pk}"' not in html  # its provider is off
    sections = re.findall(r'data-group="(\w+)"', html)
    assert sections == [Modality.IMAGE, Modality.VIDEO, Modality.AUDIO]


def test_card_shows_price_summary_and_link(catalog, operator):
    flux = FactoryMachine.objects.get(slug="fal-flux-dev")
    html = client_for(operator).get(ADD).content.decode()
    card = re.search(rf'id="machine-card-{flux.pk}".*?</article>', html, re.S).group(0)
    assert "0.025 USD per megapixel" in card
    assert "FLUX.1 dev, 12B text-to-image.</p>" in card
    assert f'href="{ADD}?machine={flux.pk}"' in card
    assert "needs" not in card


def test_provider_without_key_shows_badge_and_no_link(catalog, operator, settings):
    settings.FAL_KEY = ""
    html = client_for(operator).get(ADD).content.decode()
    for machine in FactoryMachine.objects.active().filter(provider__slug="fal"):
        card = re.search(
            rf'id="machine-card-{machine.pk}".*?</article>', html, re.S
        ).group(0)
        assert "needs FAL_KEY" in card
        assert "?machine=" not in card
        assert "in the environment or <code>.env</code>, then restart" in card
    replicate = FactoryMachine.objects.filter(provider__slug="replicate").first()
    assert f'href="{ADD}?machine={replicate.pk}"' in html


def test_newest_product_thumbnail_is_the_sample(demo_order, operator):
    machine = demo_order.machine
    newest = Product.objects.filter(machine=machine).select_related("media").first()
    html = client_for(operator).get(ADD).content.decode()
    card = re.search(rf'id="machine-card-{machine.pk}".*?</article>', html, re.S).group(0)
    assert f'<img src="{newest.media.thumbnail.url}"' in card
    other = FactoryMachine.objects.get(slug="demo-video")
    card = re.search(rf'id="machine-card-{other.pk}".*?</article>', html, re.S).group(0)
    assert "<img" not in card


def test_query_filters_by_name(catalog, operator):
    html = client_for(operator).get(ADD, {"q": "flux"}).content.decode()
    shown = set(card_groups(html))
    flux = set(FactoryMachine.objects.active().filter(name__icontains="flux")
               .values_list("pk", flat=True))
    assert shown == flux
    assert len(flux) >= 5
    assert 'value="flux"' in html


def test_query_without_match_says_so(catalog, operator):
    html = client_for(operator).get(ADD, {"q": "nothing-like-this"}).content.decode()
    assert card_groups(html) == {}
    assert "No active machine matches" in html


def test_starring_puts_a_machine_first_and_unstarring_removes_it(catalog, operator):
    client = client_for(operator)
    audio = FactoryMachine.objects.get(slug="demo-audio")

    response = client.post(star_url(audio), {"star": "1"})

    assert response.status_code == 200
    assert 'class="picker-star is-starred"' in response.content.decode()
    assert '"star": "0"' in response.content.decode()
    html = client.get(ADD).content.decode()
    assert card_groups(html)[audio.pk] == "starred"
    assert re.findall(r'id="machine-card-(\d+)"', html)[0] == str(audio.pk)

    response = client.post(star_url(audio), {"star": "0"})

    assert '"star": "1"' in response.content.decode()
    assert not audio.starred_by.exists()
    html = client.get(ADD).content.decode()
    assert card_groups(html)[audio.pk] == Modality.AUDIO
    assert 'data-group="starred"' not in html


def test_stars_are_per_user(catalog, operator, lead):
    audio = FactoryMachine.objects.get(slug="demo-audio")
    client_for(operator).post(star_url(audio), {"star": "1"})
    html = client_for(lead).get(ADD).content.decode()
    assert card_groups(html)[audio.pk] == Modality.AUDIO


def test_star_refuses_get_anonymous_and_viewer(catalog, operator, viewer):
    audio = FactoryMachine.objects.get(slug="demo-audio")
    assert client_for(operator).get(star_url(audio)).status_code == 405
    anonymous = Client().post(star_url(audio), {"star": "1"})
    assert anonymous.status_code == 302
    assert "/login/" in anonymous["Location"]
    assert client_for(viewer).post(star_url(audio), {"star": "1"}).status_code == 403
    assert not audio.starred_by.exists()


def test_star_needs_csrf_token(catalog, operator):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    audio = FactoryMachine.objects.get(slug="demo-audio")
    assert client.post(star_url(audio), {"star": "1"}).status_code == 403
    assert not audio.starred_by.exists()


def test_viewer_gets_403_on_the_add_page(catalog, viewer):
    client = client_for(viewer)
    assert client.get(ADD).status_code == 403
    machine = FactoryMachine.objects.get(slug="demo-image")
    assert client.get(ADD, {"machine": machine.pk}).status_code == 403


def test_machine_parameter_opens_the_form(catalog, operator):
    machine = FactoryMachine.objects.get(slug="demo-image")
    response = client_for(operator).get(ADD, {"machine": machine.pk})
    assert response.status_code == 200
    assert 'id="machine-picker"' not in response.content.decode()
    assert 'id="order_form"' in response.content.decode()


def _count_picker_queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(ADD).status_code == 200
    return len(queries)


def test_picker_queries_do_not_grow_with_the_catalog(
    demo_order, operator, django_assert_max_num_queries
):
    client = client_for(operator)
    for machine in FactoryMachine.objects.all()[:3]:
        machine.starred_by.add(operator)
    with django_assert_max_num_queries(PICKER_QUERIES):
        client.get(ADD)
    before = _count_picker_queries(client)
    template = FactoryMachine.objects.get(slug="demo-image")
    for n in range(25):
        template.pk = None
        template.slug = f"demo-copy-{n}"
        template.save()
        template.starred_by.add(operator)
    assert _count_picker_queries(client) == before

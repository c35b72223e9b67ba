"""Submissions ask for webhooks only when this server is reachable, and the
fakes' signed completion calls make the submitted item due over real HTTP."""
from datetime import timedelta

import pytest
from django.utils import timezone

from factory.models import FactoryMachine, ItemStatus, Order, OrderItem
from factory.providers.fal import FalBackend
from factory.providers.replicate import ReplicateBackend
from tests.fakes.replicate import FakeReplicate

FLUX = "fal-flux-dev"
SCHNELL = "replicate-flux-schnell"
BASE = "https://factory.example.com"


@pytest.fixture
def fake_replicate(settings):
    fake = FakeReplicate(token="r8_test").start()
    settings.REPLICATE_API_TOKEN = "r8_test"
    settings.REPLICATE_BASE_URL = fake.url
    yield fake
    fake.stop()


def fal_submit(machine) -> str:
    return FalBackend().submit(machine, {**machine.defaults, "prompt": "a kite"})


def replicate_submit(machine) -> str:
    return ReplicateBackend().submit(machine, {**machine.defaults, "prompt": "a kite"})


@pytest.fixture
def flux(catalog) -> FactoryMachine:
    return FactoryMachine.objects.get(slug=FLUX)


@pytest.fixture
def schnell(catalog) -> FactoryMachine:
    return FactoryMachine.objects.get(slug=SCHNELL)


# ---------------------------------------------------------------- fal
@pytest.mark.django_db
def test_fal_submit_sends_no_webhook_while_the_setting_is_unset(
    fake_fal, flux, settings
):
    settings.WEBHOOK_BASE_URL = ""
    fal_submit(flux)
    [sent] = fake_fal.submissions()
    assert sent.query == {}


@pytest.mark.django_db
def test_fal_submit_names_the_webhook_when_the_server_is_reachable(
    fake_fal, flux, settings
):
    settings.WEBHOOK_BASE_URL = BASE + "/"
    fal_submit(flux)
    [sent] = fake_fal.submissions()
    assert sent.query == {"fal_webhook": [BASE + "/hooks/fal/"]}


# ---------------------------------------------------------------- replicate
@pytest.mark.django_db
@pytest.mark.parametrize("base, secret", [("", "whsec_c2VjcmV0"), (BASE, "")])
def test_replicate_create_sends_no_webhook_unless_reachable_and_verifiable(
    fake_replicate, schnell, settings, base, secret
):
    settings.WEBHOOK_BASE_URL, settings.REPLICATE_WEBHOOK_SECRET = base, secret
    pid = replicate_submit(schnell)
    assert fake_replicate.webhook_of(pid) == (None, [])
    [create] = [r for r in fake_replicate.requests if r.method == "POST"]
    assert set(create.json()) == {"input"}


@pytest.mark.django_db
def test_replicate_create_asks_for_the_completed_event(
    fake_replicate, schnell, settings
):
    settings.WEBHOOK_BASE_URL = BASE
    settings.REPLICATE_WEBHOOK_SECRET = fake_replicate.webhook_secret
    pid = replicate_submit(schnell)
    assert fake_replicate.webhook_of(pid) == (BASE + "/hooks/replicate/", ["completed"])


# ---------------------------------------------------------------- end to end
def submitted_item(machine: FactoryMachine, request_id: str, user) -> OrderItem:
    order = Order.objects.create(machine=machine, prompt="a kite", created_by=user)
    return OrderItem.objects.create(
        order=order, machine=machine, index=0, parameters={"prompt": "a kite"},
        status=ItemStatus.SUBMITTED, request_id=request_id,
        lease_owner="foreman:elsewhere", lease_until=timezone.now() + timedelta(hours=1),
    )


def assert_due_now(item: OrderItem) -> None:
    item.refresh_from_db()
    assert (item.status, item.lease_owner) == (ItemStatus.SUBMITTED, "")
    assert item.lease_until <= timezone.now()


@pytest.mark.django_db(transaction=True)
def test_fal_delivers_a_signed_webhook_that_makes_the_item_due(
    fake_fal, flux, lead, live_server, redis_db, settings
):
    settings.WEBHOOK_BASE_URL = live_server.url
    settings.FAL_WEBHOOK_KEYS = fake_fal.jwks
    request_id = fal_submit(flux)
    item = submitted_item(flux, request_id, lead)

    response = fake_fal.deliver_webhook(request_id)

    assert (response.status_code, response.text) == (200, "polling now\n")
    assert_due_now(item)
    assert fake_fal.deliver_webhook(request_id).status_code == 400  # a replay


@pytest.mark.django_db(transaction=True)
def test_replicate_delivers_a_signed_webhook_that_makes_the_item_due(
    fake_replicate, schnell, lead, live_server, redis_db, settings
):
    settings.WEBHOOK_BASE_URL = live_server.url
    settings.REPLICATE_WEBHOOK_SECRET = fake_replicate.webhook_secret
    pid = replicate_submit(schnell)
    item = submitted_item(schnell, pid, lead)

    response = fake_replicate.deliver_webhook(pid, webhook_id="msg_1")

    assert (response.status_code, response.text) == (200, "polling now\n")
    assert_due_now(item)
    replay = fake_replicate.deliver_webhook(pid, webhook_id="msg_1")
    assert replay.status_code == 400

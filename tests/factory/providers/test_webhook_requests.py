"""Submissions ask for webhooks only when this server is reachable, and the
fakes' signed completion calls make the submitted item due over real HTTP."""
import time
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from factory.models import FactoryMachine, ItemStatus, Order, OrderItem
from factory.production.foreman import Tuning, tick
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


def post_call(url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(url, content=body, headers=headers, timeout=30)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("spoil", ["tampered", "stale", "ahead"])
def test_fal_calls_spoilt_on_the_way_change_nothing(
    fake_fal, flux, lead, live_server, redis_db, settings, spoil
):
    """The fake's own signed call, with its body changed after signing or
    its timestamp more than 300 s off, is refused over real HTTP."""
    settings.WEBHOOK_BASE_URL = live_server.url
    settings.FAL_WEBHOOK_KEYS = fake_fal.jwks
    request_id = fal_submit(flux)
    item = submitted_item(flux, request_id, lead)
    offset = {"stale": -301, "ahead": 301}.get(spoil, 0)
    url, body, headers = fake_fal.webhook_call(
        request_id, timestamp=int(time.time()) + offset)
    if spoil == "tampered":
        body = body.replace(b'"OK"', b'"ERROR"')

    response = post_call(url, body, headers)

    assert response.status_code == 401, response.text
    item.refresh_from_db()
    assert item.lease_owner == "foreman:elsewhere"  # not made due
    # The genuine call still goes through afterwards: nothing was recorded.
    assert fake_fal.deliver_webhook(request_id).status_code == 200


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("spoil", ["tampered", "stale"])
def test_replicate_calls_spoilt_on_the_way_change_nothing(
    fake_replicate, schnell, lead, live_server, redis_db, settings, spoil
):
    settings.WEBHOOK_BASE_URL = live_server.url
    settings.REPLICATE_WEBHOOK_SECRET = fake_replicate.webhook_secret
    pid = replicate_submit(schnell)
    item = submitted_item(schnell, pid, lead)
    stamp = int(time.time()) - (301 if spoil == "stale" else 0)
    url, body, headers = fake_replicate.webhook_call(
        pid, webhook_id="msg_1", timestamp=stamp)
    if spoil == "tampered":
        body = body.replace(b'"id"', b'"Id"', 1)

    response = post_call(url, body, headers)

    assert response.status_code == 401, response.text
    item.refresh_from_db()
    assert item.lease_owner == "foreman:elsewhere"


@pytest.mark.django_db(transaction=True)
def test_a_lost_webhook_is_caught_by_polling_within_its_interval(
    fake_fal, flux, lead, live_server, redis_db, settings
):
    """Submitted with a webhook that never comes: the foreman's own poll
    finds the finished request within the fallback interval (and a tick),
    and makes no status call before it."""
    settings.WEBHOOK_BASE_URL = live_server.url
    fake_fal.seconds_per_stage = 0.3  # finished 0.6 s after the submit
    tuning = Tuning(tick_seconds=0.05, poll_seconds=0.1, webhook_poll_seconds=1.5,
                    batch_size=10, sweep_every=1000)
    request_id = fal_submit(flux)
    item = submitted_item(flux, request_id, lead)
    OrderItem.objects.filter(pk=item.pk).update(  # just accepted, never polled
        lease_owner="", lease_until=None, submitted_at=timezone.now())
    finished_at = fake_fal.jobs[request_id].sent_at + 0.6
    assert fake_fal.jobs[request_id].webhook == live_server.url + "/hooks/fal/"

    deadline = time.monotonic() + 10
    while not OrderItem.objects.filter(pk=item.pk, status=ItemStatus.COLLECTING).exists():
        assert time.monotonic() < deadline, OrderItem.objects.filter(pk=item.pk).values().get()
        tick("foreman:test", tuning)
        time.sleep(tuning.tick_seconds)
    noticed = time.time() - finished_at
    submitted = fake_fal.jobs[request_id].sent_at

    # First poll at the fallback (1.5 s after the submit, 0.9 s after the end).
    assert 0.5 <= noticed <= tuning.webhook_poll_seconds + 0.5, noticed
    assert time.time() - submitted >= tuning.webhook_poll_seconds
    assert fake_fal.jobs[request_id].polls == 1  # found by its own status call

"""Webhook endpoints: a verified call makes its item due; nothing else does."""
import json
import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from factory.models import FactoryMachine, ItemStatus, Order, OrderItem, Product
from tests.fakes.fal import FakeFal
from tests.fakes.replicate import FakeReplicate

pytestmark = pytest.mark.django_db

FAL_URL, REPLICATE_URL = "/hooks/fal/", "/hooks/replicate/"


@pytest.fixture(autouse=True)
def direct_to_fakes(monkeypatch):
    """The endpoint's key fetches to 127.0.0.1 bypass any proxy."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def fal_signer(settings) -> FakeFal:
    """A fal key pair whose public half the endpoint trusts (not started)."""
    signer = FakeFal()
    settings.FAL_WEBHOOK_KEYS = signer.jwks
    return signer


@pytest.fixture
def replicate_signer(settings) -> FakeReplicate:
    """A Replicate signing secret the endpoint shares (not started)."""
    signer = FakeReplicate()
    settings.REPLICATE_WEBHOOK_SECRET = signer.webhook_secret
    return signer


@pytest.fixture
def submitted(catalog, lead, redis_db):
    """Make an item submitted under ``request_id``, next polled in an hour."""

    def make(machine_slug: str, request_id: str) -> OrderItem:
        machine = FactoryMachine.objects.get(slug=machine_slug)
        order = Order.objects.create(machine=machine, prompt="a kite", created_by=lead)
        return OrderItem.objects.create(
            order=order, machine=machine, index=0, parameters={"prompt": "a kite"},
            status=ItemStatus.SUBMITTED, request_id=request_id,
            lease_owner="foreman:elsewhere",
            lease_until=timezone.now() + timedelta(hours=1),
        )

    return make


def row(item: OrderItem) -> dict:
    return OrderItem.objects.filter(pk=item.pk).values().get()


def fal_body(request_id: str, status: str = "OK") -> bytes:
    # Claims success with an output; the endpoint must believe none of it.
    return json.dumps({"request_id": request_id, "status": status, "payload": {
        "images": [{"url": "https://attacker.example/x.png"}]}}).encode()


def post(url: str, body: bytes, headers: dict[str, str]):
    client = Client(enforce_csrf_checks=True)
    return client.post(url, data=body, content_type="application/json",
                       headers=headers)


def assert_due_now(item: OrderItem) -> None:
    after = row(item)
    assert after["status"] == ItemStatus.SUBMITTED
    assert after["lease_owner"] == ""
    assert after["lease_until"] <= timezone.now()


# ---------------------------------------------------------------- fal
def test_routes_are_named_for_their_providers():
    assert reverse("webhook-fal") == FAL_URL
    assert reverse("webhook-replicate") == REPLICATE_URL


def test_verified_fal_webhook_makes_the_item_due_at_once(submitted, fal_signer):
    item = submitted("fal-flux-dev", "req-1")
    body = fal_body("req-1")

    response = post(FAL_URL, body, fal_signer.sign_webhook("req-1", body))

    assert (response.status_code, response.content) == (200, b"polling now\n")
    assert_due_now(item)
    assert row(item)["completed_at"] is None  # the body's "OK" was not believed
    assert Product.objects.filter(item=item).count() == 0


def test_fal_webhook_with_a_tampered_body_is_refused(submitted, fal_signer):
    item = submitted("fal-flux-dev", "req-1")
    before = row(item)
    headers = fal_signer.sign_webhook("req-1", fal_body("req-1"))

    response = post(FAL_URL, fal_body("req-1", status="ERROR"), headers)

    assert response.status_code == 401
    assert b"signature matches none" in response.content
    assert row(item) == before


def test_fal_webhook_signed_by_another_key_is_refused(submitted, fal_signer):
    item = submitted("fal-flux-dev", "req-1")
    before, body = row(item), fal_body("req-1")

    response = post(FAL_URL, body, FakeFal().sign_webhook("req-1", body))

    assert response.status_code == 401
    assert row(item) == before


def test_stale_fal_webhook_is_refused(submitted, fal_signer):
    item = submitted("fal-flux-dev", "req-1")
    before, body = row(item), fal_body("req-1")
    stale = int(time.time()) - 600

    response = post(FAL_URL, body, fal_signer.sign_webhook("req-1", body, timestamp=stale))

    assert response.status_code == 401
    assert b"old (limit 300s)" in response.content
    assert row(item) == before


def test_replayed_fal_webhook_is_refused(submitted, fal_signer):
    item = submitted("fal-flux-dev", "req-1")
    body = fal_body("req-1")
    headers = fal_signer.sign_webhook("req-1", body)
    assert post(FAL_URL, body, headers).status_code == 200
    OrderItem.objects.filter(pk=item.pk).update(
        lease_owner="foreman:elsewhere", lease_until=timezone.now() + timedelta(hours=1))
    before = row(item)

    response = post(FAL_URL, body, headers)

    assert response.status_code == 400
    assert b"already received" in response.content
    assert row(item) == before


def test_fal_webhook_for_an_unknown_request_is_refused(submitted, fal_signer):
    item = submitted("fal-flux-dev", "req-1")
    before, body = row(item), fal_body("req-other")

    response = post(FAL_URL, body, fal_signer.sign_webhook("req-other", body))

    assert (response.status_code, response.content) == (
        404, b"unknown fal request req-other\n")
    assert row(item) == before


def test_fal_webhook_does_not_match_another_providers_request(submitted, fal_signer):
    item = submitted("replicate-flux-schnell", "req-1")
    before, body = row(item), fal_body("req-1")

    response = post(FAL_URL, body, fal_signer.sign_webhook("req-1", body))

    assert response.status_code == 404
    assert row(item) == before


def test_fal_webhook_for_an_item_already_collecting_changes_nothing(
    submitted, fal_signer
):
    item = submitted("fal-flux-dev", "req-1")
    OrderItem.objects.filter(pk=item.pk).update(status=ItemStatus.COLLECTING)
    before, body = row(item), fal_body("req-1")

    response = post(FAL_URL, body, fal_signer.sign_webhook("req-1", body))

    assert response.status_code == 200
    assert row(item) == before


def test_fal_keys_come_from_the_jwks_url_when_not_configured(submitted, settings):
    fake = FakeFal().start()
    try:
        settings.FAL_WEBHOOK_KEYS = None
        settings.FAL_WEBHOOK_JWKS_URL = fake.url + "/.well-known/jwks.json"
        cache.clear()
        item = submitted("fal-flux-dev", "req-1")
        body = fal_body("req-1")

        response = post(FAL_URL, body, fake.sign_webhook("req-1", body))
    finally:
        fake.stop()
        cache.clear()
    assert response.status_code == 200
    assert_due_now(item)


def test_unsigned_fal_call_is_refused_before_any_key_fetch(submitted, settings):
    fake = FakeFal().start()
    try:
        settings.FAL_WEBHOOK_KEYS = None
        settings.FAL_WEBHOOK_JWKS_URL = fake.url + "/.well-known/jwks.json"
        cache.clear()
        item = submitted("fal-flux-dev", "req-1")
        before = row(item)

        response = post(FAL_URL, fal_body("req-1"), {})
    finally:
        fake.stop()
    assert response.status_code == 401
    assert b"missing header(s) X-Fal-Webhook-Request-Id" in response.content
    assert fake.requests == []
    assert row(item) == before


def test_fal_webhook_without_reachable_keys_is_unavailable(submitted, settings):
    settings.FAL_WEBHOOK_KEYS = None
    settings.FAL_WEBHOOK_JWKS_URL = "http://127.0.0.1:9/.well-known/jwks.json"
    cache.clear()
    item = submitted("fal-flux-dev", "req-1")
    before, body = row(item), fal_body("req-1")

    response = post(FAL_URL, body, FakeFal().sign_webhook("req-1", body))

    assert response.status_code == 503
    assert row(item) == before


def test_a_webhook_during_a_redis_outage_asks_to_be_sent_again(
    submitted, fal_signer, settings
):
    """The replay record lives in Redis: with Redis down the call is
    answered 503 with Retry-After (the provider delivers again), not 500."""
    item = submitted("fal-flux-dev", "req-1")
    before, body = row(item), fal_body("req-1")
    down = "redis://127.0.0.1:9/0"  # nothing listens on port 9
    settings.RQ_QUEUES = {name: {**config, "URL": down}
                          for name, config in settings.RQ_QUEUES.items()}

    response = post(FAL_URL, body, fal_signer.sign_webhook("req-1", body))

    assert response.status_code == 503, response.content
    assert response["Retry-After"] == "5"
    assert b"try again later" in response.content
    assert row(item) == before


def test_webhooks_answer_only_post():
    assert Client().get(FAL_URL).status_code == 405
    assert Client().get(REPLICATE_URL).status_code == 405


# ---------------------------------------------------------------- replicate
def prediction(pid: str, status: str = "succeeded") -> bytes:
    return json.dumps({"id": pid, "status": status,
                       "output": ["https://attacker.example/x.png"]}).encode()


def test_verified_replicate_webhook_makes_the_item_due_at_once(
    submitted, replicate_signer
):
    item = submitted("replicate-flux-schnell", "pred-1")
    body = prediction("pred-1")

    response = post(REPLICATE_URL, body, replicate_signer.sign_webhook(body, "msg_1"))

    assert response.status_code == 200
    assert_due_now(item)


@pytest.mark.parametrize("case, code, reason", [
    ("tampered", 401, b"signature does not match"),
    ("stale", 401, b"old (limit 300s)"),
    ("replayed", 400, b"already received"),
    ("unknown", 404, b"unknown replicate request pred-2"),
    ("no id", 400, b"names no prediction id"),
])
def test_untrusted_replicate_webhooks_change_nothing(
    submitted, replicate_signer, case, code, reason
):
    item = submitted("replicate-flux-schnell", "pred-1")
    body, stamp = prediction("pred-1"), None
    if case == "replayed":
        headers = replicate_signer.sign_webhook(body, "msg_1")
        assert post(REPLICATE_URL, body, headers).status_code == 200
        OrderItem.objects.filter(pk=item.pk).update(
            lease_owner="x", lease_until=timezone.now() + timedelta(hours=1))
    elif case == "unknown":
        body = prediction("pred-2")
    elif case == "no id":
        body = json.dumps({"status": "succeeded"}).encode()
    elif case == "stale":
        stamp = int(time.time()) - 600
    headers = replicate_signer.sign_webhook(body, "msg_1", stamp)
    if case == "tampered":
        body = prediction("pred-1", status="failed")
    before = row(item)

    response = post(REPLICATE_URL, body, headers)

    assert response.status_code == code
    assert reason in response.content
    assert row(item) == before


def test_replicate_webhook_without_a_secret_is_unavailable(submitted, settings):
    settings.REPLICATE_WEBHOOK_SECRET = ""
    item = submitted("replicate-flux-schnell", "pred-1")
    before, body = row(item), prediction("pred-1")

    response = post(REPLICATE_URL, body,
                    FakeReplicate().sign_webhook(body, "msg_1"))

    assert response.status_code == 503
    assert row(item) == before

"""Hostile webhook calls: every missing header, bad or foreign signature,
stale or future timestamp, tampered body, replay and unknown request is
refused with a 4xx and a reason, and no item changes."""
import json
import time
from datetime import timedelta
from functools import partial

import pytest
from django.test import Client
from django.utils import timezone

from factory.models import FactoryMachine, ItemStatus, Order, OrderItem
from tests.fakes.fal import FakeFal
from tests.fakes.replicate import FakeReplicate
from tests.hostile.conftest import Case, assert_clear, case

FAL_KIND = "fal webhook"
REPLICATE_KIND = "replicate webhook"
FAL_URL, REPLICATE_URL = "/hooks/fal/", "/hooks/replicate/"
KNOWN = "req-known"
SIGNER_FAL, OTHER_FAL = FakeFal(), FakeFal()
SIGNER_REPLICATE = FakeReplicate()
OTHER_REPLICATE = FakeReplicate()
OTHER_REPLICATE.webhook_secret = "whsec_b3RoZXItc2VjcmV0LWtleQ=="


def fal_body(request_id: str = KNOWN) -> bytes:
    return json.dumps({"request_id": request_id, "status": "OK", "payload": {}}).encode()


def fal_call(request_id: str = KNOWN, body: bytes | None = None, signer: FakeFal = SIGNER_FAL,
             shift: int | None = None, **changed) -> tuple[bytes, dict]:
    """A fal call signed now (or ``shift`` seconds from now) for
    ``request_id``; ``changed`` edits headers after signing (None removes
    one, a callable is asked at call time), ``body`` replaces the body."""
    signed = fal_body(request_id)
    headers = signer.sign_webhook(request_id, signed, timestamp=_stamp(shift))
    edited = {"X-Fal-Webhook-" + name.replace("_", "-"): _now(value)
              for name, value in changed.items()}
    return (signed if body is None else body), _edit(headers, edited)


def _stamp(shift: int | None) -> int | None:
    return None if shift is None else int(time.time()) + shift


def _now(value):
    """A header value, asked for when the call is made if it is a callable."""
    return value() if callable(value) else value


def _edit(headers: dict, changed: dict) -> dict:
    """Headers with ``changed`` applied; a value of None removes one."""
    kept = {**headers, **changed}
    return {name: value for name, value in kept.items() if value is not None}


def replicate_body(prediction_id: str | None = KNOWN) -> bytes:
    prediction = {"status": "succeeded", "output": ["https://x.invalid/a.png"]}
    if prediction_id is not None:
        prediction["id"] = prediction_id
    return json.dumps(prediction).encode()


def replicate_call(prediction_id: str | None = KNOWN, body: bytes | None = None,
                   signer: FakeReplicate = SIGNER_REPLICATE, shift: int | None = None,
                   webhook_id: str = "msg_1", signed_body: bytes | None = None,
                   **changed) -> tuple[bytes, dict]:
    """As ``fal_call``, for Replicate's Standard Webhooks headers."""
    signed = replicate_body(prediction_id) if signed_body is None else signed_body
    headers = signer.sign_webhook(signed, webhook_id, timestamp=_stamp(shift))
    edited = {"webhook-" + name: _now(value) for name, value in changed.items()}
    return (signed if body is None else body), _edit(headers, edited)


# Calls are signed when a case runs, not when the module is read: a long
# suite would otherwise age every signature past the 300 s window.
STALE, FUTURE = -3600, 3600
TAMPERED = fal_body().replace(b'"OK"', b'"ERROR"')
FAL = [
    case(FAL_KIND, "no headers at all", (b"{}", {}), "401",
         "missing header(s) X-Fal-Webhook-Request-Id, X-Fal-Webhook-User-Id, "
         "X-Fal-Webhook-Timestamp, X-Fal-Webhook-Signature"),
    case(FAL_KIND, "request id missing", partial(fal_call, Request_Id=None), "401",
         "missing header(s) X-Fal-Webhook-Request-Id"),
    case(FAL_KIND, "user id missing", partial(fal_call, User_Id=None), "401",
         "missing header(s) X-Fal-Webhook-User-Id"),
    case(FAL_KIND, "timestamp missing", partial(fal_call, Timestamp=None), "401",
         "missing header(s) X-Fal-Webhook-Timestamp"),
    case(FAL_KIND, "signature missing", partial(fal_call, Signature=None), "401",
         "missing header(s) X-Fal-Webhook-Signature"),
    case(FAL_KIND, "signature empty", partial(fal_call, Signature=""), "401", "missing header(s)"),
    case(FAL_KIND, "signature not hex", partial(fal_call, Signature="zz" * 64), "401", "signature is not hex"),
    case(FAL_KIND, "signature too short", partial(fal_call, Signature="ab" * 32), "401",
         "signature is not 64 bytes"),
    case(FAL_KIND, "signature all zero", partial(fal_call, Signature="00" * 64), "401",
         "signature matches none of the fal keys"),
    case(FAL_KIND, "signed by another key", partial(fal_call, signer=OTHER_FAL), "401",
         "signature matches none of the fal keys"),
    case(FAL_KIND, "stale timestamp", partial(fal_call, shift=STALE), "401", "s old (limit 300s)"),
    case(FAL_KIND, "future timestamp", partial(fal_call, shift=FUTURE), "401", "s in the future"),
    case(FAL_KIND, "timestamp not a number", partial(fal_call, Timestamp="yesterday"), "401",
         "timestamp 'yesterday' is not an integer"),
    case(FAL_KIND, "timestamp changed after signing",
         partial(fal_call, Timestamp=lambda: str(int(time.time()) - 5)), "401",
         "matches none of the fal keys"),
    case(FAL_KIND, "tampered body", partial(fal_call, body=TAMPERED), "401", "matches none of the fal keys"),
    case(FAL_KIND, "body emptied", partial(fal_call, body=b""), "401", "matches none of the fal keys"),
    case(FAL_KIND, "request id swapped", partial(fal_call, Request_Id="req-other"), "401",
         "matches none of the fal keys"),
    case(FAL_KIND, "user id swapped", partial(fal_call, User_Id="someone-else"), "401",
         "matches none of the fal keys"),
    case(FAL_KIND, "unknown request id", partial(fal_call, request_id="req-nobody"), "404",
         "unknown fal request req-nobody"),
]

REPLICATE = [
    case(REPLICATE_KIND, "no headers at all", (replicate_body(), {}), "401",
         "missing headers: webhook-id, webhook-timestamp, webhook-signature"),
    case(REPLICATE_KIND, "id missing", partial(replicate_call, id=None), "401", "missing headers: webhook-id"),
    case(REPLICATE_KIND, "timestamp missing", partial(replicate_call, timestamp=None), "401",
         "missing headers: webhook-timestamp"),
    case(REPLICATE_KIND, "signature missing", partial(replicate_call, signature=None), "401",
         "missing headers: webhook-signature"),
    case(REPLICATE_KIND, "signature without a version", partial(replicate_call, signature="abc"), "401",
         "malformed webhook-signature entry 'abc'"),
    case(REPLICATE_KIND, "signature bad base64", partial(replicate_call, signature="v1,@@@"), "401",
         "bad base64"),
    case(REPLICATE_KIND, "signature of another scheme only", partial(replicate_call, signature="v2,YWJj"),
         "401", "webhook-signature has no v1 entry"),
    case(REPLICATE_KIND, "signed with another secret", partial(replicate_call, signer=OTHER_REPLICATE),
         "401", "webhook signature does not match"),
    case(REPLICATE_KIND, "stale timestamp", partial(replicate_call, shift=STALE), "401",
         "s old (limit 300s)"),
    case(REPLICATE_KIND, "future timestamp", partial(replicate_call, shift=FUTURE), "401",
         "s in the future (limit 300s)"),
    case(REPLICATE_KIND, "timestamp not a number", partial(replicate_call, timestamp="soon"), "401",
         "webhook-timestamp 'soon' is not Unix seconds"),
    case(REPLICATE_KIND, "timestamp in milliseconds",
         partial(replicate_call, timestamp=lambda: str(int(time.time()) * 1000)),
         "401", "in the future"),
    case(REPLICATE_KIND, "id changed after signing", partial(replicate_call, id="msg_other"), "401",
         "webhook signature does not match"),
    case(REPLICATE_KIND, "tampered body", partial(replicate_call, body=replicate_body("req-other")), "401",
         "webhook signature does not match"),
    case(REPLICATE_KIND, "empty body", partial(replicate_call, body=b""), "401", "empty webhook body"),
    case(REPLICATE_KIND, "signed body without an id", partial(replicate_call, prediction_id=None), "400",
         "the webhook names no prediction id"),
    case(REPLICATE_KIND, "signed body that is not JSON", partial(replicate_call, signed_body=b"<html>"),
         "401", "webhook body is not JSON"),
    case(REPLICATE_KIND, "signed body a JSON list", partial(replicate_call, signed_body=b"[1, 2]"), "400",
         "names no prediction id"),
    case(REPLICATE_KIND, "unknown prediction", partial(replicate_call, prediction_id="req-nobody"), "404",
         "unknown replicate request req-nobody"),
]


@pytest.fixture
def hooks(settings, untouched) -> dict[str, OrderItem]:
    """Submitted fal and replicate items waiting on request ``KNOWN``."""
    settings.FAL_WEBHOOK_KEYS = SIGNER_FAL.jwks
    settings.REPLICATE_WEBHOOK_SECRET = SIGNER_REPLICATE.webhook_secret
    items = {}
    for provider, slug in (("fal", "fal-flux-dev"), ("replicate", "replicate-flux-schnell")):
        machine = FactoryMachine.objects.get(slug=slug)
        order = Order.objects.create(machine=machine, prompt="a kite", status="running")
        items[provider] = OrderItem.objects.create(
            order=order, machine=machine, index=0, parameters={"prompt": "a kite"},
            status=ItemStatus.SUBMITTED, request_id=KNOWN, lease_owner="foreman:1",
            lease_until=timezone.now() + timedelta(hours=1))
    return items


def _row(item: OrderItem) -> tuple:
    return OrderItem.objects.filter(pk=item.pk).values_list(
        "status", "lease_owner", "lease_until", "updated_at").get()


def _refused(url: str, refusal: Case, hooks: dict, untouched, redis_db) -> None:
    body, headers = _now(refusal.value)
    status, *says = refusal.says
    rows = {name: _row(item) for name, item in hooks.items()}
    with untouched():
        response = Client().post(url, body, content_type="application/json", headers=headers)
    assert response.status_code == int(status), (refusal.name, response.content)
    assert_clear(response.content.decode(), case(refusal.kind, refusal.name, None, *says))
    assert {name: _row(item) for name, item in hooks.items()} == rows
    assert redis_db.keys("artfactory:webhook-seen:*") == []


@pytest.mark.parametrize("refusal", FAL, ids=[c.id for c in FAL])
def test_a_hostile_fal_webhook_is_refused(refusal, hooks, untouched, redis_db):
    _refused(FAL_URL, refusal, hooks, untouched, redis_db)


@pytest.mark.parametrize("refusal", REPLICATE, ids=[c.id for c in REPLICATE])
def test_a_hostile_replicate_webhook_is_refused(refusal, hooks, untouched, redis_db):
    _refused(REPLICATE_URL, refusal, hooks, untouched, redis_db)


REPLAYS = [
    case(FAL_KIND, "replayed delivery", (FAL_URL, fal_call), "400",
         "delivery req-known was already received"),
    case(REPLICATE_KIND, "replayed delivery", (REPLICATE_URL, replicate_call), "400",
         "delivery msg_1 was already received"),
]


@pytest.mark.parametrize("refusal", REPLAYS, ids=[c.kind for c in REPLAYS])
def test_a_replayed_webhook_is_refused_and_changes_nothing(refusal, hooks, untouched):
    url, call = refusal.value
    body, headers = call()
    first = Client().post(url, body, content_type="application/json", headers=headers)
    assert first.status_code == 200
    rows = {name: _row(item) for name, item in hooks.items()}
    with untouched():
        again = Client().post(url, body, content_type="application/json", headers=headers)
    assert again.status_code == int(refusal.says[0])
    assert_clear(again.content.decode(), case(refusal.kind, refusal.name, None, *refusal.says[1:]))
    assert {name: _row(item) for name, item in hooks.items()} == rows


@pytest.mark.parametrize("url", [FAL_URL, REPLICATE_URL])
def test_a_webhook_answers_only_post(url, hooks):
    assert Client().get(url).status_code == 405

"""The Replicate adapter against a fake API, over HTTP, parsed by replicate 1.0.7."""
import base64
import hashlib
import hmac
import io
import json
import socket
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import replicate
from PIL import Image
from replicate.version import Versions
from replicate.webhook import WebhookSigningSecret

from factory.providers.base import (
    ConfigurationError,
    OutcomeUnknownError,
    PermanentError,
    RemoteState,
    TransientError,
)
from factory.providers.replicate import ReplicateBackend
from factory.providers.replicate_webhooks import (
    ReplayedWebhookError,
    WebhookVerificationError,
    verify_replicate_webhook,
)
from tests.fakes.base import Fault, follow_states
from tests.fakes.replicate import SEEDS, FakeReplicate, Outcome

TOKEN = "r8_fake-token-that-must-never-show"
MACHINES = {m["slug"]: m for m in json.loads(SEEDS.read_text())["machines"]}
SCHNELL, SDXL = "replicate-flux-schnell", "replicate-sdxl"


def machine(slug: str) -> SimpleNamespace:
    spec = MACHINES[slug]
    return SimpleNamespace(endpoint_id=spec["endpoint_id"],
                           version=spec.get("version", ""),
                           output_key=spec.get("output_key", ""))


def order(slug: str, **extra: Any) -> dict[str, Any]:
    return {**MACHINES[slug]["defaults"], "prompt": "a lighthouse in fog", **extra}


def creates(fake: FakeReplicate) -> int:
    return sum(r.method == "POST" and r.path.endswith("predictions")
               for r in fake.requests)




@pytest.fixture(scope="module")
def server():
    running = FakeReplicate(token=TOKEN).start()
    yield running
    running.stop()


@pytest.fixture
def fake(server) -> FakeReplicate:
    server.reset()
    return server


@pytest.fixture
def backend(fake, settings) -> ReplicateBackend:
    settings.REPLICATE_API_TOKEN = TOKEN
    settings.REPLICATE_BASE_URL = fake.url
    return ReplicateBackend(timeout=2.0)


# ---------------------------------------------------------------- happy path
def test_submit_follows_prediction_to_decodable_images(backend, fake):
    spec = machine(SCHNELL)
    pid = backend.submit(spec, order(SCHNELL, num_outputs=2, seed=41))
    assert [e["path"] for e in fake.ledger] == [
        "/v1/models/black-forest-labs/flux-schnell/predictions"]
    assert follow_states(backend, spec, pid) == [
        RemoteState.QUEUED, RemoteState.RUNNING, RemoteState.COMPLETED]
    outputs = backend.result(spec, pid)
    assert len(outputs) == 2
    assert {o.seed for o in outputs} == {41}
    assert all(o.content_type == "image/webp" for o in outputs)
    assert "predict_time" in outputs[0].metrics
    for output in outputs:
        image = Image.open(io.BytesIO(httpx.get(output.url).content))
        assert image.format == "WEBP"


def test_running_status_carries_logs(backend, fake):
    spec = machine(SCHNELL)
    pid = backend.submit(spec, order(SCHNELL, seed=5))
    backend.status(spec, pid)
    assert backend.status(spec, pid).logs == ["Using seed: 5"]


def test_pinned_version_creates_by_version(backend, fake):
    spec = machine(SDXL)
    pid = backend.submit(spec, order(SDXL))
    assert fake.ledger[0]["path"] == "/v1/predictions"
    assert fake.ledger[0]["version"] == spec.version
    follow_states(backend, spec, pid)
    [output] = backend.result(spec, pid)
    assert output.content_type == "image/png"
    assert f"Using seed: {output.seed}" in fake.prediction(pid)["logs"]


@pytest.mark.parametrize("slug", sorted(MACHINES))
def test_every_seed_machine_accepts_its_defaults(backend, fake, slug):
    spec, params = machine(slug), order(slug)
    pid = backend.submit(spec, params)
    assert fake.ledger[0]["input"] == params  # the schema check saw no extra key
    assert follow_states(backend, spec, pid)[-1] == RemoteState.COMPLETED
    for output in backend.result(spec, pid):
        Image.open(io.BytesIO(httpx.get(output.url).content)).verify()


def test_single_uri_output_gives_one_descriptor(backend):
    spec = machine("replicate-flux-1-1-pro")
    pid = backend.submit(spec, order("replicate-flux-1-1-pro"))
    follow_states(backend, spec, pid)
    assert len(backend.result(spec, pid)) == 1


def test_data_uri_output_comes_back_as_bytes(backend, fake):
    spec = machine(SCHNELL)
    pid = backend.submit(spec, order(SCHNELL))
    follow_states(backend, spec, pid)
    fake.predictions[pid]["output"] = ["data:image/png;base64,"
                                       + base64.b64encode(b"\x89PNG").decode()]
    [output] = backend.result(spec, pid)
    assert (output.content, output.content_type) == (b"\x89PNG", "image/png")


@pytest.mark.parametrize("url", [
    "file:///etc/passwd", "ftp://files.example/out.png", "gopher://x/1",
    "javascript:alert(1)",
])
def test_refused_output_scheme_is_named(backend, fake, url):
    spec = machine(SCHNELL)
    pid = backend.submit(spec, order(SCHNELL))
    follow_states(backend, spec, pid)
    fake.predictions[pid]["output"] = [url]
    scheme = url.split(":")[0] + ":"
    with pytest.raises(PermanentError, match=f"never downloaded: {scheme} "):
        backend.result(spec, pid)


def test_cancel_ends_as_cancelled(backend):
    spec = machine(SCHNELL)
    pid = backend.submit(spec, order(SCHNELL))
    backend.cancel(spec, pid)
    assert backend.status(spec, pid).state == RemoteState.CANCELLED


def test_failed_prediction_reports_provider_error(backend, fake):
    fake.outcomes.append(Outcome("failed", error="NSFW content detected"))
    spec = machine(SCHNELL)
    pid = backend.submit(spec, order(SCHNELL))
    follow_states(backend, spec, pid)
    status = backend.status(spec, pid)
    assert (status.state, status.error) == (RemoteState.FAILED, "NSFW content detected")
    with pytest.raises(PermanentError, match="is failed, not succeeded"):
        backend.result(spec, pid)


def test_aborted_prediction_counts_as_cancelled(backend, fake):
    spec = machine(SCHNELL)
    params = order(SCHNELL)
    before = datetime.now(timezone.utc)
    pid = backend.submit(spec, params)
    fake.abort(pid)
    with pytest.raises(Exception):  # what the plain client does with it
        replicate.Client(api_token=TOKEN, base_url=fake.url).predictions.get(pid)
    status = backend.status(spec, pid)
    assert status.state == RemoteState.CANCELLED
    assert "Cancel-After" in status.error
    assert backend.find(spec, before, params) == pid


# ---------------------------------------------------------------- rejections
def test_foreign_key_is_rejected_with_providers_detail(backend, fake):
    with pytest.raises(PermanentError,
                       match="input.negative_prompt: Additional property not allowed"):
        backend.submit(machine(SCHNELL), order(SCHNELL, negative_prompt="blur"))
    assert fake.ledger == []


def test_out_of_range_value_is_permanent(backend):
    with pytest.raises(PermanentError, match="422 .*num_inference_steps"):
        backend.submit(machine(SCHNELL), order(SCHNELL, num_inference_steps=28))


def test_wrong_token_is_configuration_error_without_the_token(backend, settings):
    settings.REPLICATE_API_TOKEN = "r8_wrong-secret"
    with pytest.raises(ConfigurationError, match="401") as caught:
        ReplicateBackend().submit(machine(SCHNELL), order(SCHNELL))
    assert "r8_wrong-secret" not in str(caught.value)


def test_missing_token_fails_before_any_request(backend, fake, settings, monkeypatch):
    settings.REPLICATE_API_TOKEN = ""
    monkeypatch.setenv("REPLICATE_API_TOKEN", TOKEN)  # no silent fallback
    with pytest.raises(ConfigurationError, match="REPLICATE_API_TOKEN is not set"):
        ReplicateBackend().submit(machine(SCHNELL), order(SCHNELL))
    assert fake.requests == []


# ---------------------------------------------------------------- faults
def test_throttled_submit_is_transient_with_retry_after(backend, fake):
    fake.faults.push("create", Fault("status", 429, headers={"Retry-After": "7"},
                                     body={"detail": "Request was throttled."}))
    with pytest.raises(TransientError, match="429 Request was throttled") as caught:
        backend.submit(machine(SCHNELL), order(SCHNELL))
    assert caught.value.retry_after == 7.0
    assert creates(fake) == 1


@pytest.mark.parametrize("code", [500, 503, 504])
def test_server_errors_on_submit_are_transient_and_not_resent(backend, fake, code):
    fake.faults.push("create", Fault("status", code, body={"detail": "upstream"}))
    with pytest.raises(TransientError, match=f"{code} upstream"):
        backend.submit(machine(SCHNELL), order(SCHNELL))
    assert creates(fake) == 1


def test_status_503_is_transient_without_in_call_retries(backend, fake):
    spec = machine(SCHNELL)
    pid = backend.submit(spec, order(SCHNELL))
    fake.faults.push("get", Fault("status", 503, headers={"Retry-After": "3"}))
    with pytest.raises(TransientError) as caught:
        backend.status(spec, pid)
    assert caught.value.retry_after == 3.0
    assert sum(r.method == "GET" for r in fake.requests) == 1


@pytest.mark.parametrize("kind", ["hang", "reset"])
def test_accepted_then_lost_submit_is_unknown_and_found(backend, fake, kind):
    fake.faults.push("create", Fault(kind, seconds=6.0))
    spec, params = machine(SCHNELL), order(SCHNELL, seed=9)
    before = datetime.now(timezone.utc)
    started = time.monotonic()
    with pytest.raises(OutcomeUnknownError, match="never resend"):
        ReplicateBackend(timeout=0.3).submit(spec, params)
    assert time.monotonic() - started < 5.0  # gave up long before the hang ends
    assert len(fake.ledger) == 1 and creates(fake) == 1
    assert backend.find(spec, before, params) == fake.ledger[0]["id"]


def test_refused_connection_is_transient(backend, settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.REPLICATE_BASE_URL = f"http://127.0.0.1:{port}"
    with pytest.raises(TransientError, match="not sent"):
        ReplicateBackend().submit(machine(SCHNELL), order(SCHNELL))


# ---------------------------------------------------------------- find
def test_find_matches_model_input_and_time_across_pages(backend, fake):
    fake.page_size = 2
    spec, params = machine(SCHNELL), order(SCHNELL, seed=1)
    early = backend.submit(spec, params)
    time.sleep(0.01)
    before = datetime.now(timezone.utc)
    wanted = backend.submit(spec, params)
    for seed in (2, 3, 4):
        backend.submit(spec, order(SCHNELL, seed=seed))
    assert early != wanted
    assert backend.find(spec, before, params) == wanted
    assert backend.find(spec, before, order(SCHNELL, seed=99)) is None
    assert backend.find(machine(SDXL), before, params) is None


def test_find_reads_naive_datetimes_as_utc(backend):
    spec, params = machine(SCHNELL), order(SCHNELL)
    pid = backend.submit(spec, params)
    naive = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(minutes=1)
    assert backend.find(spec, naive, params) == pid


# ---------------------------------------------------------------- the fake
def test_fake_replies_parse_in_the_real_client(backend, fake):
    client = replicate.Client(api_token=TOKEN, base_url=fake.url)
    spec = machine(SDXL)
    version = Versions(client, spec.endpoint_id).get(spec.version)
    assert "prompt" in version.openapi_schema["components"]["schemas"]["Input"][
        "properties"]
    assert client.models.get(spec.endpoint_id).name == "sdxl"
    # predictions.create(model=…) drops ``wait`` in 1.0.7; this path keeps it
    held = client.models.predictions.create(
        model="black-forest-labs/flux-schnell", input=order(SCHNELL), wait=5)
    assert held.status == "succeeded"
    assert [p.id for p in client.predictions.list()] == [held.id]


@pytest.mark.parametrize("kind", ["broken", "oversized", "mislabeled"])
def test_output_faults_are_served(backend, fake, kind):
    fake.outcomes.append(Outcome(kind, size=3 * 1024 * 1024))
    spec = machine(SCHNELL)
    pid = backend.submit(spec, order(SCHNELL))
    follow_states(backend, spec, pid)
    [output] = backend.result(spec, pid)
    answer = httpx.get(output.url)
    if kind == "broken":
        with pytest.raises(Exception):
            Image.open(io.BytesIO(answer.content)).load()
    elif kind == "oversized":
        assert len(answer.content) >= 3 * 1024 * 1024
    else:
        assert answer.headers["content-type"] == output.content_type == "image/jpeg"
        assert Image.open(io.BytesIO(answer.content)).format == "PNG"


def test_expiring_outputs_answer_404_later(backend, fake):
    fake.outcomes.append(Outcome("expiring", seconds=2.0))  # room for a loaded machine
    spec = machine(SCHNELL)
    pid = backend.submit(spec, order(SCHNELL))
    follow_states(backend, spec, pid)
    [output] = backend.result(spec, pid)
    assert httpx.get(output.url).status_code == 200
    time.sleep(2.1)
    assert httpx.get(output.url).status_code == 404


# ---------------------------------------------------------------- webhooks
KEY = b"replicate-webhook-key-32-bytes!!"
SECRET = "whsec_" + base64.b64encode(KEY).decode()
BODY = json.dumps({"id": "abc", "status": "succeeded"}).encode()
NOW = 1_750_000_000


def signed(body: bytes = BODY, key: bytes = KEY, webhook_id: str = "msg_1",
           timestamp: int = NOW) -> dict[str, str]:
    mac = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return {"Webhook-Id": webhook_id, "Webhook-Timestamp": str(timestamp),
            "Webhook-Signature": "v1," + base64.b64encode(mac.digest()).decode()}


def test_webhook_valid_signature_gives_prediction():
    assert verify_replicate_webhook(signed(), BODY, SECRET, now=NOW)["id"] == "abc"


def test_webhook_check_agrees_with_the_library():
    now = int(time.time())
    headers = signed(timestamp=now)
    assert verify_replicate_webhook(headers, BODY, SECRET)["id"] == "abc"
    assert replicate.webhooks.validate(
        headers=headers, body=BODY.decode(), tolerance=300,
        secret=WebhookSigningSecret(key=SECRET)) is None


def test_webhook_accepts_any_listed_v1_signature():
    headers = signed()
    headers["Webhook-Signature"] = "v1,AAAA v2,xyz " + headers["Webhook-Signature"]
    payload = verify_replicate_webhook(headers, BODY, SECRET, now=NOW)
    assert payload["status"] == "succeeded"


@pytest.mark.parametrize("body, key", [(BODY + b" ", KEY), (BODY, b"another-key")])
def test_webhook_tampered_body_or_wrong_secret_fails(body, key):
    headers = signed(body=BODY, key=key)
    with pytest.raises(WebhookVerificationError, match="signature does not match"):
        verify_replicate_webhook(headers, body, SECRET, now=NOW)


@pytest.mark.parametrize("offset, word", [(-301, "old"), (301, "in the future")])
def test_webhook_outside_tolerance_fails(offset, word):
    headers = signed(timestamp=NOW + offset)
    with pytest.raises(WebhookVerificationError, match=word):
        verify_replicate_webhook(headers, BODY, SECRET, now=NOW)


def test_webhook_replayed_id_fails_with_a_set_or_a_callable():
    seen: set[str] = set()
    verify_replicate_webhook(signed(), BODY, SECRET, now=NOW, seen=seen)
    with pytest.raises(ReplayedWebhookError, match="msg_1 was already accepted"):
        verify_replicate_webhook(signed(), BODY, SECRET, now=NOW, seen=seen)
    with pytest.raises(ReplayedWebhookError):
        verify_replicate_webhook(signed(), BODY, SECRET, now=NOW,
                                 seen=seen.__contains__)


def test_webhook_forgery_does_not_mark_id_seen():
    seen: set[str] = set()
    with pytest.raises(WebhookVerificationError):
        verify_replicate_webhook(signed(key=b"forger"), BODY, SECRET, now=NOW,
                                 seen=seen)
    assert seen == set()


@pytest.mark.parametrize("header", ["Webhook-Id", "Webhook-Timestamp",
                                    "Webhook-Signature"])
def test_webhook_missing_header_fails(header):
    headers = signed()
    del headers[header]
    with pytest.raises(WebhookVerificationError,
                       match=f"missing headers: {header.lower()}"):
        verify_replicate_webhook(headers, BODY, SECRET, now=NOW)


@pytest.mark.parametrize("value", ["v1", "v1,", "v1,not*base64", "nonsense"])
def test_webhook_malformed_signature_is_a_clear_error(value):
    headers = {**signed(), "Webhook-Signature": value}
    with pytest.raises(WebhookVerificationError, match="malformed webhook-signature"):
        verify_replicate_webhook(headers, BODY, SECRET, now=NOW)


def test_webhook_bad_secret_is_configuration_error_without_the_secret():
    with pytest.raises(ConfigurationError, match="whsec_<base64>") as caught:
        verify_replicate_webhook(signed(), BODY, "whsec_%%%secret%%%", now=NOW)
    assert "%%%secret%%%" not in str(caught.value)


def test_fake_refuses_requests_without_bearer_token(fake):
    answer = httpx.get(fake.url + "/v1/predictions")
    assert answer.status_code == 401
    assert answer.json()["title"] == "Unauthenticated"

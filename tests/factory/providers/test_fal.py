"""FalBackend against FakeFal over real HTTP, and the fal webhook verifier."""
import io
import json
import socket
import time
import warnings
from dataclasses import dataclass
from datetime import timedelta

import fal_client
import httpx
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from fal_client.client import USER_AGENT
from PIL import Image

from factory.models import FactoryMachine
from factory.providers import fal as fal_module
from factory.providers.base import (
    ConfigurationError,
    OutcomeUnknownError,
    PermanentError,
    RemoteState,
    TransientError,
)
from factory.providers.fal import FalBackend
from factory.providers.webhooks import WebhookError, verify_fal_webhook
from tests.fakes.base import Fault, follow_states
from tests.fakes.fal import FakeFal, load_machines

SEEDS = {m["slug"]: m for m in load_machines()}


@dataclass(frozen=True)
class Spec:
    endpoint_id: str
    output_key: str
    version: str = ""


def spec(slug: str) -> Spec:
    return Spec(SEEDS[slug]["endpoint_id"], SEEDS[slug]["output_key"])


def inputs(slug: str = "fal-flux-dev", **extra) -> dict:
    return {**SEEDS[slug]["defaults"], "prompt": "a lighthouse at dusk", **extra}


def assert_secret_free(exc: BaseException, key: str = "test-key") -> None:
    while exc is not None:
        assert key not in str(exc) and key not in repr(exc)
        exc = exc.__cause__


@pytest.fixture
def backend() -> FalBackend:
    return FalBackend()


@pytest.fixture
def flux() -> Spec:
    return spec("fal-flux-dev")


def run_to_end(backend: FalBackend, machine, request_id: str) -> RemoteState:
    return follow_states(backend, machine, request_id)[-1]


# ---------------------------------------------------------------- contract
def test_submit_status_result_round_trip(fake_fal, backend, flux):
    params = inputs(seed=7)
    request_id = backend.submit(flux, params)

    assert fake_fal.ledger == [{
        "request_id": request_id, "endpoint_id": "fal-ai/flux/dev",
        "input": params, "user_agent": USER_AGENT,
    }]
    queued, running, done = (backend.status(flux, request_id) for _ in range(3))
    assert (queued.state, queued.queue_position) == (RemoteState.QUEUED, 0)
    assert running.state is RemoteState.RUNNING
    assert running.logs == ["in_progress step 2"]
    assert done.state is RemoteState.COMPLETED and done.error == ""

    (output,) = backend.result(flux, request_id)
    data = httpx.get(output.url).content
    assert (output.content_type, output.seed, output.nsfw) == ("image/jpeg", 7, False)
    assert output.size == len(data)
    assert output.metrics["inference_time"] == 0.25
    assert (output.metrics["width"], output.metrics["height"]) == (128, 96)
    assert Image.open(io.BytesIO(data)).size == (128, 96)


@pytest.mark.django_db
def test_every_seed_fal_machine_runs_its_defaults(catalog, fake_fal, backend):
    fake_fal.polls_per_stage = 0
    machines = list(FactoryMachine.objects.filter(provider__slug="fal"))
    assert len(machines) == len(SEEDS)
    for machine in machines:
        params = {**machine.defaults, "prompt": "a lighthouse at dusk"}
        if "image_url" in machine.input_schema.get("required", []):
            params["image_url"] = "https://example.com/start-frame.png"
        request_id = backend.submit(machine, params)
        assert backend.status(machine, request_id).state is RemoteState.COMPLETED
        outputs = backend.result(machine, request_id)
        assert outputs and all(httpx.get(o.url).status_code == 200 for o in outputs)
    sent = [entry["endpoint_id"] for entry in fake_fal.ledger]
    assert sent == [machine.endpoint_id for machine in machines]


def test_queue_progresses_with_time(fake_fal, backend, flux):
    fake_fal.seconds_per_stage = 0.1
    request_id = backend.submit(flux, inputs())
    assert backend.status(flux, request_id).state is RemoteState.QUEUED
    time.sleep(0.25)
    assert backend.status(flux, request_id).state is RemoteState.COMPLETED


def test_cancel_marks_the_request_cancelled(fake_fal, backend, flux):
    request_id = backend.submit(flux, inputs())
    backend.cancel(flux, request_id)
    status = backend.status(flux, request_id)
    assert status.state is RemoteState.CANCELLED
    with pytest.raises(PermanentError, match="cancelled"):
        backend.result(flux, request_id)


def test_cancel_after_completion_is_quiet(fake_fal, backend, flux):
    request_id = backend.submit(flux, inputs())
    assert run_to_end(backend, flux, request_id) is RemoteState.COMPLETED
    backend.cancel(flux, request_id)
    assert backend.status(flux, request_id).state is RemoteState.COMPLETED


def test_find_matches_endpoint_input_and_time(fake_fal, backend, flux):
    before = timezone.now()
    request_id = backend.submit(flux, inputs(seed=1))
    backend.submit(flux, inputs(seed=2))

    assert backend.find(flux, before, inputs(seed=1)) == request_id
    assert backend.find(flux, before, inputs(seed=3)) is None
    assert backend.find(flux, before + timedelta(minutes=10), inputs(seed=1)) is None
    assert backend.find(spec("fal-flux-schnell"), before, inputs(seed=1)) is None


def test_find_follows_listing_pages(fake_fal, backend, flux, monkeypatch):
    monkeypatch.setattr(fal_module, "FIND_PAGE_SIZE", 1)
    before = timezone.now()
    first = backend.submit(flux, inputs(seed=1))
    for seed in (2, 3):
        backend.submit(flux, inputs(seed=seed))
    assert backend.find(flux, before, inputs(seed=1)) == first
    assert len([r for r in fake_fal.requests if r.path.endswith("by-endpoint")]) == 3


def test_fake_answers_both_url_forms(fake_fal, backend, flux):
    fake_fal.full_id_urls = True
    with httpx.Client(headers={"Authorization": "Key test-key"}) as client:
        answer = client.post(f"{fake_fal.url}/fal-ai/flux/dev", json=inputs()).json()
        assert answer["status_url"].startswith(
            f"{fake_fal.url}/fal-ai/flux/dev/requests/")
        handle = fal_client.SyncRequestHandle(**{
            name: answer[name]
            for name in ("request_id", "response_url", "status_url", "cancel_url")
        }, client=client)
        assert isinstance(handle.status(with_logs=True), fal_client.Queued)
    assert backend.status(flux, answer["request_id"]).state is RemoteState.RUNNING


# ---------------------------------------------------------------- submit faults
def test_429_is_transient_with_retry_after(fake_fal, backend, flux):
    fake_fal.faults.push("submit", Fault("status", 429, {"detail": "Too many requests"},
                                         {"Retry-After": "7"}))
    with pytest.raises(TransientError, match="HTTP 429") as info:
        backend.submit(flux, inputs())
    assert info.value.retry_after == 7.0
    assert fake_fal.ledger == [] and len(fake_fal.submissions()) == 1


@pytest.mark.parametrize("code, error_type", [
    (500, "internal_error"), (503, "runner_scheduling_failure"),
    (504, "request_timeout"),
])
def test_fal_server_errors_are_transient(fake_fal, backend, flux, code, error_type):
    body = {"detail": "Request failed", "error_type": error_type}
    fake_fal.faults.push("submit", Fault("status", code, body))
    with pytest.raises(TransientError, match=rf"HTTP {code} \[{error_type}\]: Request"):
        backend.submit(flux, inputs())
    assert len(fake_fal.submissions()) == 1


@pytest.mark.parametrize("code", [502, 504])
def test_gateway_errors_leave_the_outcome_unknown(fake_fal, backend, flux, code):
    page = f"<html><center><h1>{code} Bad Gateway</h1></center><hr>nginx</html>"
    fake_fal.faults.push("submit", Fault("status", code, page))
    with pytest.raises(OutcomeUnknownError, match="may have been queued"):
        backend.submit(flux, inputs())
    assert len(fake_fal.submissions()) == 1


def test_foreign_key_is_refused_with_its_location(fake_fal, backend, flux):
    with pytest.raises(PermanentError,
                       match="negative_prompt: Extra inputs are not permitted"):
        backend.submit(flux, inputs(negative_prompt="blurry"))
    assert fake_fal.ledger == []


def test_out_of_range_value_is_refused(fake_fal, backend):
    with pytest.raises(PermanentError, match="num_inference_steps: Input should be "
                                             "less than or equal to 12"):
        backend.submit(spec("fal-flux-schnell"), inputs(num_inference_steps=28))


def test_rejected_key_is_a_configuration_error(fake_fal, backend, flux, settings):
    settings.FAL_KEY = "wrong-key"
    with pytest.raises(ConfigurationError, match="HTTP 401") as info:
        backend.submit(flux, inputs())
    assert_secret_free(info.value, "wrong-key")


def test_echoed_key_is_redacted(fake_fal, backend, flux):
    echo = Fault("status", 403, {"detail": "key test-key denied"})
    fake_fal.faults.push("submit", echo)
    with pytest.raises(ConfigurationError, match=r"key \*\*\* denied") as info:
        backend.submit(flux, inputs())
    assert_secret_free(info.value)


def test_missing_key_sends_nothing(fake_fal, backend, flux, settings):
    settings.FAL_KEY = ""
    with pytest.raises(ConfigurationError, match="FAL_KEY is not set"):
        backend.submit(flux, inputs())
    assert fake_fal.requests == []


@pytest.mark.parametrize("kind", ["hang", "reset"])
def test_accepted_then_lost_is_unknown_and_paid_once(
    fake_fal, backend, flux, settings, kind
):
    settings.FAL_SUBMIT_TIMEOUT = 0.5
    fake_fal.faults.push("submit", Fault(kind))
    before = timezone.now()
    with pytest.raises(OutcomeUnknownError, match="may have reached fal") as info:
        backend.submit(flux, inputs(seed=5))
    assert_secret_free(info.value)
    assert len(fake_fal.ledger) == 1 and len(fake_fal.submissions()) == 1
    assert backend.find(flux, before, inputs(seed=5)) == fake_fal.ledger[0]["request_id"]


def test_fal_client_submit_would_pay_twice_after_a_reset(fake_fal, monkeypatch):
    monkeypatch.setattr(fal_client.client, "QUEUE_URL_FORMAT", fake_fal.url + "/")
    fake_fal.faults.push("submit", Fault("reset"))
    client = fal_client.SyncClient(key="test-key")
    try:
        client.submit("fal-ai/flux/dev", inputs())
    finally:
        client._client.close()  # SyncClient has no public close
    assert len(fake_fal.ledger) == 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:{port}/", "http://fal-queue.invalid/",
])
def test_unreachable_queue_is_transient(backend, flux, settings, monkeypatch, url):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy",
                 "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    settings.FAL_KEY = "test-key"
    settings.FAL_QUEUE_URL = url.format(port=free_port())
    with pytest.raises(TransientError, match="never reached fal") as info:
        backend.submit(flux, inputs())
    assert_secret_free(info.value)


def test_stopped_server_is_transient(backend, flux, settings):
    fake = FakeFal().start()
    settings.FAL_KEY, settings.FAL_QUEUE_URL = "test-key", fake.url + "/"
    fake.stop()
    with pytest.raises(TransientError, match="ConnectError"):
        backend.submit(flux, inputs())


# ---------------------------------------------------------------- read faults
def test_failed_request_reports_the_providers_message(fake_fal, backend, flux):
    request_id = backend.submit(flux, inputs())
    fake_fal.set_output_fault(request_id, "failed")
    assert run_to_end(backend, flux, request_id) is RemoteState.FAILED
    status = backend.status(flux, request_id)
    assert status.error == "Runner crashed: CUDA out of memory (runner_server_error)"
    with pytest.raises(PermanentError, match="CUDA out of memory"):
        backend.result(flux, request_id)


def test_rejected_request_fails(fake_fal, backend, flux):
    fake_fal.output_fault = "rejected"
    request_id = backend.submit(flux, inputs())
    assert run_to_end(backend, flux, request_id) is RemoteState.FAILED
    assert backend.status(flux, request_id).error == (
        "fal refused the input (HTTP 422): prompt: The prompt was flagged by the"
        " content checker"
    )


def test_result_before_completion_is_transient(fake_fal, backend, flux):
    request_id = backend.submit(flux, inputs())
    with pytest.raises(TransientError, match="has not finished"):
        backend.result(flux, request_id)


def test_result_server_error_is_transient(fake_fal, backend, flux):
    fake_fal.polls_per_stage = 0
    request_id = backend.submit(flux, inputs())
    fake_fal.faults.push("result", Fault("status", 500, {"detail": "boom"},
                                         {"x-fal-request-id": request_id}))
    with pytest.raises(TransientError, match="HTTP 500"):
        backend.result(flux, request_id)


@pytest.mark.parametrize("code, error", [
    (404, PermanentError), (500, TransientError), (401, ConfigurationError),
])
def test_status_errors_are_classified(fake_fal, backend, flux, code, error):
    request_id = backend.submit(flux, inputs())
    fake_fal.faults.push("status", Fault("status", code, {"detail": "no"},
                                         {"x-fal-request-id": request_id}))
    with pytest.raises(error, match=f"HTTP {code}") as info:
        backend.status(flux, request_id)
    assert_secret_free(info.value)


def test_unknown_request_is_permanent(fake_fal, backend, flux):
    with pytest.raises(PermanentError, match="HTTP 404"):
        backend.status(flux, "no-such-request")


# ---------------------------------------------------------------- output faults
def produced(fake: FakeFal, backend: FalBackend, kind: str):
    fake.polls_per_stage = 0
    fake.output_fault = kind
    machine = spec("fal-flux-dev")
    request_id = backend.submit(machine, inputs(output_format="png"))
    backend.status(machine, request_id)
    (output,) = backend.result(machine, request_id)
    return output


def test_broken_output_does_not_decode(fake_fal, backend):
    output = produced(fake_fal, backend, "broken")
    with pytest.raises(Exception):
        Image.open(io.BytesIO(httpx.get(output.url).content)).load()


def test_oversized_output_is_as_large_as_asked(fake_fal, backend):
    fake_fal.oversize_bytes = 1024 * 1024
    output = produced(fake_fal, backend, "oversized")
    assert output.size == len(httpx.get(output.url).content) > 1024 * 1024


def test_bomb_output_trips_pillows_warning(fake_fal, backend):
    data = httpx.get(produced(fake_fal, backend, "bomb").url).content
    assert len(data) < 100_000
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with pytest.raises(Image.DecompressionBombWarning):
            Image.open(io.BytesIO(data))


def test_html_output_hides_behind_png_name(fake_fal, backend):
    output = produced(fake_fal, backend, "html")
    response = httpx.get(output.url)
    assert output.url.endswith(".png") and output.content_type == "image/png"
    assert response.headers["content-type"].startswith("text/html")
    assert response.content.startswith(b"<!doctype html>")


@pytest.mark.parametrize("kind, target", [
    ("redirect_loopback", "http://127.0.0.1:"),
    ("redirect_metadata", "http://169.254.169.254/"),
])
def test_redirect_outputs_point_at_private_addresses(fake_fal, backend, kind, target):
    response = httpx.get(produced(fake_fal, backend, kind).url)
    assert response.status_code == 302
    assert response.headers["location"].startswith(target)


def test_expired_output_answers_404_later(fake_fal, backend):
    fake_fal.expire_seconds = 2.0  # wide enough for a loaded machine
    output = produced(fake_fal, backend, "expired")
    assert httpx.get(output.url).status_code == 200
    time.sleep(2.1)
    assert httpx.get(output.url).status_code == 404


def test_unknown_output_fault_is_refused(fake_fal, backend, flux):
    request_id = backend.submit(flux, inputs())
    with pytest.raises(ValueError, match="unknown output fault"):
        fake_fal.set_output_fault(request_id, "exploded")


# ---------------------------------------------------------------- webhooks
BODY = json.dumps({"request_id": "req-1", "status": "OK",
                   "payload": {"images": []}}).encode()
NOW = 1_750_000_000


@pytest.fixture
def signer() -> FakeFal:
    return FakeFal()


def test_valid_webhook_returns_its_payload(signer):
    headers = signer.sign_webhook("req-1", BODY, timestamp=NOW)
    payload = verify_fal_webhook(headers, BODY, signer.jwks, now=NOW)
    assert payload["status"] == "OK"


def test_webhook_keys_may_be_a_list_or_settings(signer, settings):
    headers = signer.sign_webhook("req-1", BODY, timestamp=NOW)
    x = signer.jwks["keys"][0]["x"]
    assert verify_fal_webhook(headers, BODY, [x], now=NOW)["request_id"] == "req-1"
    settings.FAL_WEBHOOK_KEYS = signer.jwks
    assert verify_fal_webhook(headers, BODY.decode(), now=NOW)["status"] == "OK"


def test_tampered_body_is_refused(signer):
    headers = signer.sign_webhook("req-1", BODY, timestamp=NOW)
    with pytest.raises(WebhookError, match="matches none"):
        verify_fal_webhook(headers, BODY.replace(b"OK", b"KO"), signer.jwks, now=NOW)


def test_wrong_key_is_refused(signer):
    headers = signer.sign_webhook("req-1", BODY, timestamp=NOW)
    with pytest.raises(WebhookError, match="matches none"):
        verify_fal_webhook(headers, BODY, FakeFal().jwks, now=NOW)


@pytest.mark.parametrize("shift, reason", [(-301, "old"), (301, "in the future")])
def test_stale_and_future_timestamps_are_refused(signer, shift, reason):
    headers = signer.sign_webhook("req-1", BODY, timestamp=NOW + shift)
    with pytest.raises(WebhookError, match=reason):
        verify_fal_webhook(headers, BODY, signer.jwks, now=NOW)


def test_replayed_request_id_is_refused(signer):
    headers = signer.sign_webhook("req-1", BODY, timestamp=NOW)
    seen: set[str] = set()
    verify_fal_webhook(headers, BODY, signer.jwks, now=NOW, seen=seen)
    with pytest.raises(WebhookError, match="already received"):
        verify_fal_webhook(headers, BODY, signer.jwks, now=NOW, seen=seen)
    with pytest.raises(WebhookError, match="already received"):
        verify_fal_webhook(headers, BODY, signer.jwks, now=NOW, seen=lambda rid: True)


@pytest.mark.parametrize("missing", ["Request-Id", "User-Id", "Timestamp", "Signature"])
def test_missing_header_is_refused(signer, missing):
    headers = signer.sign_webhook("req-1", BODY, timestamp=NOW)
    del headers[f"X-Fal-Webhook-{missing}"]
    with pytest.raises(WebhookError, match=f"lacks header.*{missing}"):
        verify_fal_webhook(headers, BODY, signer.jwks, now=NOW)


def test_malformed_signature_is_refused():
    headers = {"x-fal-webhook-request-id": "req-1", "x-fal-webhook-user-id": "u",
               "x-fal-webhook-timestamp": str(NOW), "x-fal-webhook-signature": "zz"}
    with pytest.raises(WebhookError, match="not hex"):
        verify_fal_webhook(headers, BODY, [b"\0" * 32], now=NOW)


def test_no_configured_keys_is_a_setup_error(settings):
    settings.FAL_WEBHOOK_KEYS = None
    headers = {"x-fal-webhook-request-id": "req-1", "x-fal-webhook-user-id": "u",
               "x-fal-webhook-timestamp": str(NOW),
               "x-fal-webhook-signature": "00" * 64}
    with pytest.raises(ImproperlyConfigured, match="no fal webhook keys"):
        verify_fal_webhook(headers, BODY, now=NOW)

"""The Civitai adapter against a fake orchestration v2 API, over HTTP."""
import io
import json
import socket
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from PIL import Image

from factory.providers.base import (
    ConfigurationError,
    OutcomeUnknownError,
    PermanentError,
    RemoteState,
    TransientError,
)
from factory.providers.civitai import CivitaiBackend, request_key
from tests.fakes.base import Fault, follow_states
from tests.fakes.civitai import SEEDS, FakeCivitai, Outcome

TOKEN = "civitai-fake-token-that-must-never-show"
MACHINES = {m["slug"]: m for m in json.loads(SEEDS.read_text())["machines"]}
SDXL = "civitai-sdxl-1-0"


def machine(slug: str = SDXL) -> SimpleNamespace:
    spec = MACHINES[slug]
    return SimpleNamespace(endpoint_id=spec["endpoint_id"],
                           version=spec.get("version", ""),
                           output_key=spec.get("output_key", ""))


def order(slug: str = SDXL, **extra: Any) -> dict[str, Any]:
    return {**MACHINES[slug]["defaults"], "prompt": "a red kite over dunes", **extra}


def submits(fake: FakeCivitai) -> int:
    return sum(r.method == "POST" for r in fake.requests)


def run_to_end(backend: CivitaiBackend, pid: str) -> list[RemoteState]:
    return follow_states(backend, machine(), pid)


@pytest.fixture(scope="module")
def server():
    running = FakeCivitai(token=TOKEN).start()
    yield running
    running.stop()


@pytest.fixture
def fake(server) -> FakeCivitai:
    server.reset()
    return server


@pytest.fixture
def backend(fake, settings) -> CivitaiBackend:
    settings.CIVITAI_API_TOKEN = TOKEN
    settings.CIVITAI_BASE_URL = fake.url
    return CivitaiBackend(timeout=2.0)


# ---------------------------------------------------------------- happy path
def test_submit_follows_workflow_to_decodable_images(backend, fake):
    pid = backend.submit(machine(), order(quantity=2, seed=7), key="item-1")
    assert run_to_end(backend, pid) == [
        RemoteState.QUEUED, RemoteState.RUNNING, RemoteState.COMPLETED]
    outputs = backend.result(machine(), pid)
    assert len(outputs) == 2
    assert [o.content_type for o in outputs] == ["image/jpeg", "image/jpeg"]
    assert outputs[0].metrics == {"cost_buzz": 8}
    assert outputs[0].nsfw is False and outputs[0].seed is None  # two seeds
    for output in outputs:
        assert Image.open(io.BytesIO(httpx.get(output.url).content)).format == "JPEG"


def test_workflow_body_moves_safety_switch_and_adds_step_fields(backend, fake):
    backend.submit(machine(), order(allowMatureContent=False), key="item-2")
    [entry] = fake.ledger
    body, step_input = entry["body"], entry["body"]["steps"][0]["input"]
    assert body["allowMatureContent"] is False
    assert body["externalId"] == "item-2" and "item-2" in body["tags"]
    assert "allowMatureContent" not in step_input
    added = {k: step_input[k] for k in ("engine", "ecosystem", "operation", "model")}
    assert added == {"engine": "sdcpp", "ecosystem": "sdxl",
                     "operation": "createImage", "model": machine().endpoint_id}
    assert fake.requests[0].query == {"wait": ["0"], "whatif": ["false"]}


@pytest.mark.parametrize("slug", sorted(MACHINES))
def test_every_seed_machine_accepts_its_defaults(backend, fake, slug):
    pid = backend.submit(machine(slug), order(slug))
    assert len(fake.ledger) == 1  # the step schema refused no key
    assert run_to_end(backend, pid)[-1] == RemoteState.COMPLETED
    [output] = backend.result(machine(slug), pid)
    Image.open(io.BytesIO(httpx.get(output.url).content)).verify()


def test_single_image_carries_the_requested_seed(backend):
    pid = backend.submit(machine(), order(seed=1234))
    run_to_end(backend, pid)
    assert [o.seed for o in backend.result(machine(), pid)] == [1234]


def test_cancel_ends_as_cancelled(backend):
    pid = backend.submit(machine(), order())
    backend.cancel(machine(), pid)
    assert backend.status(machine(), pid).state == RemoteState.CANCELLED
    with pytest.raises(PermanentError, match="already canceled"):
        backend.cancel(machine(), pid)


# ---------------------------------------------------------------- idempotency
def test_repeated_submit_with_same_key_is_one_workflow(backend, fake):
    first = backend.submit(machine(), order(), key="item-3")
    again = backend.submit(machine(), order(), key="item-3")
    other = backend.submit(machine(), order(), key="item-4")
    assert first == again != other
    assert submits(fake) == 3 and len(fake.ledger) == 2


def test_default_key_is_the_input_digest(backend, fake):
    params = order(seed=3)
    assert backend.submit(machine(), params) == backend.submit(machine(), params)
    assert fake.ledger[0]["externalId"] == request_key(machine(), params)
    assert len(fake.ledger) == 1


def test_malformed_key_is_refused_before_sending(backend, fake):
    with pytest.raises(PermanentError, match="need 1-128"):
        backend.submit(machine(), order(), key="item 5/with spaces")
    assert fake.requests == []


# ---------------------------------------------------------------- rejections
def test_foreign_key_is_a_400_with_the_field(backend, fake):
    with pytest.raises(PermanentError,
                       match=r"400 .*steps\[0\]\.input\.negative_prompt"):
        backend.submit(machine(), order(negative_prompt="blurry"))
    assert fake.ledger == []


def test_out_of_range_value_is_permanent(backend):
    with pytest.raises(PermanentError, match=r"steps\[0\]\.input\.steps"):
        backend.submit(machine(), order(steps=500))


def test_wrong_token_is_configuration_error_without_the_token(backend, settings):
    settings.CIVITAI_API_TOKEN = "civitai-wrong-secret"
    with pytest.raises(ConfigurationError, match="401") as caught:
        CivitaiBackend().submit(machine(), order())
    assert "civitai-wrong-secret" not in str(caught.value)


def test_missing_token_fails_before_any_request(backend, fake, settings):
    settings.CIVITAI_API_TOKEN = ""
    with pytest.raises(ConfigurationError, match="CIVITAI_API_TOKEN is not set"):
        CivitaiBackend().submit(machine(), order())
    assert fake.requests == []


# ---------------------------------------------------------------- faults
def test_throttled_submit_is_transient_with_retry_after(backend, fake):
    fake.faults.push("submit", Fault("status", 429, headers={"Retry-After": "11"},
                                     body={"title": "Too Many Requests"}))
    with pytest.raises(TransientError, match="429 Too Many Requests") as caught:
        backend.submit(machine(), order())
    assert caught.value.retry_after == 11.0
    assert submits(fake) == 1


@pytest.mark.parametrize("code", [500, 503, 504])
def test_server_errors_are_transient(backend, fake, code):
    fake.faults.push("submit", Fault("status", code, body={"detail": "upstream"}))
    with pytest.raises(TransientError, match=f"{code} upstream"):
        backend.submit(machine(), order())
    pid = backend.submit(machine(), order())
    fake.faults.push("get", Fault("status", code, body="<html>gateway</html>"))
    with pytest.raises(TransientError, match=str(code)):
        backend.status(machine(), pid)


@pytest.mark.parametrize("kind", ["hang", "reset"])
def test_accepted_then_lost_submit_is_unknown_found_and_safely_resent(
        backend, fake, kind):
    fake.faults.push("submit", Fault(kind, seconds=1.0))
    before = datetime.now(timezone.utc)
    started = time.monotonic()
    with pytest.raises(OutcomeUnknownError, match="resend with key item-6"):
        CivitaiBackend(timeout=0.3).submit(machine(), order(), key="item-6")
    assert time.monotonic() - started < 1.0
    assert len(fake.ledger) == 1
    found = backend.find(machine(), before, order(), key="item-6")
    assert found == fake.ledger[0]["id"]
    assert backend.submit(machine(), order(), key="item-6") == found
    assert len(fake.ledger) == 1


def test_refused_connection_is_transient(backend, settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.CIVITAI_BASE_URL = f"http://127.0.0.1:{port}"
    with pytest.raises(TransientError, match="not sent"):
        CivitaiBackend().submit(machine(), order())


@pytest.mark.parametrize("kind, error", [
    ("failed", "Job failed: out of memory"),
    ("expired", "No worker took the job in time"),
])
def test_failed_and_expired_workflows_fail_with_providers_error(
        backend, fake, kind, error):
    fake.outcomes.append(Outcome(kind, error=error))
    pid = backend.submit(machine(), order())
    run_to_end(backend, pid)
    status = backend.status(machine(), pid)
    assert (status.state, status.error) == (RemoteState.FAILED, error)


def test_blocked_images_are_a_permanent_error(backend, fake):
    fake.outcomes.append(Outcome("blocked"))
    pid = backend.submit(machine(), order())
    run_to_end(backend, pid)
    with pytest.raises(PermanentError, match="every image was blocked"):
        backend.result(machine(), pid)


def test_signed_urls_expire_and_result_signs_them_again(backend, fake):
    pid = backend.submit(machine(), order())
    run_to_end(backend, pid)
    fake.url_ttl = 1.5  # wide enough for a loaded machine
    [old] = backend.result(machine(), pid)
    time.sleep(1.6)
    assert httpx.get(old.url).status_code == 403
    [fresh] = backend.result(machine(), pid)
    assert fresh.url != old.url
    assert httpx.get(fresh.url).status_code == 200


# ---------------------------------------------------------------- find
def test_find_by_key_ignores_other_keys_and_older_workflows(backend, fake):
    backend.submit(machine(), order(), key="item-7")
    time.sleep(0.01)
    later = datetime.now(timezone.utc)
    assert backend.find(machine(), later, order(), key="item-7") is None
    assert backend.find(machine(), later - timedelta(minutes=1), order(),
                        key="item-8") is None
    pid = backend.submit(machine(), order(), key="item-8")
    assert backend.find(machine(), later, order(), key="item-8") == pid


# ---------------------------------------------------------------- the fake
def test_fake_whatif_prices_without_running_but_keeps_the_key(fake):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    body = {"steps": [{"$type": "imageGen", "input": {
        "engine": "sdcpp", "ecosystem": "sdxl", "operation": "createImage",
        "model": machine().endpoint_id, "prompt": "x", "quantity": 3}}],
        "externalId": "priced"}
    url = fake.url + "/v2/consumer/workflows"
    estimate = httpx.post(url, params={"whatif": "true"}, json=body, headers=headers)
    assert estimate.json()["cost"]["total"] == 12 and fake.ledger == []
    real = httpx.post(url, params={"whatif": "false"}, json=body, headers=headers)
    assert real.json()["id"] == estimate.json()["id"] and fake.ledger == []


def test_fake_wait_answers_the_finished_workflow(fake):
    body = {"steps": [{"$type": "imageGen", "input": {
        "engine": "sdcpp", "ecosystem": "sdxl", "operation": "createImage",
        "model": machine().endpoint_id, "prompt": "x"}}]}
    answer = httpx.post(fake.url + "/v2/consumer/workflows", params={"wait": "5"},
                        json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200 and answer.json()["status"] == "succeeded"


def test_fake_refuses_requests_without_bearer_token(fake):
    answer = httpx.post(fake.url + "/v2/consumer/workflows", json={})
    assert answer.status_code == 401 and fake.ledger == []

"""A hung provider holds a poll for one short attempt, then is transient.

fal-client would wait 120 s per attempt and retry ten times; the adapters
make one attempt bounded by PROVIDER_READ_TIMEOUT_SECONDS instead.
"""
import time
from types import SimpleNamespace

import pytest

from factory.providers.base import RemoteState, TransientError
from factory.providers.fal import FalBackend
from factory.providers.replicate import ReplicateBackend
from tests.fakes.base import Fault
from tests.fakes.fal import load_machines
from tests.fakes.replicate import FakeReplicate

HANG = Fault("hang", seconds=30)
# Far below the 30 s hang, far above any honest answer on a busy machine.
BOUND_SECONDS = 10
FLUX = next(m for m in load_machines() if m["slug"] == "fal-flux-dev")
FLUX_SPEC = SimpleNamespace(endpoint_id=FLUX["endpoint_id"], version="",
                            output_key=FLUX["output_key"])


@pytest.fixture(autouse=True)
def short_reads(settings):
    settings.PROVIDER_READ_TIMEOUT_SECONDS = 0.5


def calls(fake, suffix: str) -> int:
    return sum(1 for r in fake.requests if r.path.endswith(suffix))


def fal_request(fake) -> str:
    return FalBackend().submit(FLUX_SPEC, {**FLUX["defaults"], "prompt": "a kite"})


def test_hung_fal_status_is_transient_after_one_attempt(fake_fal):
    request_id = fal_request(fake_fal)
    fake_fal.faults.push("status", HANG)
    started = time.monotonic()

    with pytest.raises(TransientError, match=f"fal status {request_id}: ReadTimeout"):
        FalBackend().status(FLUX_SPEC, request_id)

    assert time.monotonic() - started < BOUND_SECONDS
    assert calls(fake_fal, "/status") == 1
    assert FalBackend().status(FLUX_SPEC, request_id).state is RemoteState.RUNNING


def test_hung_fal_result_is_transient_after_one_attempt(fake_fal):
    fake_fal.polls_per_stage = 0
    request_id = fal_request(fake_fal)
    fake_fal.faults.push("result", HANG)

    with pytest.raises(TransientError, match=f"fal result {request_id}: ReadTimeout"):
        FalBackend().result(FLUX_SPEC, request_id)

    assert calls(fake_fal, request_id) == 1
    assert len(FalBackend().result(FLUX_SPEC, request_id)) == 1


def test_hung_fal_cancel_is_transient(fake_fal):
    request_id = fal_request(fake_fal)
    fake_fal.faults.push("cancel", HANG)

    with pytest.raises(TransientError, match="ReadTimeout"):
        FalBackend().cancel(FLUX_SPEC, request_id)

    assert calls(fake_fal, "/cancel") == 1


def test_hung_replicate_get_is_transient_after_one_attempt(settings):
    fake = FakeReplicate(token="r8_test").start()
    try:
        settings.REPLICATE_API_TOKEN, settings.REPLICATE_BASE_URL = "r8_test", fake.url
        backend = ReplicateBackend()
        spec = SimpleNamespace(endpoint_id="black-forest-labs/flux-schnell",
                               version="", output_key="")
        pid = backend.submit(spec, {"prompt": "a kite"})
        fake.faults.push("get", HANG)
        started = time.monotonic()

        with pytest.raises(TransientError, match=f"prediction {pid}: ReadTimeout"):
            backend.status(spec, pid)

        assert time.monotonic() - started < BOUND_SECONDS
        assert calls(fake, pid) == 1
    finally:
        fake.stop()

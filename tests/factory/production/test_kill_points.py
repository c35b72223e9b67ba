"""Kill-point matrix: a process SIGKILLed at any step of production recovers.

For fal and Replicate, the worker or foreman that reaches one of eight points
is SIGKILLed there, once (``tests/killpoint.py`` wraps the function at that
point). Real ``rqworker`` bursts and a real ``run_foreman``, on the real Redis
and against the fake provider, then run until no item is unfinished. Every
item must end completed with exactly one submission in the fake's ledger,
exactly one product per output, and every stored file referenced by a
MediaFile row. Leases and graces are shortened through the environment, so
recovering takes seconds instead of the production minutes.
"""
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from factory.models import (
    FactoryMachine,
    ItemStatus,
    MediaFile,
    Order,
    Product,
    SeedStrategy,
)
from factory.ordering import place_order
from tests.conftest import ROOT, worker_env
from tests.fakes.base import FakeProvider
from tests.fakes.fal import FakeFal
from tests.fakes.replicate import FakeReplicate

POINTS = (
    "after_claim",            # claimed for submitting, the attempt counted
    "after_intent",           # just before the paid POST
    "accepted_unsaved",       # the provider accepted it; the id is not saved
    "after_id_saved",         # the request id is saved
    "mid_poll",               # the foreman, inside a status call
    "mid_download",           # the first bytes of an output arrived
    "stored_before_product",  # an output's files are stored, no rows yet
    "after_product_row",      # a product row saved, the item not completed
)
# machine, the parameter that counts outputs, base parameters
MACHINES = {
    "fal": ("fal-flux-dev", "num_images", {"image_size": "square"}),
    "replicate": ("replicate-flux-schnell", "num_outputs", {}),
}
QUICK = {
    "PRODUCTION_SUBMIT_LEASE_SECONDS": "4",
    "PRODUCTION_COLLECT_LEASE_SECONDS": "3",
    "PRODUCTION_PENDING_GRACE_SECONDS": "1",
    "PRODUCTION_UNKNOWN_GRACE_SECONDS": "3",
    "FOREMAN_CLAIM_SECONDS": "3",
}
LAUNCHER = [sys.executable, "-m", "tests.killpoint"]
# The project's ProductionWorker: jobs in-process.
WORKER = [*LAUNCHER, "rqworker", "submit", "collect", "default", "--burst"]
FOREMAN = [*LAUNCHER, "run_foreman", "--until-idle", "--max-seconds", "120",
           "--tick", "0.1", "--poll", "0.2", "--sweep-every", "1"]
KILLED = -signal.SIGKILL
KILLED_IN = {"mid_poll": "run_foreman"}  # every other point lies in a worker


def serve(provider: str) -> tuple[FakeProvider, dict[str, str]]:
    """Start the provider's fake and the environment that points at it."""
    if provider == "fal":
        fake: FakeProvider = FakeFal(key="test-key").start()
        env = {"FAL_KEY": "test-key", "FAL_QUEUE_URL": fake.url + "/",
               "FAL_API_URL": fake.url}
    else:
        fake = FakeReplicate(token="r8_fake").start()
        env = {"REPLICATE_API_TOKEN": "r8_fake", "REPLICATE_BASE_URL": fake.url}
    return fake, {
        **env, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
        "DOWNLOAD_ALLOW_HTTP": "true",
        "DOWNLOAD_ALLOWED_PRIVATE_HOSTS": fake.url.removeprefix("http://"),
    }


def place(provider: str, user: Any) -> Order:
    """Two items, of one and of two outputs; their submit jobs go to Redis."""
    slug, count, base = MACHINES[provider]
    order = Order.objects.create(
        machine=FactoryMachine.objects.get(slug=slug), prompt="a lighthouse at dusk",
        base_parameters=base, sweeps=[[{"field": count, "values": [1, 2]}]],
        runs=1, seed_strategy=SeedStrategy.INCREMENT, seed=7, created_by=user,
    )
    return place_order(order)


def produce(order: Order, env: dict[str, str], logs: Path,
            timeout: float = 90) -> list[int]:
    """Worker bursts beside a foreman (restarted if it dies) until every
    item is finished or ``timeout`` passed; the exit code of each process.
    """
    deadline = time.monotonic() + timeout
    exits: list[int] = []
    foreman: subprocess.Popen | None = None
    with (logs / "foreman.log").open("a") as foreman_log, \
            (logs / "worker.log").open("a") as worker_log:
        try:
            while (order.items.unfinished().exists()
                   and time.monotonic() < deadline):
                if foreman is not None and foreman.poll() is not None:
                    exits.append(foreman.returncode)
                    foreman = None
                if foreman is None:
                    foreman = subprocess.Popen(
                        FOREMAN, env=env, cwd=ROOT, stdout=foreman_log,
                        stderr=subprocess.STDOUT,
                    )
                worker = subprocess.run(
                    WORKER, env=env, cwd=ROOT, stdout=worker_log,
                    stderr=subprocess.STDOUT, timeout=120,
                )
                exits.append(worker.returncode)
        finally:
            if foreman is not None and foreman.poll() is None:
                foreman.terminate()  # done: it stops after its tick
                foreman.wait(timeout=60)
            elif foreman is not None:
                exits.append(foreman.returncode)
    return exits


def _states(order: Order) -> list[tuple[Any, ...]]:
    return list(order.items.values_list(
        "index", "status", "attempts", "request_id", "last_error"))


def stored_files(media_root: Path) -> set[str]:
    return {p.relative_to(media_root).as_posix()
            for p in Path(media_root).rglob("*") if p.is_file()}


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


@pytest.mark.once
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("point", POINTS)
# fal in every run; Replicate, twice as slow here, under `make test-slow`.
@pytest.mark.parametrize("provider", [
    pytest.param(name, marks=[pytest.mark.slow] if name == "replicate" else [])
    for name in sorted(MACHINES)
])
def test_a_process_killed_at_any_point_leaves_one_submission_and_no_orphans(
    catalog, redis_db, lead, media_root, tmp_path, request, provider, point
):
    fake, provider_env = serve(provider)
    request.addfinalizer(fake.stop)
    order = place(provider, lead)
    marker = tmp_path / "killed"
    env = {**worker_env(media_root), **provider_env, **QUICK,
           "KILL_POINT": point, "KILL_MARKER": str(marker)}

    exits = produce(order, env, tmp_path)

    logs = "".join(p.read_text()[-3000:] for p in sorted(tmp_path.glob("*.log")))
    assert marker.exists(), f"no process reached {point}\n{logs}"
    killed = marker.read_text()
    items = list(order.items.all())
    assert {i.status for i in items} == {ItemStatus.COMPLETED}, (
        _states(order), killed, logs)
    assert KILLED_IN.get(point, "rqworker") in killed, killed
    assert set(exits) <= {0, KILLED} and exits.count(KILLED) == 1, (exits, logs)
    sent = Counter(canonical(entry["input"]) for entry in fake.ledger)
    assert sent == Counter(canonical(i.parameters) for i in items), fake.ledger
    count = MACHINES[provider][1]
    for item in items:
        indexes = sorted(item.products.values_list("output_index", flat=True))
        assert indexes == list(range(item.parameters[count])), (item.index, indexes)
    assert Product.objects.count() == 3
    referenced = {name for row in MediaFile.objects.values_list("file", "thumbnail")
                  for name in row if name}
    assert stored_files(media_root) == referenced
    assert not MediaFile.objects.filter(products__isnull=True).exists()

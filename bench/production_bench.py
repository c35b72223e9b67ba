"""Production benchmarks: real `rqworker` and `run_foreman` processes.

P1 hides provider latency: 1,000 slow demo images, bounded only by the
provider's concurrency limit, against jobs that each wait for their own
generation. P2 weighs the pipeline's overhead: 1,000 instant demo images
end to end against the same media work done in one loop in-process.
Both run on the database in DATABASE_URL and the Redis in REDIS_URL, so
point REDIS_URL at a spare database: the demo provider's slots are reset.
"""
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import django_rq
from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.db import connection
from django.utils import timezone
from rq import Worker

from factory.media.inspect import probe
from factory.media.storage import store_once
from factory.media.thumbnails import make_thumbnail
from factory.models import FactoryMachine, ItemStatus, Order, OrderItem, Provider
from factory.ordering import place_order
from factory.production import limits
from factory.production.collect import collect_outputs
from factory.production.follow import claim_collection
from factory.production.submit import worker_name
from factory.providers import demo_art, get_backend
from factory.providers.base import RemoteState

ROOT = Path(__file__).resolve().parent.parent
ITEMS = int(os.environ.get("BENCH_PRODUCTION_ITEMS", 1000))
LATENCY = 5.0
SLOTS = 100
WORKERS = 2
BASELINE_SAMPLE = int(os.environ.get("BENCH_BASELINE_SAMPLE", 20))
QUEUES = ("submit", "collect", "default")  # as docs/operations.md runs them
BLOCKING_JOB = "bench.production_bench.generate_blocking"
DONE_TIMEOUT = 1800.0


def generate_blocking(item_id: int) -> None:
    """Submit, wait for the result like ``fal_client.subscribe``, collect.

    The baseline a latency-hiding pipeline is measured against: the worker
    is held for the whole generation.
    """
    item = OrderItem.objects.select_related("machine__provider").get(pk=item_id)
    backend = get_backend(item.machine.provider.slug)
    request_id = backend.submit(item.machine, item.parameters, key=item.provider_key)
    while backend.status(item.machine, request_id).state != RemoteState.COMPLETED:
        time.sleep(0.25)
    OrderItem.objects.filter(pk=item_id).update(
        status=ItemStatus.COLLECTING, request_id=request_id, lease_owner="",
        submitted_at=timezone.now(), updated_at=timezone.now(),
    )
    claimed = claim_collection(item_id, owner=worker_name())
    if claimed is not None:
        collect_outputs(claimed)


class Factory:
    """Two `rqworker` processes and, if asked, one foreman, on this database."""

    def __init__(self, latency: float, media_root: Path, foreman: bool = True) -> None:
        self.env = {
            **os.environ,
            "DATABASE_URL": os.environ["DATABASE_URL"],
            "REDIS_URL": settings.REDIS_URL,
            "MEDIA_ROOT": str(media_root),
            "DEMO_LATENCY_SECONDS": str(latency),
            "PYTHONPATH": str(ROOT),
        }
        self.foreman = foreman
        self.log = open(media_root.parent / "processes.log", "ab")  # noqa: SIM115
        self.processes: list[subprocess.Popen] = []

    def _start(self, *args: str) -> None:
        self.processes.append(subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), *args], env=self.env, cwd=ROOT,
            stdout=self.log, stderr=subprocess.STDOUT,
        ))

    def __enter__(self) -> "Factory":
        redis = django_rq.get_connection("default")
        before = Worker.count(connection=redis)
        for _ in range(WORKERS):
            self._start("rqworker", *QUEUES)
        if self.foreman:
            self._start("run_foreman", "--tick", "0.2", "--poll", "0.5")
        deadline = time.monotonic() + 60
        while Worker.count(connection=redis) < before + WORKERS:
            if time.monotonic() > deadline:
                raise RuntimeError("rqworker processes did not start; see processes.log")
            time.sleep(0.2)
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.log.close()


def _clear_stage() -> None:
    """Leave the processes nothing but the order about to be timed.

    Other benchmarks leave placed items pending in this throwaway database;
    the foreman's sweeper would queue them again. Jobs left in Redis by an
    interrupted run are dropped too.
    """
    OrderItem.objects.unfinished().update(status=ItemStatus.CANCELLED)
    for name in ("submit", "collect", "default"):
        queue = django_rq.get_queue(name)
        queue.empty()
        for job_id in queue.scheduled_job_registry.get_job_ids():
            queue.scheduled_job_registry.remove(job_id, delete_job=True)


def _reset_demo_limits(slots: int) -> None:
    """Give the demo provider ``slots`` slots, none taken, no cool-down."""
    _clear_stage()
    Provider.objects.filter(slug="demo").update(concurrency_limit=slots)
    FactoryMachine.objects.filter(slug="demo-image").update(concurrency_limit=None)
    redis = limits.connection()
    provider = Provider.objects.get(slug="demo")
    redis.delete(limits.provider_scope(provider).key, limits.cooldown_key("demo"))


def _demo_order(count: int, side: int) -> Order:
    return Order.objects.create(
        title=f"bench {count} demo images", item_ceiling=count,
        machine=FactoryMachine.objects.get(slug="demo-image"),
        prompt="a paper kite over dunes at dusk",
        base_parameters={"width": side, "height": side, "num_images": 1},
        runs=count, seed_strategy="increment", seed=1,
    )


def _wait_until_done(order: Order) -> None:
    deadline = time.monotonic() + DONE_TIMEOUT
    while OrderItem.objects.filter(order=order).unfinished().exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"order {order.pk} unfinished after {DONE_TIMEOUT:.0f}s")
        time.sleep(0.1)
    failed = OrderItem.objects.filter(order=order).exclude(status=ItemStatus.COMPLETED)
    if failed.exists():
        first = failed.first()
        raise RuntimeError(f"{failed.count()} items did not complete: {first.last_error}")


def _produce(count: int, side: int, latency: float, slots: int, tmp: Path) -> tuple[Order, float]:
    """Wall seconds from placing an order until every item is completed."""
    _reset_demo_limits(slots)
    with Factory(latency, tmp / "media"):
        order = _demo_order(count, side)
        start = time.perf_counter()
        place_order(order)
        _wait_until_done(order)
        seconds = time.perf_counter() - start
    return order, seconds


def _blocking_sample(count: int, side: int, tmp: Path) -> float:
    """Wall seconds for ``count`` items through blocking jobs, no foreman."""
    _reset_demo_limits(SLOTS)
    order = _demo_order(count, side)
    with Factory(LATENCY, tmp / "media", foreman=False):
        with mock_enqueue():
            place_order(order)
        queue = django_rq.get_queue("default")
        ids = list(order.items.order_by("index").values_list("pk", flat=True))
        start = time.perf_counter()
        for pk in ids:
            queue.enqueue(BLOCKING_JOB, pk, job_timeout=600)
        _wait_until_done(order)
        seconds = time.perf_counter() - start
    return seconds


def mock_enqueue() -> Any:
    from unittest import mock

    return mock.patch("factory.production.queues.enqueue_items")


def bench_latency_hiding() -> list[dict[str, Any]]:
    if connection.vendor != "sqlite":
        return []  # minutes per run: measured on the SQLite pass only
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        _, wall = _produce(ITEMS, 64, LATENCY, SLOTS, tmp)
        sample = _blocking_sample(BASELINE_SAMPLE, 64, tmp)
    bound = math.ceil(ITEMS / SLOTS) * LATENCY
    baseline = sample / BASELINE_SAMPLE * ITEMS
    return [
        {"name": f"P1: {ITEMS:,} demo images, 5 s latency, {SLOTS} slots, "
                 f"{WORKERS} workers + foreman", "value": wall, "unit": "s"},
        {"name": "P1: ratio wall ÷ provider bound "
                 f"({ITEMS:,} ÷ {SLOTS} × 5 s = {bound:.0f} s)",
         "value": wall / bound, "unit": "×", "target": "≤ 1.15"},
        {"name": f"P1: blocking jobs, {BASELINE_SAMPLE} items measured",
         "value": sample, "unit": "s"},
        {"name": f"P1: blocking jobs, extrapolated to {ITEMS:,} items",
         "value": baseline, "unit": "s"},
        {"name": "P1: speed-up over blocking jobs", "value": baseline / wall,
         "unit": "×", "target": "≥ 40"},
    ]


def _media_loop(order: Order, side: int, media_root: Path) -> float:
    """The media work of ``order`` in one in-process loop: render, probe,
    hash, store once and thumbnail each image."""
    storage = FileSystemStorage(location=media_root)
    params = list(order.items.order_by("index").values_list("parameters", flat=True))
    start = time.perf_counter()
    for p in params:
        data = demo_art.render_image(p["prompt"], int(p["seed"]), side, side,
                                     p.get("output_format", "png"))
        info = probe(data)
        store_once(data, info.extension, "files", storage=storage)
        store_once(make_thumbnail(data, info), "webp", "thumbs", storage=storage)
    return time.perf_counter() - start


def bench_overhead() -> list[dict[str, Any]]:
    if connection.vendor != "sqlite":
        return []  # measured on the SQLite pass only
    side = 128
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        order, wall = _produce(ITEMS, side, 0.0, ITEMS, tmp)
        pure = _media_loop(order, side, tmp / "pure")
    return [
        {"name": f"P2: {ITEMS:,} instant demo images ({side}×{side}) end to end",
         "value": wall, "unit": "s"},
        {"name": "P2: the same media work in one in-process loop",
         "value": pure, "unit": "s"},
        {"name": "P2: ratio end to end ÷ media work", "value": wall / pure,
         "unit": "×", "target": "≤ 1.5"},
    ]


BENCHMARKS = [bench_latency_hiding, bench_overhead]

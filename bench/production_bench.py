"""Production benchmarks: real `rqworker` and `run_foreman` processes.

P1 hides provider latency: 1,000 slow demo images, bounded only by the
provider's concurrency limit, against jobs that each wait for their own
generation. P2 weighs the pipeline's overhead: 1,000 instant demo images
end to end against the same media work done in one loop in-process, in
wall time and in CPU-seconds (every process of the pipeline counted), with
the workers' and the foreman's resident memory sampled through the run.
Both run on the database in DATABASE_URL and the Redis in REDIS_URL, so
point REDIS_URL at a spare database: the demo provider's slots are reset.
"""
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import django_rq
import psutil
from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.db import connection
from django.utils import timezone
from rq import Worker

from factory.media.storage import store_once
from factory.models import FactoryMachine, ItemStatus, Order, OrderItem, Provider
from factory.ordering import place_order
from factory.production import limits
from factory.production.collect import collect_outputs, verify_output
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
        self.roles: dict[int, str] = {}  # pid -> "worker" or "foreman"
        self.memory: dict[int, list[int]] = {}  # pid -> resident bytes sampled
        self._sampling = threading.Event()

    def _start(self, *args: str) -> None:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), *args], env=self.env, cwd=ROOT,
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        self.roles[process.pid] = "foreman" if args[0] == "run_foreman" else "worker"

    def cpu_seconds(self) -> dict[str, float]:
        """User and system CPU of the processes so far by role, children
        included."""
        totals: dict[str, float] = {}
        for process in self.processes:
            times = psutil.Process(process.pid).cpu_times()
            role = self.roles[process.pid]
            totals[role] = totals.get(role, 0.0) + (
                times.user + times.system + times.children_user + times.children_system)
        return totals

    def sample_memory(self, every: float = 0.5) -> None:
        """Record each process's resident memory until ``stop_sampling``."""
        def sample() -> None:
            while not self._sampling.wait(every):
                for process in self.processes:
                    try:
                        rss = psutil.Process(process.pid).memory_info().rss
                    except psutil.Error:
                        continue
                    self.memory.setdefault(process.pid, []).append(rss)
        self._sampling.clear()
        threading.Thread(target=sample, daemon=True).start()

    def stop_sampling(self) -> None:
        self._sampling.set()

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


@dataclass
class Run:
    """One timed order through the processes."""

    order: Order
    seconds: float
    cpu: dict[str, float]  # CPU-seconds by role: worker, foreman, placing

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu.values())
    memory: dict[str, list[list[int]]]  # role -> each process's RSS samples


def _produce(count: int, side: int, latency: float, slots: int, tmp: Path) -> Run:
    """Wall and CPU seconds from placing an order until every item is
    completed; the processes' start-up is outside both."""
    _reset_demo_limits(slots)
    with Factory(latency, tmp / "media") as factory:
        order = _demo_order(count, side)
        cpu_before = factory.cpu_seconds()
        factory.sample_memory()
        start, placing = time.perf_counter(), time.process_time()
        place_order(order)
        placing = time.process_time() - placing
        _wait_until_done(order)
        seconds = time.perf_counter() - start
        factory.stop_sampling()
        after = factory.cpu_seconds()
        cpu = {role: after[role] - cpu_before[role] for role in after}
        cpu["placing"] = placing
        memory: dict[str, list[list[int]]] = {}
        for pid, samples in factory.memory.items():
            memory.setdefault(factory.roles[pid], []).append(samples)
    return Run(order, seconds, cpu, memory)


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
        wall = _produce(ITEMS, 64, LATENCY, SLOTS, tmp).seconds
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


def _media_loop(order: Order, side: int, media_root: Path) -> tuple[float, float]:
    """The media work of ``order`` in one in-process loop, as collecting does
    it: render, probe, embed the parameters, thumbnail, hash and store each
    file once. Wall and CPU seconds."""
    storage = FileSystemStorage(location=media_root)
    items = list(order.items.select_related("machine").order_by("index"))
    start, cpu = time.perf_counter(), time.process_time()
    for item in items:
        p = item.parameters
        data = demo_art.render_image(p["prompt"], int(p["seed"]), side, side,
                                     p.get("output_format", "png"))
        output = verify_output(item, data, item.seed)
        store_once(output.data, output.info.extension, "files", storage=storage)
        store_once(output.thumbnail, "webp", "thumbs", storage=storage)
    return time.perf_counter() - start, time.process_time() - cpu


def _growth_mb(runs: list[list[int]]) -> float:
    """The largest rise of one process's resident memory from the median of
    its first tenth of samples to the median of its last tenth, in MB."""
    def median(values: list[int]) -> float:
        ordered = sorted(values)
        return ordered[len(ordered) // 2]
    rises = []
    for samples in runs:
        tenth = max(1, len(samples) // 10)
        rises.append(median(samples[-tenth:]) - median(samples[:tenth]))
    return max(rises, default=0) / 2**20


def _peak_mb(runs: list[list[int]]) -> float:
    return max((max(samples) for samples in runs if samples), default=0) / 2**20


def bench_overhead() -> list[dict[str, Any]]:
    if connection.vendor != "sqlite":
        return []  # measured on the SQLite pass only
    side = 128
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        run = _produce(ITEMS, side, 0.0, ITEMS, tmp)
        pure, pure_cpu = _media_loop(run.order, side, tmp / "pure")
    workers, foreman = run.memory.get("worker", []), run.memory.get("foreman", [])
    return [
        {"name": f"P2: {ITEMS:,} instant demo images ({side}×{side}) end to end",
         "value": run.seconds, "unit": "s"},
        {"name": "P2: the same media work in one in-process loop",
         "value": pure, "unit": "s"},
        {"name": "P2: ratio end to end ÷ media work", "value": run.seconds / pure,
         "unit": "×", "target": "≤ 1.5"},
        {"name": f"P2: CPU of {WORKERS} workers + foreman + placing, per item",
         "value": run.cpu_seconds / ITEMS * 1000, "unit": "ms"},
        *({"name": f"P2: of which {role}, per item", "value": seconds / ITEMS * 1000,
           "unit": "ms"} for role, seconds in sorted(run.cpu.items())),
        {"name": "P2: CPU of the media work alone, per item",
         "value": pure_cpu / ITEMS * 1000, "unit": "ms"},
        {"name": "P2: CPU ratio pipeline ÷ media work",
         "value": run.cpu_seconds / pure_cpu, "unit": "×", "target": "≤ 1.3"},
        {"name": f"P2: worker resident memory, rise over {ITEMS:,} items (largest of "
                 f"{len(workers)})", "value": _growth_mb(workers), "unit": "MB"},
        {"name": "P2: worker resident memory, peak", "value": _peak_mb(workers),
         "unit": "MB"},
        {"name": "P2: foreman resident memory, peak", "value": _peak_mb(foreman),
         "unit": "MB"},
    ]


BENCHMARKS = [bench_latency_hiding, bench_overhead]

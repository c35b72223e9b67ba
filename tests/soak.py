"""The soak: production under every fault at once, counted from the outside.

Orders across the fal and Replicate fakes run through the shipped process
set (two `run_worker` workers, a collector, two foremen and gunicorn for
webhooks) on PostgreSQL and a Redis of the soak's own, while the soak
SIGKILLs workers and foremen (some in the middle of a submit), restarts
Redis (alternately keeping and losing its data), terminates PostgreSQL
backends, and the fakes answer 1 % of calls with 503, accept some submits
and then hang, and deliver some webhooks twice. A supervisor starts again
whatever exits, as honcho or systemd would.

It then counts, from the fakes' ledgers, the database and the media
directory: items attempted, completed, failed (by reason) and not
terminal; duplicate submissions (one input accepted twice); duplicate and
lost products; orphan files (stored but referenced by no row); and the
seconds from the last fault until every item was terminal.

    make soak                         # 2,000 items, figures into docs/reliability.md
    .venv/bin/python -m tests.soak --items 200 --orders 20 --kills 10 \\
        --redis-restarts 1 --latency 0.5 3 --window 40

``tests/factory/production/test_soak.py`` runs the 200-item version inside
``make test``.
"""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "reliability.md"
START, END = "<!-- soak -->", "<!-- /soak -->"


@dataclass
class Plan:
    """What one soak does; the defaults are the full run of `make soak`."""

    items: int = 2000
    orders: int = 200
    latency: tuple[float, float] = (1.0, 20.0)  # seconds a generation takes
    slots: int = 60  # concurrency limit of each provider
    kills: int = 40
    redis_restarts: int = 2  # the first loses its data, the next keeps it, ...
    pg_terminations: int = 1
    window: tuple[float, float] = (10.0, 170.0)  # seconds in which faults fall
    busy_rate: float = 0.01  # 503 answers to submits, status reads and files
    hang_rate: float = 0.005  # submits accepted, then left hanging
    hang_seconds: float = 45.0
    duplicate_webhooks: float = 0.1
    settle_seconds: float = 180.0  # everything terminal this soon after the last fault
    seed: int = 1

    def describe(self) -> str:
        return (f"{self.items:,} items in {self.orders} orders (fal and Replicate), "
                f"generations of {self.latency[0]:g}–{self.latency[1]:g} s, "
                f"{self.slots} slots per provider; {self.kills} SIGKILLs, "
                f"{self.redis_restarts} Redis restarts, {self.pg_terminations} "
                f"PostgreSQL backend terminations between {self.window[0]:g} s and "
                f"{self.window[1]:g} s; {self.busy_rate:.0%} 503s, "
                f"{self.hang_rate:.1%} accepted-then-hung submits, "
                f"{self.duplicate_webhooks:.0%} of fal webhooks delivered twice")


# ---------------------------------------------------------------- the fakes
def busy() -> Any:
    from tests.fakes.base import Fault

    return Fault("status", status=503, body={"detail": "Service Unavailable"})


class RandomFaults:
    """Scripted faults first, then random ones by route, until ``stop()``."""

    def __init__(self, faults: Any, rates: dict[str, list[tuple[float, Any]]],
                 rng: random.Random) -> None:
        self.scripted, self.rates, self.rng = faults, rates, rng
        self.lock = threading.Lock()
        self.latency = faults.latency
        self.injected: Counter = Counter()

    def push(self, route: str, *faults: Any) -> None:
        self.scripted.push(route, *faults)

    def clear(self) -> None:
        self.scripted.clear()

    def stop(self) -> None:
        self.rates = {}

    def pop(self, route: str) -> Any:
        fault = self.scripted.pop(route)
        if fault is not None:
            return fault
        with self.lock:
            draw = self.rng.random()
        for rate, made in self.rates.get(route, ()):
            if draw < rate:
                fault = made()
                with self.lock:
                    what = str(fault.status) if fault.kind == "status" else fault.kind
                    self.injected[f"{what} on {route}"] += 1
                return fault
            draw -= rate
        return None


def make_fakes(plan: Plan, rng: random.Random) -> tuple[Any, Any]:
    """A fal and a Replicate fake whose generations take ``plan.latency``."""
    from tests.fakes.base import Fault
    from tests.fakes.fal import FakeFal
    from tests.fakes.replicate import FakeReplicate

    low, high = plan.latency

    class SoakFal(FakeFal):
        def _submit(self, request, match):
            answer = super()._submit(request, match)
            if answer.status == 200:
                job = self.jobs[answer.body["request_id"]]
                job.seconds = rng.uniform(low, high)
            return answer

        def _stage(self, job):
            took = getattr(job, "seconds", 0.0)
            ran = time.time() - job.sent_at
            if job.cancelled or ran >= took:
                if job.ended_at is None:
                    job.ended_at = time.time()
                return "COMPLETED"
            return "IN_QUEUE" if ran < took * 0.1 else "IN_PROGRESS"

    class SoakReplicate(FakeReplicate):
        def _start_prediction(self, model, payload, path):
            record = super()._start_prediction(model, payload, path)
            with self.state_lock:
                self.hidden[record["id"]]["run"] = rng.uniform(low, high)
            return record

        def _advance(self, pid, force=False):
            with self.state_lock:
                self.run_seconds = self.hidden[pid].get("run", 0.0)
                super()._advance(pid, force)

    fal, replicate = SoakFal(key="soak-fal-key"), SoakReplicate(token="r8_soak")
    hang = lambda: Fault("hang", seconds=plan.hang_seconds)  # noqa: E731
    for fake, submit, status in ((fal, "submit", "status"), (replicate, "create", "get")):
        fake.faults = RandomFaults(fake.faults, {
            submit: [(plan.busy_rate, busy), (plan.hang_rate, hang)],
            status: [(plan.busy_rate, busy)],
            "file": [(plan.busy_rate, busy)],
        }, rng)
    return fal.start(), replicate.start()


class WebhookSender(threading.Thread):
    """Delivers fal's signed completion call for every request that finished
    and asked for one, a share of them twice."""

    def __init__(self, fal: Any, duplicates: float, rng: random.Random) -> None:
        super().__init__(daemon=True)
        self.fal, self.duplicates, self.rng = fal, duplicates, rng
        self.sent: set[str] = set()
        self.answers: Counter = Counter()
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.3):
            for job in list(self.fal.jobs.values()):
                if job.request_id in self.sent or not job.webhook:
                    continue
                if self.fal._stage(job) != "COMPLETED":
                    continue
                self.sent.add(job.request_id)
                times = 2 if self.rng.random() < self.duplicates else 1
                for _ in range(times):
                    try:
                        code = self.fal.deliver_webhook(job.request_id).status_code
                    except Exception as exc:  # noqa: BLE001 - the web process may be down
                        code = type(exc).__name__
                    self.answers[str(code)] += 1

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=5)


# ---------------------------------------------------------------- processes
@dataclass
class Supervisor:
    """Named processes, started again a second after they exit."""

    env: dict[str, str]
    logs: Path
    commands: dict[str, list[str]] = field(default_factory=dict)
    running: dict[str, subprocess.Popen] = field(default_factory=dict)
    exited_at: dict[str, float] = field(default_factory=dict)
    restarts: Counter = field(default_factory=Counter)

    def start(self, name: str, command: list[str]) -> None:
        self.commands[name] = command
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"{name}.log").open("a") as out:
            self.running[name] = subprocess.Popen(
                command, env=self.env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)

    def supervise(self) -> None:
        now = time.monotonic()
        for name, process in list(self.running.items()):
            if process.poll() is None:
                continue
            since = self.exited_at.setdefault(name, now)
            if now - since >= 1.0:
                del self.exited_at[name]
                self.restarts[name] += 1
                self.start(name, self.commands[name])

    def kill(self, name: str) -> bool:
        process = self.running[name]
        if process.poll() is not None:
            return False
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        return True

    def stop(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.running.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def log(self, name: str, tail: int = 3000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""


def manage(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "manage.py"), *args]


def process_env(base: dict[str, str], fal: Any, replicate: Any, redis_url: str,
                web_port: int) -> dict[str, str]:
    hosts = ",".join(f.url.removeprefix("http://") for f in (fal, replicate))
    return {
        **base,
        "REDIS_URL": redis_url,
        "FAL_KEY": fal.key, "FAL_QUEUE_URL": fal.url + "/", "FAL_API_URL": fal.url,
        "FAL_SUBMIT_TIMEOUT": "15",
        "FAL_WEBHOOK_JWKS_URL": fal.url + "/.well-known/jwks.json",
        "REPLICATE_API_TOKEN": replicate.token, "REPLICATE_BASE_URL": replicate.url,
        # No REPLICATE_WEBHOOK_SECRET: the Replicate fake sends no webhooks, so
        # Replicate items are found by polling, paced as without webhooks.
        "WEBHOOK_BASE_URL": f"http://127.0.0.1:{web_port}",
        "DOWNLOAD_ALLOW_HTTP": "true", "DOWNLOAD_ALLOWED_PRIVATE_HOSTS": hosts,
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
        "PYTHONPATH": str(ROOT),
        # The shipped foreman's tick and poll interval, but a sweep every 5 s
        # and short leases and graces: what a fault loses is re-driven in
        # seconds instead of the production minutes.
        "FOREMAN_SWEEP_EVERY": "5", "FOREMAN_CLAIM_SECONDS": "10",
        "PRODUCTION_PENDING_GRACE_SECONDS": "5",
        "PRODUCTION_SUBMIT_LEASE_SECONDS": "40",
        "PRODUCTION_UNKNOWN_GRACE_SECONDS": "10",
        "PRODUCTION_COLLECT_LEASE_SECONDS": "60",
        # gunicorn here only answers webhooks: no static manifest needed.
        "STATIC_MANIFEST": "0", "WEB_CONCURRENCY": "1", "WEB_THREADS": "4",
        "WEB_BIND": f"127.0.0.1:{web_port}",
    }


def start_crew(supervisor: Supervisor) -> None:
    """The Procfile's processes, with two of each worker kind and foreman."""
    supervisor.start("web", [sys.executable, "-m", "gunicorn", "--config",
                             str(ROOT / "artfactory" / "gunicorn.conf.py")])
    # Unnamed, as in the Procfile: RQ keeps a killed worker's name
    # registered for minutes, so a fixed name could not start again.
    for name in ("worker-1", "worker-2"):
        supervisor.start(name, manage("run_worker"))
    supervisor.start("collector", manage("run_worker", "--queues", "collect", "default"))
    for name in ("foreman-a", "foreman-b"):
        supervisor.start(name, manage("run_foreman", "--name", name))


KILLABLE = ("worker-1", "worker-2", "collector", "foreman-a", "foreman-b")
SUBMITTERS = ("worker-1", "worker-2")


# ---------------------------------------------------------------- the run
@dataclass
class Report:
    plan: Plan
    attempted: int = 0
    completed: int = 0
    failed: Counter = field(default_factory=Counter)
    not_terminal: int = 0
    accepted_submissions: int = 0
    duplicate_submissions: int = 0
    duplicate_products: int = 0
    lost_products: int = 0
    orphan_files: int = 0
    missing_files: int = 0
    faults: Counter = field(default_factory=Counter)
    provider_faults: Counter = field(default_factory=Counter)
    webhooks: Counter = field(default_factory=Counter)
    restarts: Counter = field(default_factory=Counter)
    events: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    last_fault_at: float = 0.0
    settled_after: float | None = None  # seconds from the last fault to all terminal

    @property
    def ok(self) -> bool:
        return (self.not_terminal == self.duplicate_submissions == self.duplicate_products
                == self.lost_products == self.orphan_files == self.missing_files == 0
                and not self.failed and self.settled_after is not None
                and self.settled_after <= self.plan.settle_seconds)

    def lines(self) -> list[str]:
        failed = sum(self.failed.values())
        rows = [
            ("items attempted", f"{self.attempted:,}"),
            ("completed", f"{self.completed:,}"),
            ("failed", f"{failed}" + (" (" + "; ".join(
                f"{n} × {reason}" for reason, n in self.failed.most_common()) + ")"
                if failed else "")),
            ("not terminal", f"{self.not_terminal}"),
            ("submissions the providers accepted", f"{self.accepted_submissions:,}"),
            ("duplicate submissions (one input accepted twice)",
             f"{self.duplicate_submissions}"),
            ("duplicate products", f"{self.duplicate_products}"),
            ("lost products (a completed item short of outputs)", f"{self.lost_products}"),
            ("orphan files (stored, referenced by no row)", f"{self.orphan_files}"),
            ("missing files (a row without its file)", f"{self.missing_files}"),
            ("faults injected", ", ".join(f"{n} {k}" for k, n in sorted(self.faults.items()))),
            ("provider faults", ", ".join(
                f"{n} {k}" for k, n in sorted(self.provider_faults.items())) or "none"),
            ("fal webhooks delivered (answer: count)", ", ".join(
                f"{k}: {n}" for k, n in sorted(self.webhooks.items())) or "none"),
            ("processes started again", ", ".join(
                f"{k} {n}" for k, n in sorted(self.restarts.items())) or "none"),
            ("item events", ", ".join(
                f"{n} {k}" for k, n in sorted(self.events.items())) or "none"),
            ("whole run", f"{self.seconds:.0f} s"),
            ("last fault to all terminal",
             f"{self.settled_after:.0f} s (limit {self.plan.settle_seconds:.0f} s)"
             if self.settled_after is not None else "never"),
        ]
        return [f"| {name} | {value} |" for name, value in rows]

    def text(self) -> str:
        verdict = "passed" if self.ok else "FAILED"
        return "\n".join([f"soak {verdict}: {self.plan.describe()}", "",
                          "| measure | value |", "| --- | --- |", *self.lines()])


def run(plan: Plan, *, user: Any, env: dict[str, str], media_root: Path,
        redis: Any, logs: Path) -> Report:
    """Run the soak on the database Django is connected to; its report.

    ``redis`` is a PrivateRedis the soak may restart, which this process's
    queues already use; ``env`` is the processes' base environment
    (DATABASE_URL, MEDIA_ROOT and the rest).
    """
    from django.db import connection
    from django.test import override_settings

    from factory.localredis import free_port
    from factory.models import Provider

    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)  # the webhook sender's calls
    rng = random.Random(plan.seed)
    report = Report(plan)
    fal, replicate = make_fakes(plan, rng)
    sender = WebhookSender(fal, plan.duplicate_webhooks, rng)
    env = process_env(env, fal, replicate, redis.url, free_port())
    supervisor = Supervisor(env, logs)
    started = time.monotonic()
    try:
        Provider.objects.filter(slug__in=("fal", "replicate")).update(
            concurrency_limit=plan.slots)
        start_crew(supervisor)
        sender.start()
        with override_settings(FAL_KEY=fal.key, REPLICATE_API_TOKEN=replicate.token):
            orders = place_orders(plan, user)
        faults = schedule(plan, rng)
        report.last_fault_at = faults[-1][0] if faults else 0.0
        settled_at = None
        while True:
            now = time.monotonic() - started
            while faults and faults[0][0] <= now:
                _, kind = faults.pop(0)
                report.faults[inject(kind, supervisor, redis, rng, connection)] += 1
                if not faults:
                    report.last_fault_at = now
                    for fake in (fal, replicate):
                        fake.faults.stop()  # the last fault: from here on, calm
            supervisor.supervise()
            unfinished = _count_unfinished(orders)
            if not faults and unfinished == 0:
                settled_at = now
                break
            if not faults and now - report.last_fault_at > plan.settle_seconds + 60:
                break  # stuck: report what never finished
            time.sleep(0.5)
        report.seconds = time.monotonic() - started
        if settled_at is not None:
            report.settled_after = max(0.0, settled_at - report.last_fault_at)
    finally:
        sender.stop()
        supervisor.stop()
        for fake in (fal, replicate):
            fake.faults.stop()
    count(report, orders, fal, replicate, sender, supervisor, media_root)
    fal.stop()
    replicate.stop()
    if not report.ok:
        report_logs = logs / "report.txt"
        report_logs.write_text(report.text() + "\n" + stuck(orders))
    return report


def place_orders(plan: Plan, user: Any) -> list[int]:
    """Half the orders on fal's FLUX [dev], half on Replicate's FLUX schnell;
    every prompt differs, so every item's input is unique."""
    from factory.models import FactoryMachine, Order, SeedStrategy
    from factory.ordering import place_order

    machines = [FactoryMachine.objects.get(slug="fal-flux-dev"),
                FactoryMachine.objects.get(slug="replicate-flux-schnell")]
    base = [{"image_size": "square", "num_images": 1}, {"aspect_ratio": "1:1"}]
    runs = max(1, plan.items // plan.orders)
    placed = []
    for number in range(plan.orders):
        which = number % 2
        order = Order.objects.create(
            machine=machines[which], prompt=f"soak order {number}: a lighthouse in a storm",
            base_parameters=base[which], runs=runs, seed_strategy=SeedStrategy.INCREMENT,
            seed=1, created_by=user, title=f"soak {number}",
        )
        placed.append(place_order(order).pk)
    return placed


def schedule(plan: Plan, rng: random.Random) -> list[tuple[float, str]]:
    """When each fault falls, in order; every third kill waits for a submit."""
    low, high = plan.window
    kinds = [("kill-mid-submit" if n % 3 == 2 else "kill") for n in range(plan.kills)]
    kinds += [("redis-losing-data" if n % 2 == 0 else "redis-keeping-data")
              for n in range(plan.redis_restarts)]
    kinds += ["pg-terminate"] * plan.pg_terminations
    return sorted((rng.uniform(low, high), kind) for kind in kinds)


def inject(kind: str, supervisor: Supervisor, redis: Any, rng: random.Random,
           connection: Any) -> str:
    """Do one fault; what was done, as counted in the report."""
    if kind.startswith("kill"):
        names = list(KILLABLE)
        if kind == "kill-mid-submit":
            if not _wait_for_a_submit(connection):
                kind = "kill"  # nothing was being submitted for 5 s
            names = list(SUBMITTERS)
        name = rng.choice(names)
        supervisor.kill(name)
        return f"SIGKILL {'mid-submit ' if kind == 'kill-mid-submit' else ''}({name.split('-')[0]})"
    if kind == "redis-keeping-data":
        redis.shutdown()
        time.sleep(2)
        redis.start()
        return "Redis restart keeping its data"
    if kind == "redis-losing-data":
        redis.kill()
        for leftover in ("appendonlydir", "dump.rdb"):
            path = redis.directory / leftover
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(
                missing_ok=True)
        time.sleep(2)
        redis.start()
        return "Redis restart losing its data"
    if kind == "pg-terminate":
        import psycopg

        name = connection.settings_dict["NAME"]
        with psycopg.connect(dbname="postgres", user=connection.settings_dict["USER"]
                             or "postgres", host="127.0.0.1", autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = %s AND pid <> pg_backend_pid()", [name])
        connection.close()
        return "PostgreSQL backend termination (every connection)"
    raise ValueError(kind)


def _wait_for_a_submit(connection: Any) -> bool:
    from factory.models import ItemStatus, OrderItem

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if _retrying(connection, lambda: OrderItem.objects.filter(
                status=ItemStatus.SUBMITTING).exists()):
            return True
        time.sleep(0.02)
    return False


def _retrying(connection: Any, read: Any) -> Any:
    """``read()``, once more on a fresh connection if the first one died."""
    from django.db import DatabaseError

    try:
        return read()
    except DatabaseError:
        connection.close()
        return read()


def _count_unfinished(orders: list[int]) -> int:
    from django.db import connection

    from factory.models import OrderItem

    return _retrying(connection, lambda: OrderItem.objects.filter(
        order_id__in=orders).unfinished().count())


def count(report: Report, orders: list[int], fal: Any, replicate: Any,
          sender: WebhookSender, supervisor: Supervisor, media_root: Path) -> None:
    """Fill ``report`` from the fakes' ledgers, the database and the files."""
    from django.db import connection
    from django.db.models import Count

    from factory.models import ItemEvent, ItemStatus, OrderItem, Product

    connection.close()  # the soak's own connection may have been terminated
    items = OrderItem.objects.filter(order_id__in=orders)
    report.attempted = items.count()
    report.completed = items.filter(status=ItemStatus.COMPLETED).count()
    report.not_terminal = items.unfinished().count()
    for error in items.filter(status=ItemStatus.FAILED).values_list("last_error", flat=True):
        report.failed[error[:120]] += 1
    inputs = Counter(json.dumps(entry["input"], sort_keys=True)
                     for fake in (fal, replicate) for entry in fake.ledger)
    report.accepted_submissions = sum(inputs.values())
    report.duplicate_submissions = sum(n - 1 for n in inputs.values())
    # One output per item here (num_images 1, one file per FLUX schnell run).
    per_item = Counter(dict(items.filter(status=ItemStatus.COMPLETED).annotate(
        n=Count("products")).values_list("pk", "n")))
    report.duplicate_products = sum(max(0, n - 1) for n in per_item.values())
    report.lost_products = sum(1 for n in per_item.values() if n < 1)
    stored = stored_files(media_root)
    report.orphan_files = len(stored - named_files())
    used = set(Product.objects.filter(item__order_id__in=orders).values_list(
        "media__file", flat=True))
    report.missing_files = len(used - stored)
    report.events = Counter(dict(ItemEvent.objects.filter(item__order_id__in=orders)
                                 .order_by().values_list("kind").annotate(n=Count("pk"))))
    for fake in (fal, replicate):
        report.provider_faults.update({
            f"{'fal' if fake is fal else 'Replicate'} {k}": n
            for k, n in fake.faults.injected.items()})
    report.webhooks = sender.answers
    report.restarts = supervisor.restarts


def named_files() -> set[str]:
    """Every file and thumbnail a media row names."""
    from factory.models import MediaFile

    named = set()
    for file, thumbnail in MediaFile.objects.values_list("file", "thumbnail"):
        named.update(name for name in (file, thumbnail) if name)
    return named


def stored_files(media_root: Path) -> set[str]:
    """Every file under ``media_root``, relative to it."""
    return {str(p.relative_to(media_root)) for p in Path(media_root).rglob("*")
            if p.is_file()}


def stuck(orders: list[int]) -> str:
    from factory.models import OrderItem

    rows = OrderItem.objects.filter(order_id__in=orders).unfinished().values_list(
        "pk", "status", "lease_until", "due_at", "last_error")[:30]
    return "unfinished items:\n" + "\n".join(map(str, rows))


METHOD = [
    "The crew is the Procfile's: two `run_worker` workers, a collector (`run_worker",
    "--queues collect default`), two `run_foreman` and gunicorn (for the webhooks),",
    "on PostgreSQL and a Redis of the soak's own, with the shipped tick and poll",
    "interval and short leases (a sweep every 5 s). A kill picks one of the workers,",
    "the collector and the foremen at random; every third waits for an item in",
    "`submitting` and kills a worker then. A supervisor starts whatever exited a",
    "second later, as honcho or systemd would. The providers' 503s and hung submits",
    "stop with the last fault. Only fal's webhooks are sent: Replicate runs",
    "without them and its items are found by polling. Counted from outside: duplicate",
    "submissions are inputs a fake accepted more than once (every order's prompt",
    "differs, so every item's input is unique); lost products are completed items",
    "without their product; orphan files are files under MEDIA_ROOT that no media",
    "row names; missing files are products whose file is gone. The same soak at",
    "200 items (10 kills, one Redis restart losing its data, one termination) runs",
    "in `make test` (`tests/factory/production/test_soak.py`).",
]


def write_doc(report: Report, command: str) -> None:
    """Put the figures between the soak markers of docs/reliability.md."""
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    section = "\n".join([
        START, "## The soak (`make soak`)", "",
        f"Measured with `{command}` ({stamp}, {os.cpu_count()} cores): "
        f"{report.plan.describe()}. The run "
        f"{'passed' if report.ok else 'FAILED'}: it exits non-zero unless nothing "
        "is lost, stuck, duplicated or orphaned, no item failed, and every item was "
        f"terminal within {report.plan.settle_seconds:.0f} s of the last fault.", "",
        *METHOD, "", "| measure | value |", "| --- | --- |", *report.lines(), "", END])
    text = DOC.read_text(encoding="utf-8")
    if START in text:
        head, rest = text.split(START, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    DOC.write_text(text, encoding="utf-8")


# ---------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = Plan()
    parser.add_argument("--items", type=int, default=defaults.items)
    parser.add_argument("--orders", type=int, default=defaults.orders)
    parser.add_argument("--kills", type=int, default=defaults.kills)
    parser.add_argument("--redis-restarts", type=int, default=defaults.redis_restarts)
    parser.add_argument("--pg-terminations", type=int, default=defaults.pg_terminations)
    parser.add_argument("--latency", type=float, nargs=2, default=defaults.latency)
    parser.add_argument("--slots", type=int, default=defaults.slots)
    parser.add_argument("--window", type=float, nargs=2, default=defaults.window)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--write-doc", action="store_true",
                        help="put the figures in docs/reliability.md")
    args = parser.parse_args(argv)
    plan = Plan(items=args.items, orders=args.orders, kills=args.kills,
                redis_restarts=args.redis_restarts, pg_terminations=args.pg_terminations,
                latency=tuple(args.latency), slots=args.slots, window=tuple(args.window),
                seed=args.seed)

    sys.path.insert(0, str(ROOT))
    from bench.own_database import fresh_database

    work = ROOT / "var" / "soak"
    shutil.rmtree(work, ignore_errors=True)
    media = work / "media"
    media.mkdir(parents=True)
    database = fresh_database(os.environ.get("SOAK_DB_NAME", "artfactory_soak"))
    os.environ.update(DATABASE_URL=database, MEDIA_ROOT=str(media),
                      DJANGO_SETTINGS_MODULE="artfactory.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from tests.factory.production.plant import PrivateRedis, use_redis

    redis = PrivateRedis(work / "redis", appendonly=True).start()
    use_redis(settings, redis.url)
    try:
        call_command("migrate", verbosity=0)
        call_command("load_seed_data", verbosity=0)
        user = get_user_model().objects.create_superuser("soak", password=None)
        base = {**os.environ, "DATABASE_URL": database, "MEDIA_ROOT": str(media)}
        report = run(plan, user=user, env=base, media_root=media, redis=redis,
                     logs=work / "logs")
    finally:
        redis.kill()
    print(report.text())
    if args.write_doc:
        command = "make soak" if argv is None and len(sys.argv) <= 2 else (
            "python -m tests.soak " + " ".join(sys.argv[1:]))
        write_doc(report, command)
    if not report.ok:
        print(f"logs and the unfinished items: {work / 'logs'}", file=sys.stderr)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""`make bench-scale`: production at ten times the P1 scale, on the fal fake.

P1 at 10x: 10,000 FLUX dev items on the fal fake (tests/fakes/fal.py),
each generation taking 5 s, with 1,000 slots (a provider bound of 50 s),
through the Procfile's processes: gunicorn for the webhooks, two
`run_worker`, a collector and a foreman, on PostgreSQL and a Redis of the
run's own. Twice: with webhooks delivered end to end (the fake signs fal's
ED25519 call and POSTs it to the mounted `/hooks/fal/` when a generation
ends) and by polling alone (no WEBHOOK_BASE_URL). Plus the 1,000-item run
with 100 slots and webhooks. Each run reports the wall time against the
bound, the provider's status calls per item, the CPU-seconds of every
process of ours per item (the fake, which runs in this process, is left
out), and the resident memory of the workers and the foreman sampled
every second.

    make bench-scale                              # all three, into docs/benchmarks.md
    .venv/bin/python bench/scale.py --only webhooks-1k
"""
import argparse
import heapq
import math
import os
import shutil
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.own_database import fresh_database, write_section  # noqa: E402

START, END = "<!-- scale:start -->", "<!-- scale:end -->"
ORDER_SIZE = 1000  # items per order: a studio's sweep of a thousand prompts


@dataclass(frozen=True)
class Scale:
    """One run: how many items, how many slots, webhooks or polling."""

    name: str
    items: int
    slots: int
    webhooks: bool
    latency: float = 5.0
    target: str = ""

    @property
    def bound(self) -> float:
        """The provider's own bound: waves of ``slots`` generations."""
        return math.ceil(self.items / self.slots) * self.latency

    def describe(self) -> str:
        how = "webhooks" if self.webhooks else "polling only"
        return (f"{self.items:,} items, {self.latency:g} s each, {self.slots:,} slots, "
                f"{how}")


RUNS = {
    "webhooks-1k": Scale("webhooks-1k", 1000, 100, True, target="≤ 1.05"),
    "webhooks-10k": Scale("webhooks-10k", 10000, 1000, True, target="≤ 1.10"),
    "polling-10k": Scale("polling-10k", 10000, 1000, False),
}


# ---------------------------------------------------------------- the fake
def scale_fal(latency: float, senders: int, host: str = "127.0.0.1") -> Any:
    """A fal fake whose generations take ``latency`` seconds and which, for
    a submit that named ``fal_webhook``, POSTs the signed call as it ends."""
    import httpx

    from tests.fakes.fal import FakeFal

    class ScaleFal(FakeFal):
        def __init__(self) -> None:
            super().__init__(key="scale-fal-key")
            self.max_side = 64  # P1's image size
            self.due: list[tuple[float, str]] = []
            self.due_ready = threading.Condition()
            self.answers: Counter = Counter()
            self.delays: list[float] = []
            self.stopping = threading.Event()
            self.client = httpx.Client(timeout=30, limits=httpx.Limits(
                max_connections=senders, max_keepalive_connections=senders))

        def _submit(self, request, match):
            answer = super()._submit(request, match)
            if answer.status == 200:
                job = self.jobs[answer.body["request_id"]]
                if job.webhook:
                    with self.due_ready:
                        heapq.heappush(self.due, (job.sent_at + latency, job.request_id))
                        self.due_ready.notify()
            return answer

        def _stage(self, job):
            ran = time.time() - job.sent_at
            if job.cancelled or ran >= latency:
                if job.ended_at is None:
                    job.ended_at = time.time()
                return "COMPLETED"
            return "IN_QUEUE" if ran < latency * 0.1 else "IN_PROGRESS"

        def send(self) -> None:
            """One sender thread: deliver each webhook when its job ends."""
            while not self.stopping.is_set():
                with self.due_ready:
                    while not self.due and not self.stopping.is_set():
                        self.due_ready.wait(0.5)
                    if self.stopping.is_set():
                        return
                    when, request_id = self.due[0]
                    wait = when - time.time()
                    if wait > 0:
                        self.due_ready.wait(min(wait, 0.5))
                        continue
                    heapq.heappop(self.due)
                url, body, headers = self.webhook_call(request_id)
                try:
                    code = str(self.client.post(url, content=body, headers=headers)
                               .status_code)
                except httpx.HTTPError as exc:
                    code = type(exc).__name__
                with self.lock:
                    self.answers[code] += 1
                    self.delays.append(time.time() - when)

        def running(self) -> int:
            """Generations under way right now."""
            now = time.time()
            with self.lock:
                jobs = list(self.jobs.values())
            return sum(1 for job in jobs if job.sent_at <= now < job.sent_at + latency)

        def status_calls(self) -> int:
            return sum(1 for r in self.requests if r.path.endswith("/status"))

        def halt(self) -> None:
            self.stopping.set()
            with self.due_ready:
                self.due_ready.notify_all()
            self.client.close()
            self.stop()

    fal = ScaleFal()
    fal.host = host
    fal.start()
    for _ in range(senders):
        threading.Thread(target=fal.send, daemon=True).start()
    return fal


# ---------------------------------------------------------------- processes
def crew_env(base: dict[str, str], fal: Any, redis_url: str, web_port: int,
             webhooks: bool) -> dict[str, str]:
    """The shipped settings, pointed at the fake and this run's stores."""
    host = fal.url.removeprefix("http://")
    env = {
        **base,
        "REDIS_URL": redis_url,
        "FAL_KEY": fal.key, "FAL_QUEUE_URL": fal.url + "/", "FAL_API_URL": fal.url,
        "FAL_WEBHOOK_JWKS_URL": fal.url + "/.well-known/jwks.json",
        "DOWNLOAD_ALLOW_HTTP": "true", "DOWNLOAD_ALLOWED_PRIVATE_HOSTS": host,
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
        "PYTHONPATH": str(ROOT),
        "STATIC_MANIFEST": "0", "WEB_BIND": f"127.0.0.1:{web_port}",
    }
    env.pop("WEBHOOK_BASE_URL", None)
    if webhooks:
        env["WEBHOOK_BASE_URL"] = f"http://127.0.0.1:{web_port}"
    return env


def start_crew(supervisor: Any) -> None:
    """The Procfile with `make run`'s formation: web, two workers, a
    collector and a foreman."""
    from tests.soak import manage

    supervisor.start("web", [sys.executable, "-m", "gunicorn", "--config",
                             str(ROOT / "artfactory" / "gunicorn.conf.py")])
    for name in ("worker-1", "worker-2"):
        supervisor.start(name, manage("run_worker"))
    supervisor.start("collector", manage("run_worker", "--queues", "collect", "default"))
    supervisor.start("foreman", manage("run_foreman"))


def role(name: str) -> str:
    return name.split("-")[0]


class Meter:
    """CPU-seconds and resident memory of the crew's processes (gunicorn's
    forked workers included), by role."""

    def __init__(self, supervisor: Any) -> None:
        self.supervisor = supervisor
        self.memory: dict[str, list[int]] = {}
        self.stopping = threading.Event()

    def _tree(self, name: str) -> list[Any]:
        import psutil

        try:
            top = psutil.Process(self.supervisor.running[name].pid)
            return [top, *top.children(recursive=True)]
        except psutil.Error:
            return []

    def cpu(self) -> dict[str, float]:
        """``cpu_by_name`` summed by role (worker, collector, foreman, web)."""
        totals: Counter = Counter()
        for name, seconds in self.cpu_by_name().items():
            totals[role(name)] += seconds
        return dict(totals)

    def cpu_by_name(self) -> dict[str, float]:
        """User and system CPU-seconds so far of each supervised process."""
        import psutil

        totals: dict[str, float] = {}
        for name in self.supervisor.running:
            for process in self._tree(name):
                try:
                    times = process.cpu_times()
                except psutil.Error:
                    continue
                totals[name] = totals.get(name, 0.0) + times.user + times.system
        return totals

    def sample(self, every: float = 1.0) -> None:
        import psutil

        def loop() -> None:
            while not self.stopping.wait(every):
                for name, process in list(self.supervisor.running.items()):
                    if name == "web":
                        continue
                    try:
                        rss = psutil.Process(process.pid).memory_info().rss
                    except psutil.Error:
                        continue
                    self.memory.setdefault(name, []).append(rss)
        threading.Thread(target=loop, daemon=True).start()

    def stop(self) -> None:
        self.stopping.set()


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else 0.0


def rise_mb(samples: list[int]) -> float:
    """Median of the last tenth of samples minus that of the first, in MB."""
    tenth = max(1, len(samples) // 10)
    return (_median(samples[-tenth:]) - _median(samples[:tenth])) / 2**20


class Occupancy(threading.Thread):
    """Every half second: slots taken (Redis), generations running at the
    fake, and items by status; summarised over the run's middle."""

    def __init__(self, fal: Any) -> None:
        super().__init__(daemon=True)
        self.fal, self.samples = fal, []
        self.stopping = threading.Event()

    def run(self) -> None:
        from django.db import connection
        from django.db.models import Count

        from factory.models import OrderItem
        from factory.production import limits

        while not self.stopping.wait(0.5):
            slots = sum(used for key, used, _ in limits.usage() if key == "provider:fal")
            statuses = dict(OrderItem.objects.order_by().values_list("status").annotate(
                n=Count("pk")))
            self.samples.append((slots, self.fal.running(), statuses))
        connection.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)

    def summary(self, limit: int) -> dict[str, float]:
        middle = self.samples[len(self.samples) // 10: -max(1, len(self.samples) // 5)]
        if not middle:
            return {}
        def mean(values: list[float]) -> float:
            return sum(values) / len(values)
        out = {"slots taken": mean([s for s, _, _ in middle]),
               "generating": mean([g for _, g, _ in middle])}
        for status in ("submitting", "submitted", "collecting", "pending"):
            out[status] = mean([st.get(status, 0) for _, _, st in middle])
        return out


# ---------------------------------------------------------------- profile
BUCKETS = (  # first match on the innermost frame's file
    ("PIL", "media: Pillow (decode, thumbnails, encode)"),
    ("factory/media", "media: our code (probe, embed, hash, store)"),
    ("psycopg", "database driver (psycopg)"),
    ("django/db", "Django ORM (building queries, rows to objects)"),
    ("redis/", "Redis client"),
    ("httpx", "HTTP client (httpx, httpcore, h11, ssl)"),
    ("httpcore", "HTTP client (httpx, httpcore, h11, ssl)"),
    ("h11", "HTTP client (httpx, httpcore, h11, ssl)"),
    ("ssl", "HTTP client (httpx, httpcore, h11, ssl)"),
)
RQ_OUTSIDE = "RQ's own work around each job (dequeue, heartbeat, registries)"
OTHER = "the rest (our logic, Django outside the ORM, json, logging, stdlib)"


class Profile:
    """py-spy, sampling only threads that hold the GIL (CPU, not waits),
    on some of the crew's processes for a while mid-run; the samples by
    where the innermost frame is."""

    def __init__(self, supervisor: Any, names: tuple[str, ...], after: float,
                 seconds: float, out: Path) -> None:
        self.supervisor, self.names = supervisor, names
        self.after, self.seconds, self.out = after, seconds, out
        self.thread = threading.Thread(target=self._record, daemon=True)
        self.files: list[Path] = []

    @staticmethod
    def available() -> str | None:
        import shutil as which

        found = Path(sys.executable).with_name("py-spy")
        return str(found) if found.exists() else which.which("py-spy")

    def start(self) -> None:
        if self.available():
            self.thread.start()

    def _record(self) -> None:
        import subprocess

        time.sleep(self.after)
        spies = []
        for name in self.names:
            path = self.out / f"{name}.txt"
            pid = self.supervisor.running[name].pid
            spies.append(subprocess.Popen(
                [self.available(), "record", "--gil", "--nonblocking", "-f", "raw",
                 "-d", str(int(self.seconds)), "-p", str(pid), "-o", str(path)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            self.files.append(path)
        for spy in spies:
            spy.wait(timeout=self.seconds + 60)

    def shares(self) -> dict[str, float]:
        self.thread.join(timeout=self.after + self.seconds + 90)
        counts: Counter = Counter()
        for path in self.files:
            if not path.exists():
                continue
            for line in path.read_text().splitlines():
                stack, _, number = line.rpartition(" ")
                if stack and number.isdigit():
                    counts[self.bucket(stack.split(";"))] += int(number)
        total = sum(counts.values())
        return {k: 100 * n / total for k, n in counts.most_common()} if total else {}

    @staticmethod
    def bucket(frames: list[str]) -> str:
        if not any(frame.startswith("Job._execute ") for frame in frames):
            return RQ_OUTSIDE
        leaf = frames[-1]
        where = leaf[leaf.find("(") + 1:] if "(" in leaf else leaf
        for key, name in BUCKETS:
            if key in where:
                return name
        return OTHER


# ---------------------------------------------------------------- one run
@dataclass
class Result:
    scale: Scale
    seconds: float = 0.0
    completed: int = 0
    status_calls: int = 0
    submissions: int = 0
    webhooks: Counter = field(default_factory=Counter)
    webhook_delay: float = 0.0  # median seconds from a job's end to its POST
    cpu: dict[str, float] = field(default_factory=dict)
    memory: dict[str, list[int]] = field(default_factory=dict)
    restarts: int = 0
    occupancy: dict[str, float] = field(default_factory=dict)
    fake_cpu: float = 0.0  # this process: the fake, placing, the sampling
    profile: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.seconds / self.scale.bound

    def rows(self) -> list[dict[str, Any]]:
        s, items = self.scale, self.scale.items
        label = f"{s.items:,} items, {s.slots:,} slots, " + (
            "webhooks" if s.webhooks else "polling only")
        rows = [
            {"name": f"{label}: wall time ({s.latency:g} s each)", "value": self.seconds,
             "unit": "s"},
            {"name": f"{label}: ratio wall ÷ provider bound ({s.bound:.0f} s)",
             "value": self.ratio, "unit": "×", "target": s.target},
            {"name": f"{label}: status calls per item",
             "value": self.status_calls / items, "unit": ""},
            {"name": f"{label}: CPU of our processes per item",
             "value": sum(self.cpu.values()) / items * 1000, "unit": "ms"},
        ]
        rows += [{"name": f"{label}: of which {name}, per item",
                  "value": seconds / items * 1000, "unit": "ms"}
                 for name, seconds in sorted(self.cpu.items())]
        rows.append({"name": f"{label}: CPU of the fake provider (not counted above), "
                             "per item", "value": self.fake_cpu / items * 1000,
                     "unit": "ms"})
        total = (sum(self.cpu.values()) + self.fake_cpu) / items
        rows.append({"name": f"{label}: throughput", "value": self.completed / self.seconds,
                     "unit": "items/s"})
        rows.append({"name": f"{label}: rate the provider bound asks for",
                     "value": items / s.bound, "unit": "items/s"})
        rows.append({"name": f"{label}: CPU ceiling here ({os.cpu_count()} cores ÷ CPU per "
                             "item, ours and the fake's)",
                     "value": (os.cpu_count() or 1) / total if total else 0.0,
                     "unit": "items/s"})
        workers = {k: v for k, v in self.memory.items() if k != "foreman"}
        if workers:
            worst = max(workers, key=lambda k: rise_mb(workers[k]))
            rows.append({"name": f"{label}: worker resident memory, rise over the run "
                                 f"(largest, {worst})",
                         "value": rise_mb(workers[worst]), "unit": "MB"})
            rows.append({"name": f"{label}: worker resident memory, peak",
                         "value": max(max(v) for v in workers.values()) / 2**20,
                         "unit": "MB"})
        if self.memory.get("foreman"):
            rows.append({"name": f"{label}: foreman resident memory, peak",
                         "value": max(self.memory["foreman"]) / 2**20, "unit": "MB"})
        return rows


def place(scale: Scale, user: Any) -> list[int]:
    """Orders of ORDER_SIZE items on fal's FLUX [dev], every prompt unique."""
    from factory.models import FactoryMachine, Order, SeedStrategy
    from factory.ordering import place_order

    machine = FactoryMachine.objects.get(slug="fal-flux-dev")
    placed = []
    for number in range(math.ceil(scale.items / ORDER_SIZE)):
        runs = min(ORDER_SIZE, scale.items - number * ORDER_SIZE)
        order = Order.objects.create(
            machine=machine, prompt=f"scale order {number}: a kite over dunes",
            base_parameters={"image_size": "square", "num_images": 1}, runs=runs,
            item_ceiling=ORDER_SIZE, seed_strategy=SeedStrategy.INCREMENT, seed=1,
            created_by=user, title=f"scale {number}",
        )
        placed.append(place_order(order).pk)
    return placed


def run(scale: Scale, *, user: Any, base_env: dict[str, str], redis: Any,
        logs: Path, timeout: float, profile: bool = False) -> Result:
    from django.test import override_settings

    from factory.localredis import free_port
    from factory.models import ItemStatus, OrderItem, Provider
    from tests.soak import Supervisor

    redis.client().flushall()
    fal = scale_fal(scale.latency, senders=8)
    web_port = free_port()
    supervisor = Supervisor(crew_env(base_env, fal, redis.url, web_port, scale.webhooks),
                            logs / scale.name)
    result = Result(scale)
    meter = Meter(supervisor)
    try:
        Provider.objects.filter(slug="fal").update(concurrency_limit=scale.slots)
        start_crew(supervisor)
        _wait_for_web(web_port)
        time.sleep(3)  # the workers and the foreman have loaded Django
        before = meter.cpu()
        meter.sample()
        occupancy = Occupancy(fal)
        occupancy.start()
        spy = Profile(supervisor, ("worker-1", "collector"), after=15, seconds=30,
                      out=logs / scale.name)
        if profile:
            spy.start()
        start, own = time.perf_counter(), time.process_time()
        with override_settings(FAL_KEY=fal.key):
            orders = place(scale, user)
        items = OrderItem.objects.filter(order_id__in=orders)
        deadline = start + timeout
        while items.unfinished().exists():
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{scale.name}: unfinished after {timeout:.0f} s; "
                                   f"logs in {logs / scale.name}")
            supervisor.supervise()
            time.sleep(0.2)
        result.seconds = time.perf_counter() - start
        result.fake_cpu = time.process_time() - own
        occupancy.stop()
        result.occupancy = occupancy.summary(scale.slots)
        after = meter.cpu()
        meter.stop()
        result.cpu = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
        result.memory = meter.memory
        result.completed = items.filter(status=ItemStatus.COMPLETED).count()
        result.restarts = sum(supervisor.restarts.values())
        if profile:
            result.profile = spy.shares()
    finally:
        meter.stop()
        supervisor.stop()
        fal.halt()
    result.status_calls = fal.status_calls()
    result.submissions = len(fal.ledger)
    result.webhooks = fal.answers
    result.webhook_delay = _median(fal.delays)
    if result.completed != scale.items:
        raise RuntimeError(f"{scale.name}: {result.completed} of {scale.items} completed")
    return result


def _wait_for_web(port: int, timeout: float = 60) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer on port {port}")


# ---------------------------------------------------------------- the doc
METHOD = """\
Each run places its items as orders of 1,000 on fal's FLUX [dev] (every
prompt differs), on a fresh PostgreSQL database and a Redis of the run's
own, and times from the first `place_order` until every item is completed.
The crew is the Procfile in `make run`'s formation, with the shipped
settings (foreman tick 1 s, batch 100, polls paced from a 2 s base, a 15 s
fallback while webhooks are on; docs/operations.md *Poll pacing*): gunicorn (8
processes, answering the webhooks), two `run_worker`, a collector and one
foreman, all started before the clock. The fal fake runs in the
benchmark's process on the same two cores: its generations take 5 s and
nothing limits them but our slots; with webhooks, eight sender threads
POST fal's ED25519-signed call to `/hooks/fal/` the moment each ends. The
CPU counted is every process of ours (gunicorn's workers included, the
fake and the benchmark excluded); resident memory is sampled each second
per process, the rise being the median of the last tenth of the samples
minus that of the first."""


READING = """\
How to read them: each run reports the rate the provider's bound asks for
(items ÷ bound) beside the CPU ceiling of this machine (its cores ÷ the
CPU-seconds an item costs our processes and the fake together). Where the
ceiling is below the asked rate, the run is bound by this machine's CPU,
not by the provider, and its ratio to the bound says how far; the mid-run
means then show generations finished early and items waiting in
`collecting`. Meeting a ratio of 1.10 at 200 items/s on two cores would
need about 10 ms of CPU per item for the whole pipeline and the fake."""


def write_doc(results: list[Result], command: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [START, "## Production at scale (`make bench-scale`)", "",
             f"Written by `{command}` ({stamp}, {os.cpu_count()} cores).", "",
             METHOD, "", READING, "", "| benchmark | result | target |", "|---|---|---|"]
    for result in results:
        for row in result.rows():
            unit = row["unit"]
            value = f"{row['value']:.2f}×" if unit == "×" else f"{row['value']:.2f} {unit}"
            lines.append(f"| {row['name']} | {value.strip()} | {row.get('target', '')} |")
    lines += ["", *_findings(results), ""]
    profiled = [r for r in results if r.profile]
    if profiled:
        first = profiled[0]
        lines += [
            f"Where our CPU goes, sampled in the {first.scale.describe()} run: "
            "`py-spy record --gil` (only threads holding the GIL, so CPU and not "
            "waits) on a worker and the collector for 30 s mid-run, samples by the "
            "innermost frame:", "", "| where | share of samples |", "|---|---|",
            *(f"| {name} | {share:.0f} % |" for name, share in first.profile.items()),
            ""]
    lines += [END, ""]
    write_section(START, END, "\n".join(lines))


def _findings(results: list[Result]) -> list[str]:
    out = []
    for result in results:
        s = result.scale
        hooks = ", ".join(f"{n} × {code}" for code, n in sorted(result.webhooks.items()))
        out.append(
            f"- {s.describe()}: {result.completed:,} completed in {result.seconds:.0f} s "
            f"({result.completed / result.seconds:.0f} items/s), "
            f"{result.submissions:,} submissions accepted, "
            + (f"webhooks {hooks} (median {result.webhook_delay * 1000:.0f} ms after "
               "the end), " if s.webhooks else "")
            + f"{result.status_calls:,} status calls, {result.restarts} restarts; "
            + "mid-run means: " + ", ".join(
                f"{k} {v:.0f}" for k, v in result.occupancy.items()) + ".")
    return out


# ---------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=sorted(RUNS),
                        help="run only these (default: all)")
    parser.add_argument("--items", type=int, help="override the item count")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--write-doc", action="store_true")
    args = parser.parse_args(argv)
    scales = [RUNS[name] for name in (args.only or RUNS)]
    if args.items:
        scales = [Scale(s.name, args.items, s.slots, s.webhooks, s.latency, s.target)
                  for s in scales]

    work = ROOT / "var" / "scale"
    shutil.rmtree(work, ignore_errors=True)
    media = work / "media"
    media.mkdir(parents=True)
    database = fresh_database(os.environ.get("SCALE_DB_NAME", "artfactory_scale"))
    os.environ.update(DATABASE_URL=database, MEDIA_ROOT=str(media),
                      DJANGO_SETTINGS_MODULE="artfactory.settings")
    import logging

    import django

    django.setup()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from tests.factory.production.plant import PrivateRedis, use_redis

    redis = PrivateRedis(work / "redis").start()
    use_redis(settings, redis.url)
    results = []
    try:
        call_command("migrate", verbosity=0)
        call_command("load_seed_data", verbosity=0)
        user = get_user_model().objects.create_superuser("scale", password=None)
        base = {**os.environ, "DATABASE_URL": database, "MEDIA_ROOT": str(media)}
        for number, scale in enumerate(scales):
            result = run(scale, user=user, base_env=base, redis=redis,
                         logs=work / "logs", timeout=args.timeout, profile=number == 0)
            results.append(result)
            for row in result.rows():
                print(f"{row['name']}: {row['value']:.2f} {row['unit']} "
                      f"{row.get('target', '')}".rstrip(), flush=True)
            print(_findings([result])[0], flush=True)
    finally:
        redis.kill()
    if args.write_doc:
        command = "make bench-scale" if argv is None and len(sys.argv) <= 2 else (
            "python bench/scale.py " + " ".join(sys.argv[1:]))
        write_doc(results, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`make bench-hosts`: production across two hosts sharing one database and Redis.

Two network namespaces on this machine stand for two hosts: each has its
own network stack and hostname, reaches the shared side over a veth pair
on a bridge (10.77.0.0/24, never routed off the machine), and runs the
Procfile's workers (two `run_worker` and a collector) and a foreman, pinned
to a core of its own. The shared side, at 10.77.0.1, holds PostgreSQL
(relayed there by socat from its loopback port), a Redis of the run's own,
gunicorn answering the webhooks and the fal fake.

The same 2,000 FLUX [dev] items run first on host A alone, then on hosts A
and B together, with a provider that is not the limit (0.5 s generations,
2,000 slots). Each run counts, from the fake's ledger and request log, the
database and the media directory: submissions per input, result reads per
request, products per item, files stored once, and the work each host did.

Needs root (`ip netns`, a bridge) and socat.

    make bench-hosts
"""
import argparse
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.own_database import fresh_database, write_section  # noqa: E402
from bench.scale import Meter, Scale, crew_env, place, scale_fal  # noqa: E402

START, END = "<!-- hosts:start -->", "<!-- hosts:end -->"
BRIDGE, SUBNET = "afbr0", "10.77.0"
SHARED = f"{SUBNET}.1"
HOSTS = {"host-a": (f"{SUBNET}.2", 0), "host-b": (f"{SUBNET}.3", 1)}  # address, core
PG_RELAY_PORT = 15432


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, text=True)


class Network:
    """The bridge, one namespace per host with a veth to it, and socat
    relaying PostgreSQL from the shared address to its loopback port."""

    def __init__(self, pg_port: int = 5432) -> None:
        self.pg_port = pg_port
        self.relay: subprocess.Popen | None = None

    def __enter__(self) -> "Network":
        self.down()  # what an interrupted run left
        sh("ip", "link", "add", BRIDGE, "type", "bridge")
        sh("ip", "addr", "add", f"{SHARED}/24", "dev", BRIDGE)
        sh("ip", "link", "set", BRIDGE, "up")
        for number, (name, (address, _)) in enumerate(HOSTS.items()):
            veth = f"afveth{number}"
            sh("ip", "netns", "add", f"af-{name}")
            sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0",
               "netns", f"af-{name}")
            sh("ip", "link", "set", veth, "master", BRIDGE, "up")
            sh("ip", "-n", f"af-{name}", "addr", "add", f"{address}/24", "dev", "eth0")
            sh("ip", "-n", f"af-{name}", "link", "set", "eth0", "up")
            sh("ip", "-n", f"af-{name}", "link", "set", "lo", "up")
        self.relay = subprocess.Popen(
            ["socat", f"TCP-LISTEN:{PG_RELAY_PORT},bind={SHARED},fork,reuseaddr",
             f"TCP:127.0.0.1:{self.pg_port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.relay is not None:
            self.relay.terminate()
            self.relay.wait(timeout=10)
        self.down()

    @staticmethod
    def down() -> None:
        for name in HOSTS:
            subprocess.run(["ip", "netns", "del", f"af-{name}"], capture_output=True)
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)


def on_host(name: str, command: list[str]) -> list[str]:
    """``command`` inside the host's namespace, under its own hostname,
    pinned to its core."""
    _, core = HOSTS[name]
    return ["ip", "netns", "exec", f"af-{name}", "unshare", "--uts", "sh", "-c",
            'hostname "$0" && exec "$@"', name, "taskset", "-c", str(core), *command]


def start_host(supervisor: Any, name: str) -> None:
    from tests.soak import manage

    for worker in ("worker-1", "worker-2"):
        supervisor.start(f"{name}-{worker}", on_host(name, manage("run_worker")))
    supervisor.start(f"{name}-collector", on_host(
        name, manage("run_worker", "--queues", "collect", "default")))
    supervisor.start(f"{name}-foreman", on_host(name, manage("run_foreman")))


@dataclass
class Run:
    hosts: list[str]
    items: int
    seconds: float = 0.0
    completed: int = 0
    duplicate_submissions: int = 0
    results_read_twice: int = 0
    products_per_item: Counter = field(default_factory=Counter)
    media_rows: int = 0
    orphan_files: int = 0
    submissions_by_host: Counter = field(default_factory=Counter)
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0

    @property
    def clean(self) -> bool:
        return (self.completed == self.items and self.duplicate_submissions == 0
                and self.results_read_twice == 0
                and set(self.products_per_item) == {1}
                and self.media_rows == self.items and self.orphan_files == 0)


ADDRESS_HOST = {address: name for name, (address, _) in HOSTS.items()}


def run(hosts: list[str], scale: Scale, *, user: Any, base_env: dict[str, str],
        redis: Any, media: Path, logs: Path) -> Run:
    import json

    from django.db.models import Count
    from django.test import override_settings

    from factory.localredis import free_port
    from factory.models import ItemStatus, MediaFile, OrderItem, Product, Provider
    from tests.soak import Supervisor, named_files, stored_files

    redis.client().flushall()
    fal = scale_fal(scale.latency, senders=8, host=SHARED)
    web_port = free_port()
    env = crew_env(base_env, fal, redis.url, web_port, webhooks=True)
    env["WEB_BIND"] = f"{SHARED}:{web_port}"
    env["WEBHOOK_BASE_URL"] = f"http://{SHARED}:{web_port}"
    env["NO_PROXY"] = env["no_proxy"] = f"127.0.0.1,localhost,{SHARED}"
    supervisor = Supervisor(env, logs / "+".join(hosts))
    meter = Meter(supervisor)
    result = Run(hosts, scale.items)
    try:
        Provider.objects.filter(slug="fal").update(concurrency_limit=scale.slots)
        supervisor.start("web", [sys.executable, "-m", "gunicorn", "--config",
                                 str(ROOT / "artfactory" / "gunicorn.conf.py")])
        for name in hosts:
            start_host(supervisor, name)
        _wait_for_workers(redis, 3 * len(hosts))
        before = meter.cpu_by_name()
        start = time.perf_counter()
        with override_settings(FAL_KEY=fal.key):
            orders = place(scale, user)
        items = OrderItem.objects.filter(order_id__in=orders)
        deadline = start + 1800
        while items.unfinished().exists():
            if time.perf_counter() > deadline:
                raise RuntimeError(f"unfinished after 1800 s; logs in {logs}")
            supervisor.supervise()
            time.sleep(0.2)
        result.seconds = time.perf_counter() - start
        after = meter.cpu_by_name()
        result.cpu = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
        result.completed = items.filter(status=ItemStatus.COMPLETED).count()
    finally:
        supervisor.stop()
        fal.halt()
    inputs = Counter(json.dumps(entry["input"], sort_keys=True) for entry in fal.ledger)
    result.duplicate_submissions = sum(n - 1 for n in inputs.values())
    reads = Counter(r.path for r in fal.requests
                    if r.method == "GET" and "/requests/" in r.path
                    and not r.path.endswith("/status"))
    result.results_read_twice = sum(1 for n in reads.values() if n > 1)
    result.submissions_by_host = Counter(
        ADDRESS_HOST.get(r.client, r.client) for r in fal.requests if r.method == "POST")
    per_item = dict(Product.objects.filter(item__order_id__in=orders).order_by()
                    .values_list("item_id").annotate(n=Count("pk")))
    result.products_per_item = Counter(per_item.get(pk, 0) for pk in
                                       items.values_list("pk", flat=True))
    media_ids = Product.objects.filter(item__order_id__in=orders).values("media_id")
    result.media_rows = MediaFile.objects.filter(pk__in=media_ids).count()
    result.orphan_files = len(stored_files(media) - named_files())
    return result


def _wait_for_workers(redis: Any, count: int, timeout: float = 90) -> None:
    """Until ``count`` RQ workers have registered (Django loaded, Redis
    reached across the bridge), and a moment for the foremen."""
    from rq import Worker

    deadline = time.monotonic() + timeout
    while Worker.count(connection=redis.client()) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"fewer than {count} workers registered in {timeout:.0f} s")
        time.sleep(0.3)
    time.sleep(2)


def _cpu_by_host(run: Run) -> dict[str, float]:
    totals: Counter = Counter()
    for name, seconds in run.cpu.items():
        totals[name.split("-worker")[0].split("-collector")[0].split("-foreman")[0]] += seconds
    return dict(totals)


def lines(one: Run, two: Run) -> list[str]:
    ratio = two.throughput / one.throughput if one.throughput else 0.0
    rows = []
    for run in (one, two):
        label = " + ".join(run.hosts)
        cpu = ", ".join(f"{k} {v / run.items * 1000:.1f} ms"
                        for k, v in sorted(_cpu_by_host(run).items()))
        rows.append(
            f"| {label} | {run.completed:,} of {run.items:,} in {run.seconds:.1f} s "
            f"({run.throughput:.1f} items/s) | {run.duplicate_submissions} | "
            f"{run.results_read_twice} | "
            + ", ".join(f"{n:,} × {k}" for k, n in sorted(run.products_per_item.items()))
            + f" | {run.media_rows:,} rows, {run.orphan_files} orphans | "
            + ", ".join(f"{k} {n:,}" for k, n in sorted(run.submissions_by_host.items()))
            + f" | {cpu} |")
    def hosts_cpu(run: Run) -> float:
        return sum(v for k, v in _cpu_by_host(run).items() if k in HOSTS) / run.items * 1000

    return [
        "| hosts | completed | duplicate submissions | results read twice | "
        "products per item | media files | submits by host | CPU per item (by host) |",
        "|---|---|---|---|---|---|---|---|", *rows, "",
        f"Throughput of two hosts ÷ one host: **{ratio:.2f}×** (target: within 10 % "
        "of 2×, i.e. ≥ 1.80×).",
        "",
        f"The hosts spent {hosts_cpu(one):.1f} ms of CPU per item alone and "
        f"{hosts_cpu(two):.1f} ms together: a second host adds no work per item. "
        "What is missing from 2× is the shared side (the fal fake, PostgreSQL, "
        "Redis, gunicorn), which here runs on the same two cores the hosts are "
        "pinned to; on separate machines it would not take the hosts' cores.",
    ]


METHOD = """\
Hosts A and B are network namespaces made by the benchmark (`ip netns`,
a veth pair each on the bridge `afbr0`, 10.77.0.0/24), each with its own
hostname (`unshare --uts`) and pinned to one of the two cores (`taskset`),
so host A alone has one core and the two hosts have two. Each runs the
Procfile's two `run_worker`, a collector and a foreman, with the shipped
settings. The shared side at 10.77.0.1 holds PostgreSQL (socat relays
10.77.0.1:15432 to its loopback port), a Redis of the run's own, gunicorn
answering the webhooks, and the fal fake (0.5 s generations, 2,000 slots:
the provider is not the limit), none of them pinned. 2,000 FLUX [dev]
items (two orders of 1,000, every prompt unique) on a fresh database each
run, timed from the first `place_order` to the last completion."""


def write_doc(one: Run, two: Run, command: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    section = "\n".join([
        START, "## Across hosts (`make bench-hosts`)", "",
        f"Written by `{command}` ({stamp}, {os.cpu_count()} cores).", "", METHOD, "",
        *lines(one, two), "", END, ""])
    write_section(START, END, section)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--write-doc", action="store_true")
    args = parser.parse_args(argv)
    if os.geteuid() != 0 or not shutil.which("socat"):
        print("bench-hosts needs root (ip netns) and socat", file=sys.stderr)
        return 2
    scale = Scale("hosts", args.items, 2000, True, latency=0.5)
    work = ROOT / "var" / "hosts"
    shutil.rmtree(work, ignore_errors=True)
    os.environ["DJANGO_SETTINGS_MODULE"] = "artfactory.settings"
    import logging

    import django

    name = "artfactory_hosts"
    os.environ["DATABASE_URL"] = fresh_database(name)
    django.setup()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from django.db import connections

    with Network():
        relay_url = f"postgres://postgres@{SHARED}:{PG_RELAY_PORT}/{name}"
        runs = []
        for hosts in (["host-a"], ["host-a", "host-b"]):
            media = work / "+".join(hosts) / "media"
            media.mkdir(parents=True)
            connections.close_all()
            fresh_database(name)
            runs.append(_one(hosts, scale, relay_url, media, work))
    one, two = runs
    text = "\n".join(lines(one, two))
    print(text)
    if args.write_doc:
        command = "make bench-hosts" if argv is None and len(sys.argv) <= 2 else (
            "python bench/hosts.py " + " ".join(sys.argv[1:]))
        write_doc(one, two, command)
    return 0 if one.clean and two.clean else 1


def _one(hosts: list[str], scale: Scale, database: str, media: Path, work: Path) -> Run:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from tests.factory.production.plant import PrivateRedis, use_redis

    redis = PrivateRedis(work / "+".join(hosts) / "redis", host=SHARED).start()
    use_redis(settings, redis.url)
    try:
        call_command("migrate", verbosity=0)
        call_command("load_seed_data", verbosity=0)
        user = get_user_model().objects.create_superuser("hosts", password=None)
        base = {**os.environ, "DATABASE_URL": database, "MEDIA_ROOT": str(media)}
        result = run(hosts, scale, user=user, base_env=base, redis=redis, media=media,
                     logs=work / "logs")
    finally:
        redis.kill()
    print(f"{' + '.join(hosts)}: {result.completed} in {result.seconds:.1f} s, "
          f"{result.throughput:.1f} items/s, clean={result.clean}", flush=True)
    return result


if __name__ == "__main__":
    sys.exit(main())

"""Real production processes for end-to-end tests.

A private redis-server that a test may flush, kill or restart without
disturbing the shared one; a fal fake that tells its callers apart by the
key each process was given; and a crew of `rqworker` and `run_foreman`
processes run as an operator runs them. A worker that exits is started
again, as the process supervisor of a deployment (honcho, systemd) would;
a foreman is never restarted, so a test sees whether it survived.
"""
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import django_rq
import redis

from factory.localredis import (
    embedded_binary,
    free_port,
    system_binary,
    wait_until_answering,
)
from tests.conftest import ROOT
from tests.fakes.base import Request, Response
from tests.fakes.fal import FakeFal

QUEUES = ("submit", "collect", "default")


def use_redis(settings, url: str) -> None:
    """Point this process (placing orders, enqueuing) at ``url``."""
    settings.REDIS_URL = url
    settings.RQ_QUEUES = {
        name: {**config, "URL": url} for name, config in settings.RQ_QUEUES.items()
    }


class PrivateRedis:
    """A redis-server of the test's own on a free 127.0.0.1 port.

    It never snapshots by itself; with ``appendonly`` every write is synced
    to disk, so a shutdown or a crash keeps the data, and ``save`` writes a
    snapshot that a later start without an append-only file reloads.
    """

    def __init__(self, directory: Path, appendonly: bool = False,
                 host: str = "127.0.0.1") -> None:
        self.binary = system_binary() or embedded_binary()
        if self.binary is None:
            raise RuntimeError("no redis-server binary found")
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.appendonly = appendonly
        self.host = host
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def start(self) -> "PrivateRedis":
        self.process = subprocess.Popen(
            [self.binary, "--bind", self.host, "--port", str(self.port),
             # Another address than loopback is a test bridge's, for its hosts.
             "--protected-mode", "yes" if self.host == "127.0.0.1" else "no",
             "--dir", str(self.directory), "--save", "",
             "--appendonly", "yes" if self.appendonly else "no",
             "--appendfsync", "always", "--logfile", str(self.directory / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        if not wait_until_answering(self.url, 10):
            raise RuntimeError(f"redis-server on {self.url} did not answer; see "
                               f"{self.directory / 'redis.log'}")
        return self

    def kill(self) -> None:
        """Crash the server: SIGKILL, nothing is written on the way out."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def shutdown(self) -> None:
        """Stop the server cleanly; with ``appendonly`` the data stays."""
        if self.process is not None:
            try:
                self.client().shutdown()
            except redis.ConnectionError:
                pass  # the server closes the connection as it exits
            self.process.wait(timeout=10)
            self.process = None


@dataclass
class Poll:
    caller: str
    request_id: str
    at: float  # time.monotonic() when the status request reached the fake


class CallerFal(FakeFal):
    """FakeFal that takes one key per caller and records who polled what."""

    def __init__(self, callers: dict[str, str], **options) -> None:
        super().__init__(key=next(iter(callers)), **options)
        self.callers = callers  # key -> caller name
        self.polls: list[Poll] = []

    def _denied(self, request: Request) -> Response | None:
        key = request.headers.get("authorization", "").removeprefix("Key ")
        if key in self.callers:
            return None
        return Response(401, {"detail": "Invalid or missing API key"})

    def _status(self, request: Request, match) -> Response:
        key = request.headers.get("authorization", "").removeprefix("Key ")
        poll = Poll(self.callers.get(key, "?"), match["rid"], time.monotonic())
        with self.lock:
            self.polls.append(poll)
        return super()._status(request, match)

    def key_of(self, caller: str) -> str:
        return next(key for key, name in self.callers.items() if name == caller)

    def env(self) -> dict[str, str]:
        """What a process needs to reach this fake and download from it."""
        return {
            "FAL_QUEUE_URL": self.url + "/", "FAL_API_URL": self.url,
            "DOWNLOAD_ALLOW_HTTP": "true",
            "DOWNLOAD_ALLOWED_PRIVATE_HOSTS": self.url.removeprefix("http://"),
            "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
        }


@dataclass
class Crew:
    """Workers and foremen as separate processes, with their logs on disk."""

    env: dict[str, str]
    logs: Path
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)
    foremen: dict[str, subprocess.Popen] = field(default_factory=dict)
    restarts: int = 0
    _extra: dict[str, dict[str, str]] = field(default_factory=dict)
    _commands: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def _spawn(self, name: str, command: list[str], extra: dict[str, str]):
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"{name}.log").open("a") as out:
            return subprocess.Popen(
                [sys.executable, str(ROOT / "manage.py"), *command],
                env={**self.env, **extra}, cwd=ROOT, stdout=out,
                stderr=subprocess.STDOUT,
            )

    def start_worker(self, name: str, *command: str, **extra: str) -> None:
        """``rqworker`` on every queue unless ``command`` says otherwise."""
        self._extra[name] = extra
        self._commands[name] = command or ("rqworker", *QUEUES)
        self.workers[name] = self._spawn(name, list(self._commands[name]), extra)

    def start_foreman(self, name: str, *args: str, **extra: str) -> None:
        self.foremen[name] = self._spawn(
            name, ["run_foreman", "--until-idle", "--name", name, *args], extra
        )

    def supervise(self) -> None:
        """Start again any worker that exited, as a supervisor would."""
        for name, process in list(self.workers.items()):
            if process.poll() is not None:
                self.restarts += 1
                self.start_worker(name, *self._commands[name], **self._extra[name])

    def log(self, name: str, tail: int = 4000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""

    def stop(self) -> None:
        """Warm shutdown for everyone still running, then a kill."""
        running = [p for p in [*self.workers.values(), *self.foremen.values()]
                   if p.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        for process in running:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def run_until_done(
    crew: Crew, items, max_seconds: float, during: Callable[[dict], None] | None = None,
) -> float:
    """Supervise the crew until every item is finished; seconds taken.

    ``during`` sees the item counts by state every round, to disrupt Redis
    at the moment it chooses. A foreman that dies fails at once.
    """
    started = time.monotonic()
    while True:
        progress = items.progress()
        if during:
            during(progress)
        if not items.unfinished().exists():
            return time.monotonic() - started
        for name, process in crew.foremen.items():
            assert process.poll() in (None, 0), f"{name} died:\n{crew.log(name)}"
        assert time.monotonic() - started < max_seconds, (
            f"unfinished after {max_seconds:g}s: {progress}\n{stuck(items)}\n"
            + "\n".join(f"--- {n}\n{crew.log(n, 2000)}"
                        for n in [*crew.foremen, *crew.workers])
        )
        crew.supervise()
        time.sleep(0.1)


def stuck(items) -> str:
    """The unfinished items and the jobs RQ lists as running, to explain a hang."""
    rows = items.unfinished().values_list(
        "pk", "status", "lease_until", "last_error")[:20]
    running = {name: django_rq.get_queue(name).started_job_registry.get_job_ids()
               for name in QUEUES}
    return f"unfinished items: {list(rows)}\nstarted jobs: {running}"


def wait_for_exit(crew: Crew, timeout: float = 30) -> dict[str, int]:
    """Let foremen notice the idle state and exit; their exit codes."""
    deadline = time.monotonic() + timeout
    codes = {}
    for name, process in crew.foremen.items():
        try:
            codes[name] = process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            codes[name] = -999
    return codes

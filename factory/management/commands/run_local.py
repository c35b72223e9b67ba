"""Run the web server and workers locally under honcho."""
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections
from redis.exceptions import RedisError
from rq import Worker

from factory.localredis import RedisUnavailable, choose_redis
from factory.management.commands.ensure_admin import admin_url, ensure_admin
from factory.management.commands.find_redis import var_dir
from factory.roles import ROLES_HINT

# How long the web server and workers may take to start before we say so.
WEB_WAIT_SECONDS = 120.0
# Workers that take only collections, so slow submits never hold them up.
COLLECTORS = 1


def honcho_argv(procfile: Path, port: int, workers: int) -> list[str]:
    """The honcho command line for the project's Procfile."""
    return [
        sys.executable, "-m", "honcho", "start",
        "--procfile", str(procfile),
        "--app-root", str(procfile.parent),
        "--port", str(port),
        "--concurrency", f"worker={workers},collector={COLLECTORS}",
    ]


def child_env(redis_url: str) -> dict[str, str]:
    """The environment for honcho's children: this Redis, this venv first."""
    env = dict(os.environ, REDIS_URL=redis_url)
    # Procfile lines say plain `python`; it must be the venv's.
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    return env


def login_box(title: str, username: str, password: str, port: int) -> str:
    """The login in a box, so it stands out of the processes' output."""
    lines = [title, "", f"Admin:     {admin_url(port)}", f"User:      {username}",
             f"Password:  {password}"]
    width = max(len(line) for line in lines)
    rule = "─" * (width + 2)
    body = [f"│ {line.ljust(width)} │" for line in lines]
    return "\n".join([f"┌{rule}┐", *body, f"└{rule}┘"])


def web_answers(url: str) -> bool:
    """Whether the login page answers 200 right now."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def workers_started_since(redis_url: str, since: datetime) -> int:
    """RQ workers that registered in this Redis since ``since``: this run's."""
    connection = redis.Redis.from_url(redis_url, socket_timeout=2)
    try:
        return sum(
            1 for worker in Worker.all(connection=connection)
            if worker.birth_date and worker.birth_date >= since
        )
    except RedisError:
        return 0
    finally:
        connection.close()


def wait_until_up(
    process: subprocess.Popen, url: str, redis_url: str, workers: int,
    since: datetime, timeout: float,
) -> bool:
    """Poll until ``url`` answers and the workers listen; False once honcho
    exits or time runs out."""
    deadline = time.monotonic() + timeout
    web_up = False
    while process.poll() is None and time.monotonic() < deadline:
        web_up = web_up or web_answers(url)
        if web_up and workers_started_since(redis_url, since) >= workers + COLLECTORS:
            return True
        time.sleep(0.25)
    return False


class Command(BaseCommand):
    help = (
        "Choose a Redis, make sure the admin exists, run the Procfile, and "
        "print the login once the web answers and the workers listen (and "
        "again on Ctrl-C)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=2)
        parser.add_argument(
            "--username",
            default=settings.ADMIN_USERNAME,
        )
        parser.add_argument(
            "--procfile", default="Procfile",
            help="relative to the project (Procfile.dev: runserver with autoreload)",
        )

    def handle(
        self, *args: Any, port: int, workers: int, username: str, procfile: str,
        **options: Any,
    ) -> None:
        if workers < 1:
            raise CommandError("--workers must be at least 1")
        procfile_path = Path(settings.BASE_DIR) / procfile
        if not procfile_path.is_file():
            raise CommandError(f"{procfile_path} does not exist")
        try:
            choice = choose_redis(var_dir=var_dir())
        except RedisUnavailable as exc:
            raise CommandError(str(exc)) from exc
        password = ensure_admin(username)
        self.stdout.write(f"Redis: {choice.describe()}")
        self.stdout.flush()
        connections.close_all()
        code = self.supervise(procfile_path, port, workers, username, password,
                              child_env(choice.url))
        if code:
            raise CommandError(f"honcho stopped with exit code {code}", returncode=code)

    def supervise(
        self, procfile: Path, port: int, workers: int, username: str,
        password: str, env: dict[str, str],
    ) -> int:
        """Run honcho until it stops; show the login when up and when stopped.

        Ctrl-C or SIGTERM is passed on to honcho (a terminal's Ctrl-C reaches
        it anyway; repeats are harmless), which stops every child; this
        process waits for that and prints the login again. A stop asked for
        ends with 0, honcho failing on its own with its exit code.
        """
        since = datetime.now(timezone.utc)
        process = subprocess.Popen(honcho_argv(procfile, port, workers), env=env)
        stopping = False

        def forward(signum: int, frame: FrameType | None) -> None:
            nonlocal stopping
            stopping = True
            if process.poll() is None:
                process.send_signal(signum)

        signal.signal(signal.SIGINT, forward)
        signal.signal(signal.SIGTERM, forward)
        if wait_until_up(process, admin_url(port) + "login/", env["REDIS_URL"],
                         workers, since, WEB_WAIT_SECONDS):
            self.show(login_box("Art Factory is up", username, password, port))
            self.show(ROLES_HINT)
        elif process.poll() is None:
            self.stderr.write(
                f"The web server or the workers are not up after "
                f"{WEB_WAIT_SECONDS:.0f}s; see their output above."
            )
        code = process.wait()
        self.show(login_box("Art Factory stopped; `make run` starts it again",
                            username, password, port))
        return 0 if stopping else code

    def show(self, text: str) -> None:
        self.stdout.write("\n" + text + "\n")
        self.stdout.flush()


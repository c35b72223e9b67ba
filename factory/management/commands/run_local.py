"""Run the web server and workers locally under honcho."""
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from factory.localredis import RedisUnavailable, choose_redis
from factory.management.commands.ensure_admin import admin_url, ensure_admin
from factory.management.commands.find_redis import var_dir

# How long the web process may take to answer before we say so.
WEB_WAIT_SECONDS = 60.0


def honcho_argv(procfile: Path, port: int, workers: int) -> list[str]:
    """The honcho command line for the project's Procfile."""
    return [
        sys.executable, "-m", "honcho", "start",
        "--procfile", str(procfile),
        "--app-root", str(procfile.parent),
        "--port", str(port),
        "--concurrency", f"worker={workers}",
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


def wait_for_web(process: subprocess.Popen, url: str, timeout: float) -> bool:
    """Poll ``url`` until it answers; False once honcho exits or time runs out."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        if web_answers(url):
            return True
        time.sleep(0.25)
    return False


class Command(BaseCommand):
    help = (
        "Choose a Redis, make sure the admin exists, run the Procfile, and "
        "print the login once the web server answers (and again on Ctrl-C)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=2)
        parser.add_argument(
            "--username",
            default=getattr(settings, "ADMIN_USERNAME", "admin"),
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
        process = subprocess.Popen(honcho_argv(procfile, port, workers), env=env)
        stopping = False

        def forward(signum: int, frame: FrameType | None) -> None:
            nonlocal stopping
            stopping = True
            if process.poll() is None:
                process.send_signal(signum)

        signal.signal(signal.SIGINT, forward)
        signal.signal(signal.SIGTERM, forward)
        if wait_for_web(process, admin_url(port) + "login/", WEB_WAIT_SECONDS):
            self.show(login_box("Art Factory is up", username, password, port))
        elif process.poll() is None:
            self.stderr.write(
                f"The web server is not answering at {admin_url(port)} after "
                f"{WEB_WAIT_SECONDS:.0f}s; see its output above."
            )
        code = process.wait()
        self.show(login_box("Art Factory stopped; `make run` starts it again",
                            username, password, port))
        return 0 if stopping else code

    def show(self, text: str) -> None:
        self.stdout.write("\n" + text + "\n")
        self.stdout.flush()


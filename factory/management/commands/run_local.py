"""Run the web server and workers locally under honcho."""
import os
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from factory.localredis import RedisUnavailable, choose_redis
from factory.management.commands.ensure_admin import ensure_admin, login_line
from factory.management.commands.find_redis import var_dir
from factory.roles import ROLES_HINT


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


class Command(BaseCommand):
    help = "Choose a Redis, make sure the admin exists, then run the Procfile."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=2)
        parser.add_argument(
            "--username",
            default=getattr(settings, "ADMIN_USERNAME", "admin"),
        )

    def handle(
        self, *args: Any, port: int, workers: int, username: str, **options: Any
    ) -> None:
        if workers < 1:
            raise CommandError("--workers must be at least 1")
        try:
            choice = choose_redis(var_dir=var_dir())
        except RedisUnavailable as exc:
            raise CommandError(str(exc)) from exc
        password = ensure_admin(username)
        self.stdout.write(f"Redis: {choice.describe()}")
        self.stdout.write(login_line(username, password, port))
        self.stdout.write(ROLES_HINT)
        self.stdout.flush()
        connections.close_all()
        argv = honcho_argv(Path(settings.BASE_DIR) / "Procfile", port, workers)
        # exec: honcho becomes this process, so Ctrl-C reaches it and it
        # stops every child.
        os.execvpe(argv[0], argv, child_env(choice.url))

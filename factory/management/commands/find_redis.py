"""Print the Redis URL a local run would use."""
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from factory.localredis import RedisUnavailable, choose_redis


def var_dir() -> Path:
    """The project's local data directory."""
    return Path(settings.VAR_DIR)


class Command(BaseCommand):
    help = (
        "Print the Redis URL for local runs (REDIS_URL, a running Redis, or a "
        "server started under var/redis/); how it was found goes to stderr."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            choice = choose_redis(var_dir=var_dir())
        except RedisUnavailable as exc:
            raise CommandError(str(exc)) from exc
        self.stderr.write(f"Redis: {choice.describe()}")
        self.stdout.write(choice.url)

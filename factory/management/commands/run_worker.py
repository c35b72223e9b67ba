"""Run an RQ worker on the production queues that rides out outages."""
import logging
import time
from typing import Any

import redis
from django.core.management.base import BaseCommand, CommandParser
from django_rq.utils import reset_db_connections
from django_rq.workers import get_worker
from rq.logutils import setup_loghandlers

from factory.production.queues import COLLECT_QUEUE, DEFAULT_QUEUE, SUBMIT_QUEUE

QUEUES = [SUBMIT_QUEUE, COLLECT_QUEUE, DEFAULT_QUEUE]
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)
# A worker that ran this long before Redis failed starts the back-off over.
HEALTHY_SECONDS = 60.0
log = logging.getLogger("factory.worker")


class Command(BaseCommand):
    help = (
        "Run an RQ worker on the submit, collect and default queues. When Redis "
        "goes away the worker waits and reconnects with back-off (1 s doubling "
        "to --max-wait) instead of exiting, so an outage of any length ends with "
        "the same processes working. Retries need no scheduler: their due time "
        "is in the database and the foreman queues them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--burst", action="store_true",
            help="Exit once the queues are empty.",
        )
        parser.add_argument(
            "--queues", nargs="+", default=QUEUES, metavar="QUEUE",
            help=f"Queues to work on, first has priority (default: {' '.join(QUEUES)}).",
        )
        parser.add_argument("--name", help="Worker name shown by worker_status.")
        parser.add_argument(
            "--max-wait", type=float, default=30.0,
            help="Longest wait in seconds between reconnection attempts (default 30).",
        )

    def handle(self, *args: Any, burst: bool, queues: list[str], name: str | None,
               max_wait: float, **options: Any) -> None:
        level = "DEBUG" if options["verbosity"] >= 2 else (
            "WARNING" if options["verbosity"] == 0 else "INFO")
        setup_loghandlers(level)
        wait, attempt = 1.0, 0
        while True:
            started = time.monotonic()
            try:
                # A name Redis may still hold from before the outage is not reused.
                worker = get_worker(*queues, name=f"{name}.{attempt}" if name and attempt
                                    else name)
                reset_db_connections()
                worker.work(burst=burst, with_scheduler=False, logging_level=level)
                return  # the queues ran dry (burst) or a stop was asked for
            except REDIS_DOWN as exc:
                if time.monotonic() - started > HEALTHY_SECONDS:
                    wait = 1.0
                log.warning("Redis is unreachable (%s); connecting again in %gs",
                            exc, wait)
                self.stderr.write(f"Redis is unreachable ({exc}); connecting "
                                  f"again in {wait:g}s")
                time.sleep(wait)
                wait, attempt = min(wait * 2, max_wait), attempt + 1

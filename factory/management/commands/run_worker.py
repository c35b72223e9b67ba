"""Run an RQ worker on the production queues."""
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from factory.production.queues import COLLECT_QUEUE, DEFAULT_QUEUE, SUBMIT_QUEUE

QUEUES = [SUBMIT_QUEUE, COLLECT_QUEUE, DEFAULT_QUEUE]


class Command(BaseCommand):
    help = (
        "Run an RQ worker on the submit, collect and default queues. Retries "
        "need no scheduler: their due time is in the database and the foreman "
        "queues them."
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

    def handle(self, *args: Any, burst: bool, queues: list[str], name: str | None,
               **options: Any) -> None:
        call_command(
            "rqworker", *queues, burst=burst, name=name,
            verbosity=options["verbosity"],
        )

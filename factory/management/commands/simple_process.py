"""Run one order item start to finish in the foreground, for debugging."""
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from factory.models import ItemStatus, OrderItem
from factory.production.foreground import process_in_foreground
from factory.production.submit import worker_name


class Command(BaseCommand):
    help = (
        "Submit, follow and collect one order item in this process, printing "
        "each step. Uses the same claims and slots as workers, so it is safe "
        "next to them; a finished item is only reported."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--order-item-id", type=int, required=True, metavar="N",
                            help="The item to run.")
        parser.add_argument("--poll-seconds", type=float, default=0.5,
                            help="Seconds between status calls.")
        parser.add_argument("--timeout", type=float, default=600,
                            help="Give up after this many seconds.")

    def handle(self, *args: Any, order_item_id: int, poll_seconds: float,
               timeout: float, **options: Any) -> None:
        if not OrderItem.objects.filter(pk=order_item_id).exists():
            raise CommandError(f"order item {order_item_id} does not exist")
        try:
            item = process_in_foreground(
                order_item_id, f"simple_process:{worker_name()}",
                poll_seconds=poll_seconds, timeout=timeout, echo=self.stdout.write,
            )
        except TimeoutError as exc:
            raise CommandError(str(exc)) from exc
        if item.status == ItemStatus.FAILED:
            raise CommandError(f"order item {item.pk} failed: {item.last_error}")

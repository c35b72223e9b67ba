"""Queue the pending items of open orders; optionally retry failed ones."""
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import QuerySet
from django.utils import timezone

from factory.models import OrderItem, OrderStatus
from factory.production.retry import retry_failed_items
from factory.production.sweeper import requeue_lost_submits
from factory.spending import BudgetError

OPEN = (OrderStatus.PLACED, OrderStatus.RUNNING)


class Command(BaseCommand):
    help = (
        "Queue a submit job for every pending item of placed or running "
        "orders that has none (after a Redis loss, say). With --retry-failed, "
        "failed items also get a linked new attempt. Safe to rerun."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--order-id", type=int, action="append", dest="order_ids",
                            metavar="N", help="Only this order (repeatable).")
        parser.add_argument("--retry-failed", action="store_true",
                            help="Retry failed items as new attempts, queued at once.")

    def handle(self, *args: Any, order_ids: list[int] | None, retry_failed: bool,
               **options: Any) -> None:
        items: QuerySet = OrderItem.objects.all()
        if order_ids:
            items = items.filter(order_id__in=order_ids)
        queued = requeue_lost_submits(
            timezone.now(), grace=timedelta(0),
            items=items.filter(order__status__in=OPEN),
        )
        self.stdout.write(f"{queued} pending items queued")
        if retry_failed:
            try:
                retries = retry_failed_items(items)
            except BudgetError as exc:
                raise CommandError(f"nothing was retried: {exc}") from None
            self.stdout.write(f"{len(retries)} failed items queued again as new attempts")

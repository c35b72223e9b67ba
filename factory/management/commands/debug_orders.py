"""Print orders and their items with everything needed to debug them."""
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Count, Q

from factory.models import ItemStatus, Order, OrderItem


def describe_item(item: OrderItem) -> list[str]:
    """The item's state, attempts, request, lease, links and last error."""
    line = (f"  item {item.pk} #{item.index} {item.status} attempts={item.attempts}"
            f" request={item.request_id or '-'}")
    if item.lease_until:
        line += f" lease={item.lease_owner or '-'} until {item.lease_until:%H:%M:%S}"
    if item.retry_of_id:
        line += f" retry_of={item.retry_of_id}"
    retried_as = [r.pk for r in item.retries.all()]
    if retried_as:
        line += f" retried_as={','.join(map(str, retried_as))}"
    lines = [line]
    lines += [f"      {text}" for text in item.last_error.splitlines() if text]
    return lines


class Command(BaseCommand):
    help = (
        "Print orders with their item counts and every item's state, attempts, "
        "request id, lease, retry links and last error."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--order-id", type=int, help="Only this order.")
        parser.add_argument("--failed-only", action="store_true",
                            help="Only failed items, of orders that have some.")
        parser.add_argument("--limit", type=int, default=10,
                            help="Most recent orders shown (default 10).")

    def handle(self, *args: Any, order_id: int | None, failed_only: bool, limit: int,
               **options: Any) -> None:
        orders = Order.objects.select_related("machine").annotate(
            n_failed=Count("items", filter=Q(items__status=ItemStatus.FAILED))
        ).order_by("-pk")
        if order_id is not None:
            orders = orders.filter(pk=order_id)
            if not orders.exists():
                raise CommandError(f"order {order_id} does not exist")
        if failed_only:
            orders = orders.filter(n_failed__gt=0)
        for order in orders[:limit]:
            self._order(order, failed_only)
        if not orders.exists():
            self.stdout.write("no matching orders")

    def _order(self, order: Order, failed_only: bool) -> None:
        items = order.items.prefetch_related("retries").order_by("index")
        if failed_only:
            items = items.filter(status=ItemStatus.FAILED)
        counts = {s: n for s, n in order.items.progress().items() if n}
        self.stdout.write(
            f"order {order.pk} {str(order)!r} {order.status} "
            f"machine={order.machine.slug} placed={order.placed_at or '-'} "
            f"items={counts}"
        )
        for item in items:
            self.stdout.write("\n".join(describe_item(item)))

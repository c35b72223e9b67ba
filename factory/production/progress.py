"""Order state follows its items; every update is a conditional one."""
from django.utils import timezone

from factory.models import FINISHED, ItemStatus, Order, OrderItem, OrderStatus


def mark_running(order_id: int) -> None:
    """A placed order starts running when its first item is submitted."""
    Order.objects.filter(pk=order_id, status=OrderStatus.PLACED).update(
        status=OrderStatus.RUNNING
    )


def refresh_order(order_id: int) -> None:
    """Close the order once no item is left to drive."""
    items = OrderItem.objects.filter(order_id=order_id)
    if items.exclude(status__in=FINISHED).exists():
        return
    # A failure that a later attempt retried no longer counts against the order.
    failed = items.filter(status=ItemStatus.FAILED, retries__isnull=True).exists()
    Order.objects.filter(
        pk=order_id, status__in=(OrderStatus.PLACED, OrderStatus.RUNNING)
    ).update(
        status=OrderStatus.DONE_WITH_FAILURES if failed else OrderStatus.DONE,
        finished_at=timezone.now(),
    )

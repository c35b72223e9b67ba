"""Retry failed items as linked new attempts; the failed ones stay as they are."""
from collections.abc import Iterable
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Max, QuerySet

from factory.models import ItemStatus, Order, OrderItem, OrderStatus
from factory.production.queues import enqueue_items


def retry_failed_items(items: QuerySet | Iterable[int]) -> list[OrderItem]:
    """Create one pending attempt per failed item and queue it on commit.

    Each attempt copies the machine, field values, parameters, seed and
    estimated cost, points back through ``retry_of`` and takes the next
    free index of its order, which is reopened. Items already retried and
    items of cancelled orders are skipped, so a rerun queues nothing twice.
    """
    if not isinstance(items, QuerySet):
        items = OrderItem.objects.filter(pk__in=list(items))
    wanted = items.filter(status=ItemStatus.FAILED, retries__isnull=True).exclude(
        order__status=OrderStatus.CANCELLED
    )
    with transaction.atomic():
        order_ids = sorted(set(wanted.values_list("order_id", flat=True)))
        # Locking the orders serialises retries, numbering and reruns.
        list(Order.objects.select_for_update().filter(pk__in=order_ids))
        failed = list(wanted.order_by("order_id", "index"))
        attempts = _new_attempts(failed)
        OrderItem.objects.bulk_create(attempts)
        _reopen(attempts)
        ids = [attempt.pk for attempt in attempts]
        transaction.on_commit(lambda: enqueue_items(ids))
    return attempts


def _new_attempts(failed: list[OrderItem]) -> list[OrderItem]:
    last = dict(
        OrderItem.objects.filter(order_id__in={i.order_id for i in failed})
        .values("order_id").annotate(last=Max("index")).values_list("order_id", "last")
    )
    attempts = []
    for item in failed:
        last[item.order_id] += 1
        attempts.append(OrderItem(
            order_id=item.order_id, machine_id=item.machine_id,
            index=last[item.order_id], field_values=item.field_values,
            parameters=item.parameters, seed=item.seed, cost=item.cost,
            retry_of=item,
        ))
    return attempts


def _reopen(attempts: list[OrderItem]) -> None:
    """Count the new attempts in their orders and set them running again."""
    for order_id in {a.order_id for a in attempts}:
        added = [a for a in attempts if a.order_id == order_id]
        cost = sum((a.cost or Decimal(0) for a in added), Decimal(0))
        Order.objects.filter(pk=order_id).update(
            status=OrderStatus.RUNNING, finished_at=None,
            item_count=F("item_count") + len(added),
            estimated_cost=F("estimated_cost") + cost,
        )

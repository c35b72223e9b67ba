"""Cancel orders and items: queued ones never start, running ones stop.

Items already collecting are left to finish: their generation is paid
for and done, so cancelling them would only throw the result away.
"""
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, QuerySet
from django.utils import timezone

from factory.models import (
    STOPPABLE, EventKind, ItemEvent, ItemStatus, Order, OrderItem, OrderStatus,
)
from factory.production import limits
from factory.production.progress import refresh_order
from factory.production.queues import enqueue_cancel
from factory.providers import get_backend
from factory.spending import settle_cancelled_run, settle_finished_ids
from factory.providers.base import ProviderBackend, ProviderError, TransientError

log = logging.getLogger(__name__)
OPEN_ORDERS = (OrderStatus.DRAFT, OrderStatus.PLACED, OrderStatus.RUNNING)
# A submitting item's own job cancels remotely once it has a request id.
REMOTE = (ItemStatus.SUBMITTED, ItemStatus.SUBMIT_UNKNOWN)


@dataclass(frozen=True)
class CancelPlan:
    """What cancelling would do: items that stop, items left to finish."""

    stopping: int
    finishing: int


def plan_cancel(items: QuerySet) -> CancelPlan:
    """Count what cancelling ``items`` would stop and leave running, in one
    query; writes nothing."""
    counts = dict(items.order_by().values_list("status").annotate(n=Count("id")))
    return CancelPlan(
        stopping=sum(counts.get(status, 0) for status in STOPPABLE),
        finishing=counts.get(ItemStatus.COLLECTING, 0),
    )


def cancel_order(order: Order) -> bool:
    """Close an open order and cancel its unfinished items.

    Writes the order's and the items' status and queues a provider cancel
    per running item. An order that already finished is left alone and
    gives False, so a rerun changes nothing.
    """
    if not Order.objects.filter(pk=order.pk, status__in=OPEN_ORDERS).update(
        status=OrderStatus.CANCELLED, finished_at=timezone.now()
    ):
        return False
    cancel_items(order.items.all())
    order.refresh_from_db(fields=["status", "finished_at"])
    return True


def cancel_items(items: QuerySet | Iterable[int]) -> int:
    """Cancel the unfinished ones among ``items``; returns how many."""
    if not isinstance(items, QuerySet):
        items = OrderItem.objects.filter(pk__in=list(items))
    rows = list(items.filter(status__in=STOPPABLE).values_list("pk", "status"))
    cancelled = 0
    with transaction.atomic():
        # Per state, so each row is cancelled only from the state it was
        # read in, and what happens next (a slot, a provider cancel) fits.
        for status in STOPPABLE:
            ids = [pk for pk, current in rows if current == status]
            if ids:
                cancelled += OrderItem.objects.filter(pk__in=ids).cancel(frm=(status,))
        settle_finished_ids(list(OrderItem.objects.filter(
            pk__in=[pk for pk, _ in rows], status=ItemStatus.CANCELLED,
        ).values_list("pk", flat=True)))
    was = dict(rows)
    # A submitting item keeps its slot until its own job has the request id.
    released = list(OrderItem.objects.filter(
        pk__in=[pk for pk, status in rows if status in (ItemStatus.PENDING, *REMOTE)],
        status=ItemStatus.CANCELLED,
    ).select_related("machine__provider"))
    # Slots, and places in a waiting line, go to the next items.
    limits.release_many(released)
    for item in released:
        if was[item.pk] in REMOTE:
            enqueue_cancel(item.pk)
    for order_id in items.order_by().values_list("order_id", flat=True).distinct():
        refresh_order(order_id)
    return cancelled


def cancel_at_provider(item_id: int) -> None:
    """Ask the provider to stop a cancelled item; transient errors raise.

    An item whose submission had an unknown outcome is looked up first.
    What the provider then says it billed for the time the request ran
    (Replicate's hardware time) is written as the item's actual charge.
    """
    item = OrderItem.objects.select_related("machine__provider").get(pk=item_id)
    if item.status != ItemStatus.CANCELLED:
        return
    backend = get_backend(item.machine.provider.slug)
    try:
        request_id = item.request_id or backend.find(
            item.machine, item.created_at, item.parameters, key=item.provider_key
        )
        if request_id:
            backend.cancel(item.machine, request_id)
            _charge_cancelled(item, backend, request_id)
    except TransientError:
        raise  # RQ retries the job
    except (ProviderError, NotImplementedError) as exc:
        log.warning("item %s: provider cancel failed: %s", item.pk, exc)
        message = f"provider cancel failed: {exc}"
        OrderItem.objects.filter(pk=item.pk).update(last_error=message[:4000])
        ItemEvent.objects.record(item.pk, EventKind.CANCEL, message)


def _charge_cancelled(item: OrderItem, backend: ProviderBackend, request_id: str) -> None:
    """Write what the stopped request was billed; a status that cannot be
    read now is left to reconciliation rather than cancelling again."""
    try:
        status = backend.status(item.machine, request_id)
    except (ProviderError, NotImplementedError) as exc:
        log.info("item %s: no status after cancel, charge left to "
                 "reconciliation: %s", item.pk, exc)
        return
    item.request_id = item.request_id or request_id
    settle_cancelled_run(item, status)

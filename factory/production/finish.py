"""Finishing an item that did not complete, for every production path.

The state change itself is the model's (``OrderItemQuerySet.fail``); this
settles what hangs on it: the reservation, the slot, the event and the
order's progress.
"""
from django.db import transaction

from factory.models import EventKind, ItemEvent, ItemStatus, OrderItem
from factory.production import limits, progress
from factory.providers.base import Charge
from factory.spending import settle_finished_ids


def fail_item(item: OrderItem, message: str, charge: Charge | None = None) -> bool:
    """Fail the item with the provider's message and update its order.

    ``charge`` is what the provider billed although it failed, if anything.
    Compare-and-set, so a cancel that landed first is not overwritten;
    returns whether this call failed it.
    """
    with transaction.atomic():
        failed = OrderItem.objects.filter(pk=item.pk).fail(message)
        if failed:
            settle_finished_ids([item.pk], {item.pk: charge} if charge else None)
    if not failed:
        return False
    item.status, item.last_error = ItemStatus.FAILED, message[:4000]
    ItemEvent.objects.record(item.pk, EventKind.FAILED, message)
    limits.release(item)
    progress.refresh_order(item.order_id)
    return True

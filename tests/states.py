"""Put an item straight into a state to set a scene for a test.

Production moves items only through the model's compare-and-set moves
(``factory.models.lifecycle``); a test that needs an item already
submitted or completed writes the state directly instead of driving it
there, and this is the one place that does.
"""
from django.utils import timezone

from factory.models import ItemStatus, OrderItem

STAMPS = {ItemStatus.SUBMITTED: "submitted_at", ItemStatus.COMPLETED: "completed_at",
          ItemStatus.FAILED: "completed_at"}


def put(item: OrderItem, status: str, **fields) -> OrderItem:
    """Write ``status`` and ``fields`` on the row and on ``item``."""
    stamp = STAMPS.get(status)
    if stamp and stamp not in fields:
        fields[stamp] = timezone.now()
    OrderItem.objects.filter(pk=item.pk).update(status=status, **fields)
    item.status = status
    for name, value in fields.items():
        setattr(item, name, value)
    return item

"""RQ entry points: thin jobs that take ids and call plain functions.

Redis may lose or repeat any job, so each one is safe to run twice: the
database row, claimed with a compare-and-set update, decides who works.
"""
from django_rq import job

from factory.models import ItemStatus, OrderItem
from factory.production.follow import follow_submitted_item
from factory.production.queues import COLLECT_QUEUE, SUBMIT_QUEUE
from factory.production.submit import submit_claimed_item, worker_name


@job(SUBMIT_QUEUE)
def submit_item(item_id: int) -> None:
    """Claim the item and make its one paid provider call."""
    item = OrderItem.objects.claim(
        item_id, frm=(ItemStatus.PENDING,), to=ItemStatus.SUBMITTING,
        owner=worker_name(),
    )
    if item is not None:  # None: another worker already owns it
        submit_claimed_item(item)


@job(COLLECT_QUEUE)
def follow_item(item_id: int) -> None:
    """Poll a submitted item and collect its outputs once it is done."""
    follow_submitted_item(item_id, owner=worker_name())

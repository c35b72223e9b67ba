"""RQ entry points: thin jobs that take ids and call plain functions.

Redis may lose or repeat any job, so each one is safe to run twice: the
database row, claimed with a compare-and-set update, decides who works.
Jobs submit or collect and return; the foreman does the waiting.
"""
from django_rq import job

from factory.production.cancel import cancel_at_provider
from factory.production.collect import collect_outputs
from factory.production.follow import claim_collection
from factory.production.queues import COLLECT_QUEUE, DEFAULT_QUEUE, SUBMIT_QUEUE
from factory.production.submit import start_submission, worker_name


@job(SUBMIT_QUEUE)
def submit_item(item_id: int) -> None:
    """Take a provider slot, claim the item and make its one paid call."""
    start_submission(item_id)


@job(COLLECT_QUEUE)
def collect_item(item_id: int) -> None:
    """Store the outputs of an item the foreman handed over."""
    item = claim_collection(item_id, owner=worker_name())
    if item is not None:  # None: another job collects it, or it is done
        collect_outputs(item)


@job(DEFAULT_QUEUE)
def cancel_item_at_provider(item_id: int) -> None:
    """Stop a cancelled item's generation at its provider."""
    cancel_at_provider(item_id)

"""Submit one claimed item: record intent, call once, save the request id."""
import logging
import os
import socket

from django.db.models import F

from factory.models import ItemStatus, OrderItem
from factory.production import progress
from factory.production.queues import enqueue_follow, enqueue_submit
from factory.providers import get_backend
from factory.providers.base import (
    ConfigurationError,
    OutcomeUnknownError,
    PermanentError,
    TransientError,
)

log = logging.getLogger(__name__)
RETRY_DELAYS = (5, 20, 60, 180)


def worker_name() -> str:
    """Who holds a lease: host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def item_key(item: OrderItem) -> str:
    """A key unique to this item, even across a database reset."""
    return f"item-{item.pk}-{int(item.created_at.timestamp())}"


def submit_claimed_item(item: OrderItem) -> None:
    """Make the item's one provider call; the claim already recorded intent.

    The attempt counter is raised before the call, so a crash mid-call leaves
    evidence that money may have been spent.
    """
    OrderItem.objects.filter(pk=item.pk).update(attempts=F("attempts") + 1)
    item.refresh_from_db(fields=["attempts"])
    progress.mark_running(item.order_id)
    backend = get_backend(item.machine.provider.slug)
    try:
        request_id = backend.submit(item.machine, item.parameters, key=item_key(item))
    except TransientError as exc:
        _retry_later(item, exc)
    except OutcomeUnknownError as exc:
        item._transition(ItemStatus.SUBMIT_UNKNOWN, last_error=str(exc))
    except (PermanentError, ConfigurationError) as exc:
        fail_item(item, str(exc))
    else:
        item.mark_submitted(request_id)
        enqueue_follow(item.pk)


def _retry_later(item: OrderItem, exc: TransientError) -> None:
    if item.attempts > len(RETRY_DELAYS):
        fail_item(item, f"gave up after {item.attempts} attempts: {exc}")
        return
    delay = exc.retry_after or RETRY_DELAYS[item.attempts - 1]
    log.info("item %s: transient error, retry in %ss: %s", item.pk, delay, exc)
    item._transition(ItemStatus.PENDING, last_error=str(exc))
    enqueue_submit(item.pk, delay=delay)


def fail_item(item: OrderItem, message: str) -> None:
    """Fail the item with the provider's message and update its order."""
    item.mark_failed(message)
    progress.refresh_order(item.order_id)

"""Submit one item: claim it, take a slot, call once, save the request id.

Every write is a short compare-and-set update outside any transaction
that spans the provider call, so a cancel or the sweeper can always step
in; whoever loses the compare-and-set leaves the row alone.
"""
import logging
import os
import random
import socket
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from factory.models import EventKind, ItemEvent, ItemStatus, OrderItem
from factory.production import limits, progress
from factory.production.finish import fail_item
from factory.production.queues import enqueue_cancel, enqueue_items
from factory.providers import get_backend
from factory.providers.base import (
    ConfigurationError,
    OutcomeUnknownError,
    PermanentError,
    TransientError,
)

log = logging.getLogger(__name__)


def worker_name() -> str:
    """Who holds a lease: host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def submit_lease() -> timedelta:
    """Longer than any submit call may take; then the sweeper steps in."""
    return timedelta(seconds=settings.PRODUCTION_SUBMIT_LEASE_SECONDS)


def max_retries(provider_slug: str) -> int:
    """Transient submit failures an item survives, per provider."""
    limits_by_slug = settings.PRODUCTION_MAX_RETRIES
    return limits_by_slug.get(provider_slug, limits_by_slug.get("default", 4))


def start_submission(item_id: int) -> None:
    """Take a slot, claim the pending item and submit it.

    A provider cooling down after a 429 sends the job back for when the
    pause ends. With every slot taken the item waits in the limit's line,
    holding no worker and no timer, until a slot given back wakes it.
    """
    item = OrderItem.objects.select_related("machine__provider").filter(
        Q(due_at__isnull=True) | Q(due_at__lte=timezone.now()),
        pk=item_id, status=ItemStatus.PENDING,
    ).first()
    if item is None:  # finished, cancelled, owned by another job or not yet due
        return
    wait = limits.cooldown_remaining(item.machine.provider.slug)
    if wait > 0:
        # Jitter spreads the waiting items so they do not all return at once.
        postpone(item.pk, wait * random.uniform(1, 1.25))
        return
    if not limits.acquire(item):
        return  # waiting in line
    claimed = OrderItem.objects.claim_for_submit(item.pk, worker_name(), submit_lease())
    if claimed is None:
        # Another job for this item claimed it and shares the slot; if the
        # item left instead (cancelled, say), pass the slot on.
        if not OrderItem.objects.filter(pk=item.pk, status__in=limits.IN_FLIGHT).exists():
            limits.release(item)
        return
    submit_claimed_item(claimed)


def submit_claimed_item(item: OrderItem) -> None:
    """Make the item's one provider call; the claim already counted it.

    The caller claimed with ``attempt=True`` and holds a slot.
    """
    progress.mark_running(item.order_id)
    backend = get_backend(item.machine.provider.slug)
    try:
        request_id = backend.submit(item.machine, item.parameters, key=item.provider_key)
    except TransientError as exc:
        limits.release(item)
        _retry_later(item, exc)
    except OutcomeUnknownError as exc:
        # The slot stays taken: the generation may be running.
        if _held(item).outcome_unknown(str(exc)):
            ItemEvent.objects.record(item.pk, EventKind.UNKNOWN, str(exc))
    except (PermanentError, ConfigurationError) as exc:
        fail_item(item, str(exc))
    else:
        record_request(item, request_id)


def record_request(item: OrderItem, request_id: str) -> None:
    """Save the request id in its own update; the foreman follows from here."""
    if _held(item).accepted(request_id):
        return
    # Cancelled (or swept) while the call was in flight: keep the id anyway.
    OrderItem.objects.filter(pk=item.pk).update(request_id=request_id)
    if OrderItem.objects.filter(pk=item.pk, status=ItemStatus.CANCELLED).exists():
        limits.release(item)
        enqueue_cancel(item.pk)
    else:
        # The sweeper took the outcome for unknown meanwhile: now it is known.
        OrderItem.objects.filter(pk=item.pk).accepted(
            request_id, frm=(ItemStatus.SUBMIT_UNKNOWN,))


def _held(item: OrderItem):
    """The item, if this process still holds its ``submitting`` claim."""
    return OrderItem.objects.filter(pk=item.pk, lease_owner=item.lease_owner)


def return_to_pending(item: OrderItem, last_error: str, due_in: float = 0) -> bool:
    """Give up a claim, e.g. to try again ``due_in`` seconds from now."""
    due_at = timezone.now() + timedelta(seconds=due_in) if due_in > 0 else None
    return bool(_held(item).back_to_pending(last_error, due_at=due_at))


def postpone(item_id: int, seconds: float) -> bool:
    """Make a pending item due ``seconds`` from now instead of at once.

    The database holds the due time and the foreman queues the item when
    it comes (``queue_due_submits``), so no Redis timer has to survive for
    the retry to happen.
    """
    now = timezone.now()
    return bool(OrderItem.objects.filter(pk=item_id, status=ItemStatus.PENDING).update(
        due_at=now + timedelta(seconds=seconds), updated_at=now,
    ))


def queue_due_submits(now: datetime | None = None, batch: int = 500) -> int:
    """Queue a submit job for each pending item whose due time has come.

    The due time is cleared in the same update that selects the items, so
    an item is queued once per due time; were the queueing lost with
    Redis, the sweeper finds the pending item without a job.
    """
    now = now or timezone.now()
    due = list(OrderItem.objects.filter(
        status=ItemStatus.PENDING, due_at__lte=now
    ).order_by("due_at").values_list("pk", flat=True)[:batch])
    if not due:
        return 0
    OrderItem.objects.filter(
        pk__in=due, status=ItemStatus.PENDING, due_at__lte=now
    ).update(due_at=None, updated_at=now)
    enqueue_items(due)
    return len(due)


def _retry_later(item: OrderItem, exc: TransientError) -> None:
    provider = item.machine.provider.slug
    if exc.retry_after is not None:
        # Refused with Retry-After: nothing was spent, so it is no attempt;
        # the provider is paused instead of the item failing.
        pause = max(exc.retry_after, 1.0)
        limits.slow_down(provider, pause)
        OrderItem.objects.filter(pk=item.pk).update(attempts=F("attempts") - 1)
        message = f"rate limited, retry in {pause:g}s: {exc}"
        if return_to_pending(item, message, pause):
            ItemEvent.objects.record(item.pk, EventKind.RATE_LIMITED, message)
        return
    if item.attempts > max_retries(provider):
        fail_item(item, f"gave up after {item.attempts} attempts: {exc}")
        return
    delays = settings.PRODUCTION_RETRY_DELAYS
    delay = delays[min(item.attempts, len(delays)) - 1]
    log.info("item %s: transient error, retry in %ss: %s", item.pk, delay, exc)
    if return_to_pending(item, str(exc), delay):
        ItemEvent.objects.record(
            item.pk, EventKind.RETRY, f"attempt {item.attempts}: {exc}; retry in {delay:g}s"
        )

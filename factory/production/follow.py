"""Follow submitted items: one status call each, then settle the row.

Resume, never resubmit: an item with a request id is only ever polled.
Every write is conditional on the poller still holding the item's lease,
so a cancel, a webhook hint or another foreman that stepped in wins.
"""
import enum
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, DateTimeField, QuerySet, Value, When
from django.utils import timezone
from redis import RedisError

from factory.models import EventKind, ItemEvent, ItemStatus, OrderItem
from factory.production import limits
from factory.production.finish import fail_item
from factory.production.progress import refresh_order
from factory.production.queues import enqueue_collects
from factory.providers import get_backend
from factory.spending import settle_finished_ids, unfinished_charge
from factory.providers.base import (
    Charge,
    ConfigurationError,
    ProviderBackend,
    ProviderError,
    RemoteState,
    RemoteStatus,
    TransientError,
)

log = logging.getLogger(__name__)
Outcome = RemoteStatus | ProviderError


class Step(str, enum.Enum):
    """What a poll did to an item."""

    RUNNING = "running"
    COLLECTING = "collecting"
    FAILED = "failed"
    CANCELLED = "cancelled"
    WAITING = "waiting"  # the status call failed; polled again later
    LOST = "lost"  # someone else changed the item meanwhile


def collect_lease() -> timedelta:
    """Time for a worker to pick up and finish a collection."""
    return timedelta(seconds=settings.PRODUCTION_COLLECT_LEASE_SECONDS)


def _status(backend: ProviderBackend, item: OrderItem) -> Outcome:
    try:
        return backend.status(item.machine, item.request_id)
    except ProviderError as exc:
        return exc
    except Exception as exc:  # an adapter bug must not stall the batch
        log.exception("item %s: status call failed", item.pk)
        return TransientError(f"status call failed: {type(exc).__name__}: {exc}")


def _status_in_thread(backend: ProviderBackend, item: OrderItem) -> Outcome:
    """``_status`` in a poll thread. Should anything in it query the database,
    the thread's connection is closed: on PostgreSQL it goes back to the
    process's pool, which a thread ending with it open would drain for good."""
    try:
        return _status(backend, item)
    finally:
        connection.close()


def poll_statuses(items: Sequence[OrderItem], threads: int = 8) -> list[Outcome]:
    """Ask each item's provider for its status; HTTP only, no database."""
    backends = {
        slug: get_backend(slug) for slug in {i.machine.provider.slug for i in items}
    }
    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(items)))) as pool:
        return list(pool.map(
            lambda item: _status_in_thread(backends[item.machine.provider.slug], item),
            items,
        ))


def _owned(item: OrderItem, owner: str) -> QuerySet:
    """The item, if it is still submitted and this poller holds it."""
    return OrderItem.objects.filter(
        pk=item.pk, status=ItemStatus.SUBMITTED, lease_owner=owner
    )


def is_completed(outcome: Outcome) -> bool:
    """The provider finished the generation: its outputs are ready."""
    return isinstance(outcome, RemoteStatus) and outcome.state == RemoteState.COMPLETED


def settle(item: OrderItem, outcome: Outcome, owner: str) -> Step:
    """Act on one status answer; running items are renewed by the caller."""
    if isinstance(outcome, ProviderError):
        return _status_failed(item, outcome, owner)
    if outcome.state == RemoteState.COMPLETED:
        return Step.COLLECTING if start_collection(item, owner) else Step.LOST
    if outcome.state == RemoteState.FAILED:
        if not _owned(item, owner).exists():
            return Step.LOST
        fail_item(item, outcome.error or "the provider reported a failure",
                  unfinished_charge(item, outcome))
        return Step.FAILED
    if outcome.state == RemoteState.CANCELLED:
        return _cancelled(item, owner, unfinished_charge(item, outcome))
    return Step.RUNNING


def _status_failed(item: OrderItem, exc: ProviderError, owner: str) -> Step:
    if not isinstance(exc, (TransientError, ConfigurationError)):
        if not _owned(item, owner).exists():
            return Step.LOST
        fail_item(item, str(exc))
        return Step.FAILED
    # A missing key is fixed by a person, a 429 passes: poll again later.
    pause = 60.0 if isinstance(exc, ConfigurationError) else (exc.retry_after or 10.0)
    message = str(exc)[:4000]
    updated = _owned(item, owner).update(
        last_error=message, lease_until=timezone.now() + timedelta(seconds=pause),
    )
    if updated and message != item.last_error:  # one event per new problem
        ItemEvent.objects.record(item.pk, EventKind.READ, message)
    return Step.WAITING if updated else Step.LOST


def _cancelled(item: OrderItem, owner: str, charge: Charge | None = None) -> Step:
    with transaction.atomic():
        if not _owned(item, owner).cancel(frm=(ItemStatus.SUBMITTED,)):
            return Step.LOST
        settle_finished_ids([item.pk], {item.pk: charge} if charge else None)
    limits.release(item)
    refresh_order(item.order_id)
    return Step.CANCELLED


def start_collection(item: OrderItem, owner: str, *, enqueue: bool = True) -> bool:
    """Hand a finished generation to a collect job; its slot is free again."""
    return bool(start_collections([item], owner, enqueue=enqueue))


def start_collections(
    items: Sequence[OrderItem], owner: str, *, enqueue: bool = True
) -> list[OrderItem]:
    """``start_collection`` for a batch: one update, one Lua call per set of
    limits, one Redis round trip of collect jobs. Returns the items moved.

    The owner is cleared so exactly one collect job can claim each item.
    Items someone else changed meanwhile (a cancel, another foreman) are
    left alone and not returned.
    """
    if not items:
        return []
    now = timezone.now()
    ids = [item.pk for item in items]
    until = now + collect_lease()
    OrderItem.objects.filter(pk__in=ids, lease_owner=owner).to_collect(until)
    # This exact lease marks the rows this update moved: a collect job that
    # claimed one since gave it a later one.
    moved_ids = set(OrderItem.objects.filter(
        pk__in=ids, status=ItemStatus.COLLECTING, lease_owner="", lease_until=until
    ).values_list("pk", flat=True))
    moved = [item for item in items if item.pk in moved_ids]
    try:
        limits.release_many(moved)
        if enqueue:
            enqueue_collects([item.pk for item in moved])
    except RedisError:
        # No collect job was queued: make the lease run out now, so the
        # next sweep queues them instead of waiting out the collect lease.
        OrderItem.objects.filter(
            pk__in=moved_ids, status=ItemStatus.COLLECTING, lease_owner=""
        ).update(lease_until=now)
        raise
    return moved


def claim_collection(item_id: int, owner: str) -> OrderItem | None:
    """Claim an item handed over for collection; None if another job has it."""
    now = timezone.now()
    claimed = OrderItem.objects.filter(
        pk=item_id, status=ItemStatus.COLLECTING, lease_owner=""
    ).update(lease_owner=owner, lease_until=now + collect_lease(), updated_at=now)
    if not claimed:
        return None
    return OrderItem.objects.select_related("machine__provider", "order").get(pk=item_id)


def renew(items: Sequence[OrderItem], owner: str,
          poll_seconds: float | Mapping[int, float]) -> None:
    """Schedule the next poll of items still running, after ``poll_seconds``
    (one for all, or by item id); keep their slots."""
    if not items:
        return
    now = timezone.now()
    if isinstance(poll_seconds, Mapping):
        due: Any = Case(*(
            When(pk=item.pk, then=Value(now + timedelta(seconds=poll_seconds[item.pk])))
            for item in items), output_field=DateTimeField())
    else:
        due = now + timedelta(seconds=poll_seconds)
    OrderItem.objects.filter(
        pk__in=[i.pk for i in items], status=ItemStatus.SUBMITTED, lease_owner=owner
    ).update(lease_until=due)
    limits.renew(items)

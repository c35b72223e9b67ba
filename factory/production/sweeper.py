"""The sweeper: re-drives unfinished items whose lease ran out.

Redis may lose or repeat any job, so the database decides: a pending item
with no live job that is not waiting in a line, or an item whose lease ran
out, is put back on its way. Outcome-unknown submissions are looked up at
the provider before anything is resent.
Every change is a compare-and-set update, so two sweepers may overlap.
"""
import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from factory.models import EventKind, ItemEvent, ItemStatus, OrderItem
from factory.production import limits
from factory.production.finish import fail_item
from factory.production.follow import collect_lease
from factory.production.queues import (
    COLLECT_QUEUE,
    SUBMIT_QUEUE,
    enqueue_collect,
    enqueue_items,
    enqueue_submit,
    live_item_ids,
)
from factory.providers import get_backend
from factory.providers.base import ProviderError

log = logging.getLogger(__name__)
DUPLICATE_NOTE = "resubmitted after unknown outcome: possible duplicate"
BATCH = 500


@dataclass
class SweepReport:
    requeued: int = 0
    stalled: int = 0
    found: int = 0
    resubmitted: int = 0
    recollected: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _seconds(name: str) -> timedelta:
    return timedelta(seconds=getattr(settings, name))


def _expired(now: datetime) -> Q:
    return Q(lease_until__isnull=True) | Q(lease_until__lt=now)


def sweep(now: datetime | None = None) -> SweepReport:
    """One pass over every kind of stuck item; safe to run anywhere, anytime."""
    now = now or timezone.now()
    report = SweepReport(
        requeued=requeue_lost_submits(now),
        stalled=mark_stalled_submissions(now),
        recollected=requeue_lost_collections(now),
    )
    report.found, report.resubmitted = reconcile_unknown(now)
    limits.sync_slots()
    if any(report.as_dict().values()):
        log.info("sweep: %s", report.as_dict())
    return report


def requeue_lost_submits(
    now: datetime, grace: timedelta | None = None, items: QuerySet | None = None
) -> int:
    """Queue a submit job for pending ``items`` whose job was lost."""
    if grace is None:
        grace = _seconds("PRODUCTION_PENDING_GRACE_SECONDS")
    items = OrderItem.objects.all() if items is None else items
    # The grace covers the moment between a commit and its enqueue.
    # An item with a due time is the foreman's to queue when it comes.
    stale = items.filter(
        _expired(now), status=ItemStatus.PENDING, updated_at__lt=now - grace,
        due_at__isnull=True,
    ).order_by("pk").values_list("pk", flat=True)
    candidates = list(stale[:BATCH * 10])
    if not candidates:
        return 0
    # Read before the queues: an item woken meanwhile has its job queued.
    waiting = limits.waiting_item_ids()  # a released slot wakes these
    # A running submit job leaves "pending" within moments, so one still
    # listed as running for a stale pending item died with its worker; and
    # a second job for an item is harmless, the claim decides.
    live = live_item_ids(SUBMIT_QUEUE, running=False)
    lost = [pk for pk in candidates if pk not in live and pk not in waiting]
    enqueue_items(lost)
    return len(lost)


def mark_stalled_submissions(now: datetime) -> int:
    """Submitting items whose process died: their outcome is unknown."""
    stalled = list(OrderItem.objects.filter(
        status=ItemStatus.SUBMITTING, lease_until__lt=now
    ).only("pk", "lease_until")[:BATCH])
    message = "the submitting process stopped before saving a request id"
    moved = 0
    for item in stalled:
        if OrderItem.objects.filter(
            pk=item.pk, lease_until=item.lease_until
        ).outcome_unknown(message):
            ItemEvent.objects.record(item.pk, EventKind.UNKNOWN, message)
            moved += 1
    return moved


def reconcile_unknown(now: datetime) -> tuple[int, int]:
    """Look up unknown submissions; resend only after the grace period.

    Returns (found at the provider, queued again).
    """
    unknown = OrderItem.objects.filter(
        _expired(now), status=ItemStatus.SUBMIT_UNKNOWN
    ).select_related("machine__provider").order_by("pk")[:BATCH]
    found = resubmitted = 0
    for item in unknown:
        result = _find(item, now)
        found += result == "found"
        resubmitted += result == "resubmitted"
    return found, resubmitted


def _find(item: OrderItem, now: datetime) -> str:
    backend = get_backend(item.machine.provider.slug)
    unchanged = OrderItem.objects.filter(
        pk=item.pk, status=ItemStatus.SUBMIT_UNKNOWN, updated_at=item.updated_at
    )
    try:
        request_id = backend.find(
            item.machine, item.created_at, item.parameters, key=item.provider_key
        )
    except NotImplementedError:
        fail_item(item, "outcome unknown and the provider cannot list requests: "
                        "check it, then retry")
        return "failed"
    except ProviderError as exc:
        if unchanged.update(lease_until=now + timedelta(seconds=60),
                            last_error=f"lookup failed: {exc}"[:4000]):
            ItemEvent.objects.record(item.pk, EventKind.READ, f"lookup failed: {exc}")
        return "later"
    if request_id:
        # Found: nothing is wrong any more, and the history says how.
        if unchanged.accepted(request_id, frm=(ItemStatus.SUBMIT_UNKNOWN,),
                              last_error=""):
            ItemEvent.objects.record(item.pk, EventKind.RECONCILED,
                                     f"found request {request_id} at the provider")
        return "found"
    return _resubmit_after_grace(item, unchanged, now)


def _resubmit_after_grace(item: OrderItem, unchanged: QuerySet, now: datetime) -> str:
    # Providers list new requests late, so "not found" means little at first.
    grace = _seconds("PRODUCTION_UNKNOWN_GRACE_SECONDS")
    if now - item.updated_at < grace:
        unchanged.update(lease_until=now + min(grace, timedelta(seconds=30)))
        return "later"
    if not unchanged.back_to_pending(DUPLICATE_NOTE, frm=(ItemStatus.SUBMIT_UNKNOWN,)):
        return "later"
    ItemEvent.objects.record(item.pk, EventKind.RESENT, DUPLICATE_NOTE)
    log.warning("item %s: %s", item.pk, DUPLICATE_NOTE)
    limits.release(item)
    enqueue_submit(item.pk)
    return "resubmitted"


def requeue_lost_collections(now: datetime) -> int:
    """Hand collecting items whose lease ran out to a new collect job.

    The lease decides: a collect job's timeout ends before its lease
    does, so a job still listed as running then is one whose worker died.
    Collection is safe to run twice, so a slow one overtaken does no harm;
    but a job still waiting in the queue (a backlog longer than the lease)
    only gets a new lease, so a long queue is not doubled by the sweeper.
    """
    expired = list(OrderItem.objects.filter(
        status=ItemStatus.COLLECTING, lease_until__lt=now
    ).order_by("pk").values_list("pk", "lease_until")[:BATCH])
    if not expired:
        return 0
    queued = live_item_ids(COLLECT_QUEUE, running=False)
    requeued = 0
    for pk, lease_until in expired:
        if OrderItem.objects.filter(
            pk=pk, status=ItemStatus.COLLECTING, lease_until=lease_until
        ).update(lease_owner="", lease_until=now + collect_lease()) and pk not in queued:
            enqueue_collect(pk)
            requeued += 1
    return requeued

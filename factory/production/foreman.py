"""The foreman: follows every in-flight item in batches, on any host.

Each tick claims a batch of submitted items whose lease (their next poll
time) has passed, polls their providers, hands finished ones to collect
jobs and fails failed ones. Claims are row locks skipped by other foremen
on PostgreSQL and a compare-and-set update on SQLite, so several foremen
never poll the same item in the same round.
"""
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.db.models import F, Min, Q
from django.utils import timezone
from redis import RedisError

from factory.models import ItemStatus, OrderItem
from factory.production import follow
from factory.production.pacing import MIN_WAIT, Pacing, RunTimes
from factory.production.queues import rest
from factory.production.submit import queue_due_submits
from factory.production.sweeper import sweep
from factory.providers import get_backend

log = logging.getLogger(__name__)
# The shortest rest between rounds, so items another foreman holds locked
# do not make this one spin.
MIN_PAUSE_SECONDS = 0.02


@dataclass
class Tuning:
    """How often and how much a foreman polls; defaults from settings."""

    tick_seconds: float = field(
        default_factory=lambda: settings.FOREMAN_TICK_SECONDS)
    poll_seconds: float = field(
        default_factory=lambda: settings.FOREMAN_POLL_SECONDS)
    batch_size: int = field(
        default_factory=lambda: settings.FOREMAN_BATCH_SIZE)
    sweep_every: int = field(
        default_factory=lambda: settings.FOREMAN_SWEEP_EVERY)
    threads: int = field(
        default_factory=lambda: settings.FOREMAN_POLL_THREADS)
    claim_seconds: float = field(
        default_factory=lambda: settings.FOREMAN_CLAIM_SECONDS)
    max_poll_seconds: float = field(
        default_factory=lambda: settings.FOREMAN_MAX_POLL_SECONDS)
    webhook_poll_seconds: float = field(
        default_factory=lambda: settings.FOREMAN_WEBHOOK_POLL_SECONDS)
    # What this foreman learnt of each machine's run time.
    run_times: RunTimes = field(default_factory=RunTimes)

    @property
    def pacing(self) -> Pacing:
        return Pacing(self.poll_seconds, self.max_poll_seconds,
                      self.webhook_poll_seconds)


@dataclass
class TickReport:
    claimed: int = 0
    steps: dict[str, int] = field(default_factory=dict)

    def count(self, step: follow.Step, number: int = 1) -> None:
        if number:
            self.steps[step.value] = self.steps.get(step.value, 0) + number


def foreman_name() -> str:
    """The lease owner of this foreman process."""
    return f"foreman:{socket.gethostname()}:{os.getpid()}"


def _due(now: datetime) -> Q:
    return Q(status=ItemStatus.SUBMITTED) & (
        Q(lease_until__isnull=True) | Q(lease_until__lte=now)
    )


def claim_due_items(owner: str, size: int, lease: timedelta) -> list[OrderItem]:
    """Lease up to ``size`` submitted items that are due for a poll.

    Items never polled since they were accepted (no lease yet) come back
    with ``fresh`` set."""
    now = timezone.now()
    until = now + lease
    oldest_first = F("lease_until").asc(nulls_first=True)
    due = OrderItem.objects.filter(_due(now)).order_by(oldest_first, "pk")
    if connection.features.has_select_for_update_skip_locked:
        with transaction.atomic():
            rows = list(due.select_for_update(skip_locked=True)
                        .values_list("pk", "lease_until")[:size])
            ids = [pk for pk, _ in rows]
            OrderItem.objects.filter(pk__in=ids).update(
                lease_owner=owner, lease_until=until
            )
    else:
        # No row locks: repeat the due test in the update, then read back
        # the rows that carry this exact lease.
        rows = list(due.values_list("pk", "lease_until")[:size])
        ids = [pk for pk, _ in rows]
        OrderItem.objects.filter(_due(now), pk__in=ids).update(
            lease_owner=owner, lease_until=until
        )
        ids = list(OrderItem.objects.filter(
            pk__in=ids, lease_owner=owner, lease_until=until
        ).values_list("pk", flat=True))
    fresh = {pk for pk, lease_until in rows if lease_until is None}
    items = list(OrderItem.objects.filter(pk__in=ids).select_related(
        "machine__provider"
    ).order_by("pk"))
    for item in items:
        item.fresh = item.pk in fresh
    return items


def tick(owner: str, tuning: Tuning) -> TickReport:
    """Poll one batch of due items and act on what each provider says.

    Items never polled yet whose end is not expected so soon (or whose
    provider will call back) are only given their first poll time."""
    # The claim lease covers the status calls; running items then get the
    # next poll time from their pacing. A foreman that dies mid-poll holds
    # its batch until this lease runs out.
    lease = timedelta(seconds=max(tuning.claim_seconds, tuning.poll_seconds))
    items = claim_due_items(owner, tuning.batch_size, lease)
    report = TickReport(claimed=len(items))
    if not items:
        return report
    now, pacing = timezone.now(), tuning.pacing
    webhooks = {slug: get_backend(slug).sends_webhooks
                for slug in {item.machine.provider.slug for item in items}}

    def ran(item: OrderItem) -> float:
        return (now - item.submitted_at).total_seconds() if item.submitted_at else 0.0

    def known(item: OrderItem) -> tuple[float | None, bool]:
        return (tuning.run_times.typical(item.machine),
                webhooks[item.machine.provider.slug])

    waits: dict[int, float] = {}
    for item in items:
        if getattr(item, "fresh", False):
            wait = pacing.first_poll(ran(item), *known(item))
            if wait > MIN_WAIT:
                waits[item.pk] = wait
    later = [item for item in items if item.pk in waits]
    report.count(follow.Step.RUNNING, len(later))
    items = [item for item in items if item.pk not in waits]
    outcomes = follow.poll_statuses(items, threads=tuning.threads)
    running, finished = list(later), []
    try:
        for item, outcome in zip(items, outcomes):
            if follow.is_completed(outcome):
                tuning.run_times.record(item.machine_id, item.submitted_at, now)
                finished.append(item)  # handed on together below
                continue
            step = follow.settle(item, outcome, owner)
            report.count(step)
            if step == follow.Step.RUNNING:
                running.append(item)
                waits[item.pk] = pacing.next_poll(outcome, ran(item), *known(item))
        moved = follow.start_collections(finished, owner)
        follow.renew(running, owner, waits)
    except (DatabaseError, RedisError):
        # Otherwise the rest of the batch would wait out the claim lease.
        hand_back(items + later, owner, tuning.poll_seconds)
        raise
    report.count(follow.Step.COLLECTING, len(moved))
    report.count(follow.Step.LOST, len(finished) - len(moved))
    return report


def hand_back(items: list[OrderItem], owner: str, poll_seconds: float) -> None:
    """Make the claimed items still ours due again after one poll interval."""
    try:
        OrderItem.objects.filter(
            pk__in=[i.pk for i in items], status=ItemStatus.SUBMITTED, lease_owner=owner
        ).update(lease_owner="",
                 lease_until=timezone.now() + timedelta(seconds=poll_seconds))
    except DatabaseError:
        log.warning("%s: could not hand back %s items", owner, len(items))


def is_idle() -> bool:
    """Nothing left for workers, the foreman or the sweeper to drive."""
    return not OrderItem.objects.unfinished().exists()


def _round(owner: str, tuning: Tuning, sweeping: bool) -> TickReport:
    if sweeping:
        sweep()
    queue_due_submits()
    return tick(owner, tuning)


def run_foreman(
    tuning: Tuning | None = None, *, owner: str = "", until_idle: bool = False,
    max_seconds: float | None = None, should_stop: Callable[[], bool] = lambda: False,
) -> int:
    """Tick until stopped, idle (if asked) or out of time; returns ticks run."""
    tuning = tuning or Tuning()
    tuning.sweep_every = max(1, tuning.sweep_every)
    owner = owner or foreman_name()
    deadline = time.monotonic() + max_seconds if max_seconds else float("inf")
    ticks = 0
    while not should_stop() and time.monotonic() < deadline:
        sweeping = ticks % tuning.sweep_every == 0
        ticks += 1
        try:
            report = _round(owner, tuning, sweeping)
            if until_idle and is_idle():
                break
        except (DatabaseError, RedisError):
            # Outages pass; the leases taken so far simply run out.
            log.exception("%s: tick failed, retrying", owner)
            close_old_connections()
            report = TickReport()
        if set(report.steps) - {follow.Step.RUNNING.value}:
            log.info("%s: %s", owner, report.steps)
        if report.claimed < tuning.batch_size:
            rest(pause(tuning))
    return ticks


def pause(tuning: Tuning) -> float:
    """Seconds to rest: until the next item falls due, at most one tick.

    Waking for the next due poll rather than on a fixed beat means a
    finished generation is seen within its poll interval, not a tick later.
    """
    try:
        next_due = OrderItem.objects.filter(
            status=ItemStatus.SUBMITTED, lease_until__isnull=False
        ).aggregate(Min("lease_until"))["lease_until__min"]
    except DatabaseError:
        return tuning.tick_seconds
    if next_due is None:
        return tuning.tick_seconds
    until = (next_due - timezone.now()).total_seconds()
    return min(tuning.tick_seconds, max(MIN_PAUSE_SECONDS, until))

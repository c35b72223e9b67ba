"""Poll pacing: status calls follow what is known of each generation."""
import threading
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from factory.models import ItemStatus, OrderItem
from factory.production import queues
from factory.production.foreman import Tuning, tick
from factory.production.pacing import MIN_WAIT, Pacing, RunTimes
from factory.providers.base import RemoteState, RemoteStatus
from tests.factory.production.test_foreman import place_demo, submitted_item

PACING = Pacing(poll=2.0, ceiling=30.0, fallback=15.0)
RUNNING = RemoteStatus(RemoteState.RUNNING)


def queued(position: int) -> RemoteStatus:
    return RemoteStatus(RemoteState.QUEUED, queue_position=position)


@pytest.mark.parametrize("status, ran, typical, expected", [
    (queued(0), 0.0, None, 2.0),           # front of the line: the interval
    (queued(8), 0.0, None, 6.0),           # 8 ahead: two intervals more
    (queued(400), 0.0, None, 30.0),        # far back: the ceiling
    (RUNNING, 1.0, 5.0, 4.0),              # at the expected end
    (RUNNING, 4.9, 5.0, 0.2),              # never sooner than MIN_WAIT
    (RUNNING, 6.0, 5.0, 2.0),              # overdue: the interval
    (RUNNING, 100.0, None, 10.0),          # long run: a tenth of it
    (RUNNING, 1000.0, None, 30.0),         # ... up to the ceiling
])
def test_next_poll_without_webhooks(status, ran, typical, expected):
    assert PACING.next_poll(status, ran, typical, webhook=False) == pytest.approx(expected)


def test_with_a_webhook_coming_polls_wait_for_the_fallback():
    assert PACING.next_poll(RUNNING, 1.0, 5.0, webhook=True) == 15.0
    assert PACING.next_poll(RUNNING, 1000.0, None, webhook=True) == 30.0
    slow_fallback = Pacing(poll=2.0, ceiling=30.0, fallback=60.0)
    assert slow_fallback.next_poll(RUNNING, 1.0, None, webhook=True) == 60.0


def test_first_poll_waits_for_the_expected_end_or_asks_now():
    assert PACING.first_poll(0.5, 5.0, webhook=False) == pytest.approx(4.5)
    assert PACING.first_poll(0.5, None, webhook=False) == 0.0
    assert PACING.first_poll(9.0, 5.0, webhook=False) == 0.0
    assert PACING.first_poll(0.5, None, webhook=True) == 15.0


def test_a_poll_interval_below_the_floor_is_kept():
    fast = Pacing(poll=0.05, ceiling=30.0, fallback=15.0)
    assert fast.next_poll(RUNNING, 5.0, None, webhook=False) == 0.5
    assert fast.next_poll(RUNNING, 0.0, None, webhook=False) == 0.05
    assert MIN_WAIT > 0.05


def test_run_times_learn_the_median_after_a_few_and_fall_back_to_the_catalog():
    machine = SimpleNamespace(pk=7, typical_run_seconds=None)
    catalog = SimpleNamespace(pk=8, typical_run_seconds=12)
    times, now = RunTimes(), timezone.now()
    assert times.typical(machine) is None
    assert times.typical(catalog) == 12.0
    for seconds in (4.0, 9.0):
        times.record(7, now - timedelta(seconds=seconds), now)
    assert times.typical(machine) is None  # two are not enough
    times.record(7, now - timedelta(seconds=5.0), now)
    times.record(7, None, now)  # never submitted: ignored
    assert times.typical(machine) == pytest.approx(5.0)


@pytest.mark.django_db(transaction=True)
def test_a_fresh_item_of_a_known_machine_is_scheduled_not_polled(
    catalog, redis_db, lead, settings, monkeypatch
):
    settings.DEMO_LATENCY_SECONDS = 30
    order = place_demo(lead, runs=1)
    item = submitted_item(order)
    OrderItem.objects.filter(pk=item.pk).update(
        lease_until=None, submitted_at=timezone.now() - timedelta(seconds=1))
    tuning = Tuning(tick_seconds=0, poll_seconds=2.0, batch_size=10)
    for seconds in (6.0, 6.0, 6.0):
        tuning.run_times.record(item.machine_id, timezone.now() - timedelta(seconds=seconds),
                                timezone.now())
    calls = []
    monkeypatch.setattr("factory.production.follow.poll_statuses",
                        lambda items, threads: calls.append(items) or [])

    report = tick("foreman:test", tuning)

    assert calls == [[]] and report.steps == {"running": 1}
    item.refresh_from_db()
    due_in = (item.lease_until - timezone.now()).total_seconds()
    assert item.status == ItemStatus.SUBMITTED
    assert 4.0 < due_in <= 5.0  # 6 s typical, 1 s gone


@pytest.mark.django_db(transaction=True)
def test_a_finished_item_teaches_the_foreman_its_run_time(
    catalog, redis_db, lead, settings
):
    settings.DEMO_LATENCY_SECONDS = 0
    order = place_demo(lead, runs=3)
    tuning = Tuning(tick_seconds=0, poll_seconds=2.0, batch_size=10)
    for index in range(3):
        item = submitted_item(order, index)
        OrderItem.objects.filter(pk=item.pk).update(
            lease_until=None, submitted_at=timezone.now() - timedelta(seconds=3))

    report = tick("foreman:test", tuning)

    assert report.steps == {"collecting": 3}
    machine = order.machine
    assert tuning.run_times.typical(machine) == pytest.approx(3.0, abs=0.5)


def test_a_wake_cuts_a_rest_short(redis_db):
    threading.Timer(0.2, queues.wake_foremen).start()
    started = time.monotonic()
    assert queues.rest(5.0) is True
    assert time.monotonic() - started < 1.0
    # The wake is used up: the next rest runs its course.
    started = time.monotonic()
    assert queues.rest(0.3) is False
    assert time.monotonic() - started >= 0.25

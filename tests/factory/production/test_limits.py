"""Concurrency slots, 429 cool-downs and transient retries."""
import time
from datetime import timedelta

import django_rq
import pytest
from django.utils import timezone
from rq import SimpleWorker

from factory.models import (
    FactoryMachine,
    ItemStatus,
    Order,
    OrderItem,
    OrderStatus,
    Provider,
)
from factory.ordering import place_order
from factory.production import limits
from factory.production.queues import SUBMIT_QUEUE, live_item_ids
from factory.production.submit import queue_due_submits, start_submission
from factory.providers.base import PermanentError, TransientError
from factory.providers.demo import DemoBackend
from tests.factory.production.test_foreman import drive, place_demo

pytestmark = pytest.mark.django_db(transaction=True)


def items(order) -> list[OrderItem]:
    return list(order.items.select_related("machine__provider").order_by("index"))


def due_later() -> dict[int, float]:
    """Pending items with a due time, and the seconds until it comes."""
    now = timezone.now()
    return {pk: (due - now).total_seconds() for pk, due in OrderItem.objects.filter(
        status=ItemStatus.PENDING, due_at__isnull=False).values_list("pk", "due_at")}


def test_slots_follow_the_provider_and_the_machine_limits(catalog, redis_db, lead):
    Provider.objects.filter(slug="demo").update(concurrency_limit=3)
    FactoryMachine.objects.filter(slug="demo-image").update(concurrency_limit=2)
    first, second, third = items(place_demo(lead, runs=3))

    assert limits.acquire(first) is True
    assert limits.acquire(second) is True
    assert limits.acquire(third) is False  # the machine's limit of 2
    assert limits.acquire(first) is True  # holding a slot is no second slot
    limits.release(first)
    assert limits.acquire(third) is True
    assert ("provider:demo", 2, 3) in limits.usage()
    assert ("machine:demo-image", 2, 2) in limits.usage()


def test_a_slot_nobody_renews_expires(catalog, redis_db, lead, settings):
    Provider.objects.filter(slug="demo").update(concurrency_limit=1)
    settings.PRODUCTION_SLOT_SECONDS = 0.2
    first, second = items(place_demo(lead, runs=2))
    assert limits.acquire(first)
    assert not limits.acquire(second)

    time.sleep(0.25)

    assert limits.acquire(second)


def test_an_item_without_a_slot_waits_in_line_until_a_slot_is_given_back(
    catalog, redis_db, lead
):
    Provider.objects.filter(slug="demo").update(concurrency_limit=1)
    first, second, third = items(place_demo(lead, runs=3))
    redis_db.flushdb()

    start_submission(first.pk)
    start_submission(third.pk)
    start_submission(second.pk)

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == ItemStatus.SUBMITTED
    assert (second.status, second.attempts, second.lease_owner) == (
        ItemStatus.PENDING, 0, "")
    # Waiting holds no job, no timer: the line is the only trace.
    assert live_item_ids(SUBMIT_QUEUE) == set()
    assert due_later() == {}
    assert limits.waiting_item_ids() == {second.pk, third.pk}

    # The slot given back wakes the oldest waiting item, and only it.
    assert limits.release(first) == [second.pk]
    assert live_item_ids(SUBMIT_QUEUE) == {second.pk}
    assert limits.waiting_item_ids() == {third.pk}


def test_an_item_waits_only_for_the_limit_that_is_full(catalog, redis_db, lead):
    Provider.objects.filter(slug="demo").update(concurrency_limit=2)
    FactoryMachine.objects.filter(slug="demo-image").update(concurrency_limit=1)
    image_a, image_b = items(place_demo(lead, runs=2))
    video = items(place_order(Order.objects.create(
        machine=FactoryMachine.objects.get(slug="demo-video"), prompt="rain",
        created_by=lead,
    )))[0]
    redis_db.flushdb()

    assert limits.acquire(image_a)
    assert not limits.acquire(image_b)  # the image machine's one slot is taken
    assert limits.acquire(video)  # the provider's second slot
    # A provider slot given back wakes nobody: image_b waits for its machine.
    assert limits.release(video) == []
    assert limits.waiting_item_ids() == {image_b.pk}
    assert limits.release(image_a) == [image_b.pk]


def test_the_sweeper_wakes_waiting_items_when_slots_expire(
    catalog, redis_db, lead, settings
):
    Provider.objects.filter(slug="demo").update(concurrency_limit=1)
    settings.PRODUCTION_SLOT_SECONDS = 0.2
    first, second = items(place_demo(lead, runs=2))
    redis_db.flushdb()
    assert limits.acquire(first)  # held by an item that is not in flight
    assert not limits.acquire(second)

    time.sleep(0.25)

    assert limits.wake_waiting() == [second.pk]
    assert live_item_ids(SUBMIT_QUEUE) == {second.pk}


def test_never_more_than_two_items_in_flight_with_a_limit_of_two(
    catalog, redis_db, lead, settings, monkeypatch
):
    settings.DEMO_LATENCY_SECONDS = 0.2
    Provider.objects.filter(slug="demo").update(concurrency_limit=2)
    in_flight_at_submit: list[int] = []
    real_submit = DemoBackend.submit

    def watched_submit(self, machine, params, *, key=None):
        in_flight_at_submit.append(OrderItem.objects.filter(
            status__in=(ItemStatus.SUBMITTING, ItemStatus.SUBMITTED)).count())
        return real_submit(self, machine, params, key=key)

    monkeypatch.setattr(DemoBackend, "submit", watched_submit)
    peaks: list[int] = []
    order = place_demo(lead, runs=8)

    drive(each_round=lambda: peaks.append(
        OrderItem.objects.filter(status=ItemStatus.SUBMITTED).count()))

    order.refresh_from_db()
    assert order.status == OrderStatus.DONE
    assert len(in_flight_at_submit) == 8
    assert max(in_flight_at_submit) == 2
    assert max(peaks) <= 2
    assert set(order.items.values_list("attempts", flat=True)) == {1}


def test_placing_queues_jobs_only_for_free_slots_and_lines_up_the_rest(
    catalog, redis_db, lead, settings, monkeypatch
):
    settings.DEMO_LATENCY_SECONDS = 0.1
    Provider.objects.filter(slug="demo").update(concurrency_limit=3)
    ran: list[int] = []
    real = start_submission
    monkeypatch.setattr("factory.production.jobs.start_submission",
                        lambda pk: ran.append(pk) or real(pk))
    order = place_demo(lead, runs=10)
    ids = [item.pk for item in items(order)]

    # The three oldest get a job each; the other seven wait, holding none.
    assert live_item_ids(SUBMIT_QUEUE) == set(ids[:3])
    assert limits.waiting_item_ids() == set(ids[3:])

    drive()

    order.refresh_from_db()
    assert order.status == OrderStatus.DONE
    # One submit job per item: none found the slots taken and returned.
    assert sorted(ran) == ids
    assert limits.waiting_item_ids() == set()


def test_retried_items_are_lined_up_too(catalog, redis_db, lead, settings):
    from factory.production.retry import retry_failed_items

    Provider.objects.filter(slug="demo").update(concurrency_limit=2)
    order = place_demo(lead, runs=5)
    redis_db.flushdb()
    OrderItem.objects.filter(order=order).update(
        status=ItemStatus.FAILED, last_error="the provider reported a failure")

    attempts = retry_failed_items(OrderItem.objects.filter(order=order), user=lead)

    new = sorted(attempt.pk for attempt in attempts)
    assert len(live_item_ids(SUBMIT_QUEUE)) == 2
    assert live_item_ids(SUBMIT_QUEUE) | limits.waiting_item_ids() == set(new)


def test_429_pauses_the_provider_instead_of_failing_the_item(
    catalog, redis_db, lead, monkeypatch
):
    first, second = items(place_demo(lead, runs=2))
    redis_db.flushdb()

    def rate_limited(self, machine, params, *, key=None):
        raise TransientError("demo submit: HTTP 429: slow down", retry_after=30)

    monkeypatch.setattr(DemoBackend, "submit", rate_limited)
    start_submission(first.pk)
    monkeypatch.undo()
    start_submission(second.pk)

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == ItemStatus.PENDING
    assert first.attempts == 0  # refused, so nothing was spent
    assert first.last_error.startswith("rate limited, retry in 30s")
    assert 29 < limits.cooldown_remaining("demo") <= 30
    assert (second.status, second.attempts) == (ItemStatus.PENDING, 0)
    # Both wait in the database, not in a Redis timer: no job until due.
    assert live_item_ids(SUBMIT_QUEUE) == set()
    waits = due_later()
    assert set(waits) == {first.pk, second.pk}
    assert 29 < waits[first.pk] <= 30 and 29 < waits[second.pk] <= 38
    assert queue_due_submits() == 0
    assert queue_due_submits(timezone.now() + timedelta(seconds=40)) == 2
    assert live_item_ids(SUBMIT_QUEUE) == {first.pk, second.pk}
    assert due_later() == {}
    assert ("provider:demo", 0, 8) in limits.usage()


def test_a_cool_down_is_never_shortened(redis_db):
    limits.slow_down("fal", 30)
    limits.slow_down("fal", 5)

    assert limits.cooldown_remaining("fal") > 29
    assert limits.cooldown_remaining("replicate") == 0


def test_transient_errors_retry_with_backoff_up_to_the_provider_limit(
    catalog, redis_db, lead, settings, monkeypatch
):
    settings.PRODUCTION_MAX_RETRIES = {"demo": 2, "default": 9}
    settings.PRODUCTION_RETRY_DELAYS = (0.01, 0.01, 0.01)
    [item] = items(place_demo(lead, runs=1))

    def timeout(self, machine, params, *, key=None):
        raise TransientError("demo submit: connect timeout")

    monkeypatch.setattr(DemoBackend, "submit", timeout)
    worker = django_rq.get_worker(SUBMIT_QUEUE, worker_class=SimpleWorker)
    for _ in range(3):
        worker.work(burst=True)
        queue_due_submits(timezone.now() + timedelta(seconds=1))
        item.refresh_from_db()
        if item.status == ItemStatus.FAILED:
            break
        assert item.status == ItemStatus.PENDING
        time.sleep(0.02)

    item.refresh_from_db()
    assert item.status == ItemStatus.FAILED
    assert item.attempts == 3
    assert item.last_error == "gave up after 3 attempts: demo submit: connect timeout"
    assert list(item.events.values_list("kind", "message")) == [
        ("retry", "attempt 1: demo submit: connect timeout; retry in 0.01s"),
        ("retry", "attempt 2: demo submit: connect timeout; retry in 0.01s"),
        ("failed", "gave up after 3 attempts: demo submit: connect timeout"),
    ]
    assert ("provider:demo", 0, 8) in limits.usage()


def test_a_permanent_error_fails_the_item_with_the_provider_message(
    catalog, redis_db, lead, monkeypatch
):
    order = place_demo(lead, runs=1)
    [item] = items(order)

    def refused(self, machine, params, *, key=None):
        raise PermanentError("demo submit: HTTP 422: width must be a multiple of 8")

    monkeypatch.setattr(DemoBackend, "submit", refused)
    start_submission(item.pk)

    item.refresh_from_db()
    order.refresh_from_db()
    assert item.status == ItemStatus.FAILED
    assert item.last_error == "demo submit: HTTP 422: width must be a multiple of 8"
    assert order.status == OrderStatus.DONE_WITH_FAILURES
    assert ("provider:demo", 0, 8) in limits.usage()


@pytest.mark.parametrize("redis_restart", ["keeps data", "loses data"])
def test_a_retry_survives_a_redis_restart_without_any_scheduler(
    catalog, redis_db, lead, settings, monkeypatch, redis_restart
):
    settings.PRODUCTION_RETRY_DELAYS = (0.3,)
    settings.DEMO_LATENCY_SECONDS = 0.1
    order = place_demo(lead, runs=1)
    [item] = items(order)
    real_submit = DemoBackend.submit
    calls = []

    def flaky(self, machine, params, *, key=None):
        calls.append(key)
        if len(calls) == 1:
            raise TransientError("demo submit: HTTP 503: try again")
        return real_submit(self, machine, params, key=key)

    monkeypatch.setattr(DemoBackend, "submit", flaky)
    start_submission(item.pk)
    item.refresh_from_db()
    assert (item.status, item.attempts) == (ItemStatus.PENDING, 1)
    assert item.due_at is not None
    # Nothing in Redis holds the retry, so a restart cannot lose it.
    assert django_rq.get_queue(SUBMIT_QUEUE).scheduled_job_registry.count == 0
    if redis_restart == "loses data":
        redis_db.flushdb()

    drive(max_seconds=20)

    item.refresh_from_db()
    assert (item.status, item.attempts, item.due_at) == (
        ItemStatus.COMPLETED, 2, None)
    assert len(calls) == 2

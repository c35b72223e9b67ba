"""The sweeper re-drives items whose job or process was lost."""
import time
from datetime import timedelta

import django_rq
import pytest
from django.utils import timezone
from rq import SimpleWorker

from factory.models import EventKind, ItemStatus, OrderItem, OrderStatus, Product
from factory.production import limits
from factory.production.queues import COLLECT_QUEUE, SUBMIT_QUEUE, live_item_ids
from factory.production.sweeper import DUPLICATE_NOTE, sweep
from factory.providers.demo import DemoBackend
from tests.factory.production.test_foreman import drive, place_demo, submitted_item
from tests.states import put

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def quick(settings):
    settings.DEMO_LATENCY_SECONDS = 0.2
    settings.PRODUCTION_PENDING_GRACE_SECONDS = 0


@pytest.fixture
def count_submissions(monkeypatch) -> list[str]:
    """Every paid call the demo provider receives, by prompt and seed."""
    calls: list[str] = []
    real_submit = DemoBackend.submit

    def counting_submit(self, machine, params, *, key=None):
        calls.append(key)
        return real_submit(self, machine, params, key=key)

    monkeypatch.setattr(DemoBackend, "submit", counting_submit)
    return calls


def test_flushed_redis_after_placing_is_recovered_without_duplicates(
    catalog, redis_db, lead, quick, count_submissions
):
    from factory.production.limits import waiting_item_ids

    order = place_demo(lead, runs=20)
    # Jobs for the demo provider's 8 slots, the other 12 waiting in its line.
    assert len(live_item_ids(SUBMIT_QUEUE)) == 8
    assert live_item_ids(SUBMIT_QUEUE) | waiting_item_ids() == set(
        order.items.values_list("pk", flat=True))
    redis_db.flushdb()  # Redis restarted without persistence
    assert live_item_ids(SUBMIT_QUEUE) == waiting_item_ids() == set()

    drive()

    order.refresh_from_db()
    assert order.status == OrderStatus.DONE
    assert len(count_submissions) == len(set(count_submissions)) == 20
    assert set(order.items.values_list("attempts", flat=True)) == {1}
    assert Product.objects.filter(item__order=order).count() == 20


def test_pending_items_with_a_live_job_are_left_alone(catalog, redis_db, lead, quick):
    place_demo(lead, runs=3)
    queue = django_rq.get_queue(SUBMIT_QUEUE)

    assert sweep().requeued == 0
    assert queue.count == 3


def test_items_waiting_for_a_slot_are_left_alone_until_a_flush_loses_the_line(
    catalog, redis_db, lead, quick
):
    from factory.models import Provider
    from factory.production.submit import start_submission

    Provider.objects.filter(slug="demo").update(concurrency_limit=1)
    order = place_demo(lead, runs=3)
    redis_db.flushdb()
    for item in order.items.order_by("index"):
        start_submission(item.pk)
    assert limits.waiting_item_ids() == set(
        order.items.filter(status=ItemStatus.PENDING).values_list("pk", flat=True))
    assert len(limits.waiting_item_ids()) == 2

    assert sweep().requeued == 0  # waiting is alive: no job, but in line

    slots = limits.connection().keys(limits.PREFIX + "slots:*")
    limits.connection().delete(*limits.connection().keys(limits.PREFIX + "waiting:*"))
    assert slots  # the slot of the submitted item survives; the line is gone
    assert sweep().requeued == 2
    assert live_item_ids(SUBMIT_QUEUE) == set(
        order.items.filter(status=ItemStatus.PENDING).values_list("pk", flat=True))


def test_pending_items_inside_the_grace_period_are_left_alone(
    catalog, redis_db, lead, settings
):
    settings.PRODUCTION_PENDING_GRACE_SECONDS = 60
    place_demo(lead, runs=3)
    redis_db.flushdb()

    assert sweep().requeued == 0
    assert sweep(timezone.now() + timedelta(seconds=61)).requeued == 3


def test_a_submission_whose_process_died_is_found_at_the_provider(
    catalog, redis_db, lead, count_submissions
):
    order = place_demo(lead, runs=1)
    item = order.items.select_related("machine__provider").get()
    request_id = DemoBackend().submit(item.machine, item.parameters)
    # The worker made the call, then died before saving the request id.
    OrderItem.objects.filter(pk=item.pk).update(
        status=ItemStatus.SUBMITTING, attempts=1,
        lease_until=timezone.now() - timedelta(seconds=1),
    )

    report = sweep()

    item.refresh_from_db()
    assert (report.stalled, report.found, report.resubmitted) == (1, 1, 0)
    assert item.status == ItemStatus.SUBMITTED
    assert item.request_id == request_id
    assert item.last_error == ""  # found: nothing is wrong now
    assert list(item.events.values_list("kind", "message")) == [
        (EventKind.UNKNOWN, "the submitting process stopped before saving a request id"),
        (EventKind.RECONCILED, f"found request {request_id} at the provider"),
    ]
    assert len(count_submissions) == 1


def test_an_unknown_submission_waits_out_the_grace_period_before_resending(
    catalog, redis_db, lead, settings, count_submissions
):
    settings.PRODUCTION_UNKNOWN_GRACE_SECONDS = 600
    order = place_demo(lead, runs=1)
    redis_db.flushdb()
    item = order.items.get()
    OrderItem.objects.filter(pk=item.pk).update(
        status=ItemStatus.SUBMIT_UNKNOWN, attempts=1, last_error="read timed out"
    )

    assert sweep().resubmitted == 0
    item.refresh_from_db()
    assert item.status == ItemStatus.SUBMIT_UNKNOWN
    assert item.lease_until > timezone.now()

    later = timezone.now() + timedelta(seconds=601)
    assert sweep(later).resubmitted == 1

    item.refresh_from_db()
    assert item.status == ItemStatus.PENDING
    assert item.last_error == DUPLICATE_NOTE
    assert live_item_ids(SUBMIT_QUEUE) == {item.pk}
    django_rq.get_worker(SUBMIT_QUEUE, worker_class=SimpleWorker).work(burst=True)
    item.refresh_from_db()
    assert (item.status, item.attempts) == (ItemStatus.SUBMITTED, 2)
    assert len(count_submissions) == 1
    put(item, ItemStatus.COLLECTING)
    assert OrderItem.objects.filter(pk=item.pk).complete() == 1
    item.refresh_from_db()
    # Completed: nothing is wrong now, and the history survives completion.
    assert item.last_error == ""
    assert list(item.events.values_list("kind", "message")) == [
        (EventKind.RESENT, DUPLICATE_NOTE)]


def test_a_lost_collect_job_is_queued_again(catalog, redis_db, lead):
    item = submitted_item(place_demo(lead, runs=1))
    OrderItem.objects.filter(pk=item.pk).update(
        status=ItemStatus.COLLECTING, lease_owner="host:123",
        lease_until=timezone.now() - timedelta(seconds=1),
    )

    assert sweep().recollected == 1
    assert sweep().recollected == 0  # a fresh lease

    item.refresh_from_db()
    assert item.lease_owner == ""
    assert live_item_ids(COLLECT_QUEUE) == {item.pk}
    django_rq.get_worker(COLLECT_QUEUE, worker_class=SimpleWorker).work(burst=True)
    item.refresh_from_db()
    assert item.status == ItemStatus.COMPLETED


def test_a_collection_still_waiting_in_the_queue_is_not_queued_twice(
    catalog, redis_db, lead
):
    """A collect backlog longer than the lease: the waiting job gets a new
    lease instead of a twin, so the sweeper never doubles a long queue."""
    item = submitted_item(place_demo(lead, runs=1))
    queue = django_rq.get_queue(COLLECT_QUEUE)
    queue.enqueue("factory.production.jobs.collect_item", item.pk,
                  job_id=f"collect-{item.pk}-waiting")
    expired = timezone.now() - timedelta(seconds=1)
    OrderItem.objects.filter(pk=item.pk).update(
        status=ItemStatus.COLLECTING, lease_owner="", lease_until=expired)

    assert sweep().recollected == 0

    assert [j.id for j in queue.jobs] == [f"collect-{item.pk}-waiting"]
    item.refresh_from_db()
    assert item.lease_until > timezone.now()  # renewed, not re-driven each sweep
    queue.empty()  # the job was lost after all: the next expiry re-drives it
    OrderItem.objects.filter(pk=item.pk).update(lease_until=expired)
    assert sweep().recollected == 1
    assert len(queue.jobs) == 1


def started(queue, job, expires_in: float) -> None:
    """List ``job`` as running, as a worker does, until ``expires_in``."""
    queue.connection.zadd(queue.started_job_registry.key,
                          {f"{job.id}:execution": time.time() + expires_in})


def test_a_collection_whose_worker_died_is_queued_again_despite_its_stale_entry(
    catalog, redis_db, lead, settings
):
    """A SIGKILLed worker leaves its job in RQ's started registry; the
    lease, not that entry, decides when the item is handed on."""
    settings.PRODUCTION_COLLECT_LEASE_SECONDS = 30
    item = submitted_item(place_demo(lead, runs=1))
    queue = django_rq.get_queue(COLLECT_QUEUE)
    job = queue.enqueue("factory.production.jobs.collect_item", item.pk,
                        job_id=f"collect-{item.pk}-dead")
    assert job.timeout == 600  # the queue's default; ours below follows the lease
    queue.remove(job)
    started(queue, job, expires_in=3600)  # a dead worker's leftover
    assert live_item_ids(COLLECT_QUEUE) == {item.pk}
    OrderItem.objects.filter(pk=item.pk).update(
        status=ItemStatus.COLLECTING, lease_owner="host:dead",
        lease_until=timezone.now() - timedelta(seconds=1),
    )

    assert sweep().recollected == 1

    fresh = [j for j in queue.jobs if j.id != job.id]
    assert [j.args for j in fresh] == [(item.pk,)]
    assert fresh[0].timeout == 30  # stopped before the new lease runs out


def test_an_expired_running_entry_is_no_live_job(catalog, redis_db, lead):
    item = submitted_item(place_demo(lead, runs=1))
    queue = django_rq.get_queue(SUBMIT_QUEUE)
    queue.empty()  # the order's own submit job
    job = queue.enqueue("factory.production.jobs.submit_item", item.pk,
                        job_id=f"submit-{item.pk}-dead")
    queue.remove(job)
    started(queue, job, expires_in=60)
    assert live_item_ids(SUBMIT_QUEUE) == {item.pk}
    started(queue, job, expires_in=-1)  # its worker stopped renewing it
    assert live_item_ids(SUBMIT_QUEUE) == set()


def test_sweep_restores_slots_a_flush_lost_and_drops_stale_ones(
    catalog, redis_db, lead
):
    order = place_demo(lead, runs=3)
    running, done, _ = order.items.select_related("machine__provider")
    put(running, ItemStatus.SUBMITTED, request_id="demo-x")
    assert limits.acquire(done)
    OrderItem.objects.filter(pk=done.pk).update(status=ItemStatus.COMPLETED)
    redis_db.delete(limits.provider_scope(running.machine.provider).key)
    assert limits.acquire(done)

    sweep()

    assert ("provider:demo", 1, 8) in limits.usage()
    key = limits.provider_scope(running.machine.provider).key
    assert redis_db.zrange(key, 0, -1) == [str(running.pk).encode()]


def test_a_claim_for_submitting_counts_the_attempt_in_the_same_write(
    catalog, redis_db, lead, quick
):
    order = place_demo(lead, runs=1)
    item = order.items.get()
    # A process that dies right after this write has still counted its try.
    claimed = OrderItem.objects.claim(
        item.pk, frm=(ItemStatus.PENDING,), to=ItemStatus.SUBMITTING,
        owner="gone:1", attempt=True,
    )
    assert claimed.attempts == 1
    assert OrderItem.objects.values_list("status", "attempts").get(pk=item.pk) == (
        ItemStatus.SUBMITTING, 1)
    assert OrderItem.objects.claim(
        item.pk, frm=(ItemStatus.PENDING,), to=ItemStatus.SUBMITTING,
        owner="late:2", attempt=True,
    ) is None
    assert OrderItem.objects.get(pk=item.pk).attempts == 1

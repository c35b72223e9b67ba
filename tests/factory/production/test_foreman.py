"""The foreman follows submitted items in batches and hands them on."""
import subprocess
import sys
import threading
import time
from datetime import timedelta

import django_rq
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rq import SimpleWorker

from factory.models import (
    FactoryMachine,
    ItemStatus,
    Order,
    OrderItem,
    OrderStatus,
    Product,
    Provider,
    SeedStrategy,
)
from factory.ordering import place_order
from factory.production import follow
from factory.production.foreman import (
    MIN_PAUSE_SECONDS,
    Tuning,
    claim_due_items,
    is_idle,
    pause,
    tick,
)
from factory.production.queues import COLLECT_QUEUE, enqueue_follow
from factory.production.submit import queue_due_submits
from factory.production.sweeper import sweep
from factory.providers.base import RemoteState, RemoteStatus, TransientError
from factory.providers.demo import DemoBackend
from tests.conftest import ROOT, worker_env
from tests.states import put

QUEUES = ("submit", "collect", "default")
FAST = Tuning(tick_seconds=0.05, poll_seconds=0.1, batch_size=50, sweep_every=1)


def place_demo(user, runs: int = 2, **fields) -> Order:
    """Place a small demo image order; its submit jobs go to Redis."""
    order = Order.objects.create(
        machine=FactoryMachine.objects.get(slug="demo-image"),
        prompt="a lighthouse at dusk", base_parameters={"width": 64, "height": 64},
        runs=runs, seed_strategy=SeedStrategy.INCREMENT, seed=1, created_by=user,
        **fields,
    )
    return place_order(order)


def drive(max_seconds: float = 60, tuning: Tuning = FAST, each_round=None) -> int:
    """Workers and a foreman, in this process, until nothing is unfinished."""
    deadline = time.monotonic() + max_seconds
    rounds = 0
    while not is_idle():
        assert time.monotonic() < deadline, OrderItem.objects.progress()
        worker = django_rq.get_worker(*QUEUES, worker_class=SimpleWorker)
        worker.work(burst=True)
        queue_due_submits()  # as each of the foreman's rounds does
        sweep()
        tick("foreman:test", tuning)
        if each_round:
            each_round()
        rounds += 1
        time.sleep(tuning.tick_seconds)
    return rounds


def submitted_item(order: Order, index: int = 0) -> OrderItem:
    """Submit one of the order's items to the demo provider by hand."""
    item = order.items.select_related("machine__provider").get(index=index)
    request_id = DemoBackend().submit(item.machine, item.parameters)
    put(item, ItemStatus.SUBMITTED, request_id=request_id)
    return item


@pytest.fixture
def fast_demo(settings):
    settings.DEMO_LATENCY_SECONDS = 0.2
    settings.PRODUCTION_PENDING_GRACE_SECONDS = 0


@pytest.mark.django_db(transaction=True)
def test_demo_order_is_submitted_followed_and_collected_in_process(
    catalog, redis_db, lead, fast_demo
):
    order = place_demo(lead, runs=4)

    drive()

    order.refresh_from_db()
    assert order.status == OrderStatus.DONE
    assert Product.objects.filter(item__order=order).count() == 4
    assert list(order.items.values_list("attempts", flat=True)) == [1, 1, 1, 1]


@pytest.mark.django_db(transaction=True)
def test_claim_leases_only_due_submitted_items(catalog, redis_db, lead):
    order = place_demo(lead, runs=4)
    now = timezone.now()
    first, second, third, fourth = order.items.order_by("index")
    for item in (first, second, third):
        put(item, ItemStatus.SUBMITTED, request_id=f"demo-{item.pk}")
    OrderItem.objects.filter(pk=second.pk).update(lease_until=now + timedelta(minutes=1))
    OrderItem.objects.filter(pk=third.pk).update(lease_until=now - timedelta(seconds=1))

    claimed = claim_due_items("foreman:a", 10, timedelta(seconds=30))

    assert [i.pk for i in claimed] == [first.pk, third.pk]
    assert {i.lease_owner for i in claimed} == {"foreman:a"}
    assert claim_due_items("foreman:b", 10, timedelta(seconds=30)) == []
    fourth.refresh_from_db()
    assert fourth.lease_owner == ""


@pytest.mark.django_db(transaction=True)
def test_a_redis_outage_mid_tick_hands_the_batch_back_and_loses_no_collection(
    catalog, redis_db, lead, settings, monkeypatch
):
    from redis import RedisError

    from factory.production import limits

    real_release_many = limits.release_many
    done, running = (submitted_item(place_demo(lead, runs=2), index=i) for i in (0, 1))

    def status(self, machine, request_id):  # only the first has finished
        state = RemoteState.COMPLETED if request_id == done.request_id else RemoteState.RUNNING
        return RemoteStatus(state)

    monkeypatch.setattr(DemoBackend, "status", status)

    def outage(items):
        raise RedisError("connection refused")

    monkeypatch.setattr(limits, "release_many", outage)
    with pytest.raises(RedisError):
        tick("foreman:a", FAST)
    monkeypatch.setattr(limits, "release_many", real_release_many)

    done.refresh_from_db()
    running.refresh_from_db()
    # The finished one moved on with no job: its lease ran out at once.
    assert done.status == ItemStatus.COLLECTING and done.lease_until <= timezone.now()
    # The rest is due again after one poll interval, not the claim lease.
    assert (running.status, running.lease_owner) == (ItemStatus.SUBMITTED, "")
    assert running.lease_until <= timezone.now() + timedelta(seconds=FAST.poll_seconds)
    assert sweep().recollected == 1


@pytest.mark.django_db(transaction=True)
def test_running_item_is_renewed_then_handed_to_a_collect_job(
    catalog, redis_db, lead, settings
):
    settings.DEMO_LATENCY_SECONDS = 0.3
    item = submitted_item(place_demo(lead, runs=1))

    report = tick("foreman:a", FAST)

    item.refresh_from_db()
    assert report.steps == {"running": 1}
    assert item.status == ItemStatus.SUBMITTED
    assert item.lease_owner == "foreman:a"
    assert item.lease_until <= timezone.now() + timedelta(seconds=FAST.poll_seconds)
    time.sleep(0.35)
    assert tick("foreman:a", FAST).steps == {"collecting": 1}
    item.refresh_from_db()
    assert (item.status, item.lease_owner) == (ItemStatus.COLLECTING, "")
    [job_id] = django_rq.get_queue(COLLECT_QUEUE).get_job_ids()
    assert job_id.startswith(f"collect-{item.pk}-")
    assert Product.objects.count() == 0  # collected by a worker, not inline

    django_rq.get_worker("collect", worker_class=SimpleWorker).work(burst=True)

    item.refresh_from_db()
    assert item.status == ItemStatus.COMPLETED
    assert Product.objects.filter(item=item).count() == 1


@pytest.mark.django_db(transaction=True)
def test_failed_generation_fails_the_item_with_the_provider_message(
    catalog, redis_db, lead, monkeypatch
):
    order = place_demo(lead, runs=1)
    item = submitted_item(order)
    monkeypatch.setattr(DemoBackend, "status", lambda self, machine, rid: RemoteStatus(
        RemoteState.FAILED, error="content policy: the prompt was refused"))

    assert tick("foreman:a", FAST).steps == {"failed": 1}

    item.refresh_from_db()
    order.refresh_from_db()
    assert item.status == ItemStatus.FAILED
    assert item.last_error == "content policy: the prompt was refused"
    assert order.status == OrderStatus.DONE_WITH_FAILURES


@pytest.mark.django_db(transaction=True)
def test_transient_status_error_keeps_the_item_and_polls_later(
    catalog, redis_db, lead, monkeypatch
):
    item = submitted_item(place_demo(lead, runs=1))

    def busy(self, machine, request_id):
        raise TransientError("demo status: 429 slow down", retry_after=30)

    monkeypatch.setattr(DemoBackend, "status", busy)

    assert tick("foreman:a", FAST).steps == {"waiting": 1}

    item.refresh_from_db()
    assert item.status == ItemStatus.SUBMITTED
    assert item.last_error == "demo status: 429 slow down"
    assert item.lease_until > timezone.now() + timedelta(seconds=25)
    assert tick("foreman:a", FAST).claimed == 0


@pytest.mark.django_db(transaction=True)
def test_poll_hint_makes_an_item_due_now(catalog, redis_db, lead):
    item = submitted_item(place_demo(lead, runs=1))
    OrderItem.objects.filter(pk=item.pk).update(
        lease_owner="foreman:a", lease_until=timezone.now() + timedelta(minutes=5)
    )
    assert claim_due_items("foreman:b", 10, timedelta(seconds=30)) == []

    enqueue_follow(item.pk)

    assert [i.pk for i in claim_due_items("foreman:b", 10, timedelta(seconds=30))] == [
        item.pk
    ]


def test_a_foreman_rests_until_the_next_item_falls_due(catalog, redis_db, lead):
    tuning = Tuning(tick_seconds=1.0)
    assert pause(tuning) == 1.0  # nothing in flight: a whole tick
    item = submitted_item(place_demo(lead, runs=1))
    OrderItem.objects.filter(pk=item.pk).update(
        lease_until=timezone.now() + timedelta(seconds=0.3))
    assert 0.1 < pause(tuning) <= 0.3
    OrderItem.objects.filter(pk=item.pk).update(
        lease_until=timezone.now() - timedelta(seconds=5))
    assert pause(tuning) == MIN_PAUSE_SECONDS  # overdue, yet held elsewhere
    OrderItem.objects.filter(pk=item.pk).update(
        lease_until=timezone.now() + timedelta(minutes=5))
    assert pause(tuning) == 1.0


@pytest.mark.django_db(transaction=True)
def test_a_foreman_that_lost_its_lease_leaves_the_item_alone(catalog, redis_db, lead):
    item = submitted_item(place_demo(lead, runs=1))
    [claimed] = claim_due_items("foreman:a", 10, timedelta(seconds=30))
    OrderItem.objects.filter(pk=item.pk).update(status=ItemStatus.CANCELLED)

    step = follow.settle(claimed, RemoteStatus(RemoteState.COMPLETED), "foreman:a")

    assert step == follow.Step.LOST
    item.refresh_from_db()
    assert item.status == ItemStatus.CANCELLED
    assert django_rq.get_queue(COLLECT_QUEUE).count == 0


@pytest.mark.django_db(transaction=True)
def test_claims_skip_locked_rows_or_compare_and_set(catalog, redis_db, lead):
    submitted_item(place_demo(lead, runs=1))

    with CaptureQueriesContext(connection) as queries:
        assert len(claim_due_items("foreman:a", 10, timedelta(seconds=30))) == 1

    sql = " ".join(q["sql"] for q in queries.captured_queries)
    if connection.vendor == "postgresql":
        assert "FOR UPDATE SKIP LOCKED" in sql
    else:
        assert "FOR UPDATE" not in sql
        update = next(q["sql"] for q in queries.captured_queries
                      if q["sql"].startswith("UPDATE"))
        assert '"lease_until" IS NULL OR' in update  # the due test, repeated


@pytest.mark.django_db(transaction=True)
def test_two_foremen_never_poll_the_same_item_in_one_round(
    catalog, redis_db, lead, monkeypatch, settings
):
    if connection.vendor != "postgresql":
        pytest.skip("row locks with SKIP LOCKED need PostgreSQL; SQLite "
                    "serialises writers, so there is no race to test")
    # Nothing finishes during the test, so no run time is learnt and every
    # polled item's next poll is far off: a second look could only come
    # from a claim that let both foremen in.
    settings.DEMO_LATENCY_SECONDS = 600
    order = place_demo(lead, runs=20)
    for index in range(20):
        submitted_item(order, index)
    polled: dict[str, list[int]] = {"foreman:a": [], "foreman:b": []}
    real_poll = follow.poll_statuses

    def recording_poll(items, threads=8):
        owner = items[0].lease_owner
        polled[owner] += [i.pk for i in items]
        time.sleep(0.2)  # hold the batch while the other foreman claims
        return real_poll(items, threads)

    monkeypatch.setattr(follow, "poll_statuses", recording_poll)
    start = threading.Barrier(2)
    tuning = Tuning(tick_seconds=0, poll_seconds=60, batch_size=6, sweep_every=1)

    def foreman(owner: str) -> None:
        try:
            start.wait()
            for _ in range(3):
                tick(owner, tuning)
        finally:
            connection.close()

    threads = [threading.Thread(target=foreman, args=(o,)) for o in polled]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    a, b = polled["foreman:a"], polled["foreman:b"]
    assert a and b
    assert not set(a) & set(b)
    assert len(a) + len(b) == len(set(a) | set(b)) == 20


def _in_flight_sampler(stop: threading.Event, peaks: list[int]) -> None:
    try:
        while not stop.is_set():
            peaks.append(OrderItem.objects.filter(status=ItemStatus.SUBMITTED).count())
            time.sleep(0.02)
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_twenty_items_through_a_real_worker_and_a_real_foreman(
    catalog, redis_db, lead, media_root, tmp_path
):
    Provider.objects.filter(slug="demo").update(concurrency_limit=3)
    order = place_demo(
        lead, runs=10, sweeps=[[{"field": "num_images", "values": [1, 2]}]]
    )
    assert order.item_count == 20
    env = worker_env(media_root)
    log = tmp_path / "foreman.log"
    foreman = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "run_foreman", "--until-idle",
         "--max-seconds", "120", "--tick", "0.1", "--poll", "0.2",
         "--sweep-every", "5"],
        env=env, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )
    stop, samples = threading.Event(), []
    sampler = threading.Thread(target=_in_flight_sampler, args=(stop, samples))
    sampler.start()
    bursts = 0
    try:
        while foreman.poll() is None:
            worker = subprocess.run(
                [sys.executable, str(ROOT / "manage.py"), "rqworker", *QUEUES,
                 "--burst"],
                env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
            )
            assert worker.returncode == 0, worker.stderr[-3000:]
            bursts += 1
        foreman.wait(timeout=10)
    finally:
        stop.set()
        sampler.join()
        if foreman.poll() is None:
            foreman.kill()
    out = log.read_text()
    assert foreman.returncode == 0, out[-3000:]
    assert "stopped after" in out
    order.refresh_from_db()
    assert order.status == OrderStatus.DONE, order.items.progress()
    items = list(order.items.all())
    assert {i.status for i in items} == {ItemStatus.COMPLETED}
    assert [i.attempts for i in items] == [1] * 20
    products = Product.objects.filter(item__order=order)
    assert products.count() == sum(i.parameters["num_images"] for i in items) == 30
    assert products.values("item", "output_index").distinct().count() == 30
    assert max(samples) <= 3
    print(f"{bursts} worker bursts, peak {max(samples)} submitted, "
          f"{len(samples)} samples")

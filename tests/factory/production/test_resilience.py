"""The production engine against Redis outages and many processes at once.

Everything runs as deployed: `rqworker` and `run_foreman` processes, a fal
fake over HTTP, and, for the outage tests, a redis-server of the test's own,
so flushing, crashing or restarting it never disturbs the shared server.
"""
import json
import time
from collections import Counter, defaultdict

import pytest
from django.db import connection

from factory.models import (
    FactoryMachine,
    ItemStatus,
    Order,
    OrderStatus,
    Product,
    Provider,
    SeedStrategy,
)
from factory.ordering import place_order
from tests.conftest import worker_env
from tests.fakes.base import Fault
from tests.factory.production.plant import (
    CallerFal,
    Crew,
    PrivateRedis,
    run_until_done,
    use_redis,
    wait_for_exit,
)

pytestmark = pytest.mark.django_db(transaction=True)

# Short leases and graces, so the sweeper re-drives what an outage lost
# within seconds instead of the production minutes.
QUICK = {
    "FOREMAN_TICK_SECONDS": "0.1", "FOREMAN_POLL_SECONDS": "0.3",
    "FOREMAN_SWEEP_EVERY": "5", "PRODUCTION_PENDING_GRACE_SECONDS": "2",
    "PRODUCTION_SUBMIT_LEASE_SECONDS": "5", "PRODUCTION_UNKNOWN_GRACE_SECONDS": "5",
    "PRODUCTION_COLLECT_LEASE_SECONDS": "5",
}
CALLERS = {"worker-key": "worker", "foreman-a-key": "foreman-a",
           "foreman-b-key": "foreman-b"}


@pytest.fixture
def fal():
    """A fal fake whose requests move on every 0.5 s."""
    fake = CallerFal(CALLERS, seconds_per_stage=0.5).start()
    yield fake
    fake.stop()


def place_fal(user, runs: int) -> Order:
    """A fal order of ``runs`` × 2 items, with one or two images each."""
    order = Order.objects.create(
        machine=FactoryMachine.objects.get(slug="fal-flux-dev"),
        prompt="a lighthouse in a storm", base_parameters={"image_size": "square"},
        sweeps=[[{"field": "num_images", "values": [1, 2]}]],
        runs=runs, seed_strategy=SeedStrategy.INCREMENT, seed=1, created_by=user,
    )
    return place_order(order)


def assert_each_item_done_once(order: Order, fal: CallerFal) -> None:
    """Completed, one paid call each, one product per output."""
    order.refresh_from_db()
    items = list(order.items.all())
    assert order.status == OrderStatus.DONE, order.items.progress()
    assert {i.status for i in items} == {ItemStatus.COMPLETED}
    sent = Counter(json.dumps(e["input"], sort_keys=True) for e in fal.ledger)
    assert len(fal.ledger) == len(items), sent.most_common(3)
    for item in items:
        assert sent[json.dumps(item.parameters, sort_keys=True)] == 1, item.pk
    by_request = {e["request_id"] for e in fal.ledger}
    assert {i.request_id for i in items} == by_request
    assert [i.attempts for i in items] == [1] * len(items)
    products = Product.objects.filter(item__order=order)
    outputs = sum(i.parameters["num_images"] for i in items)
    assert products.count() == outputs
    assert products.values("item", "output_index").distinct().count() == outputs


class Outage:
    """Breaks Redis once, as soon as the order is mid-flight.

    Mid-flight: items wait for a slot, run at fal and are being collected,
    all at once (the first downloads are slowed to make sure). An
    "older_snapshot" outage saves a snapshot then and crashes once three
    more items were submitted, so the restarted Redis has forgotten that
    work: it holds jobs, slots and waiting items the database has moved on
    from.
    """

    def __init__(self, kind: str, server: PrivateRedis, fal: CallerFal) -> None:
        self.kind, self.server, self.fal = kind, server, fal
        self.seen: dict[str, int] | None = None
        self.sent_at_save: int | None = None

    def __call__(self, progress: dict[str, int]) -> None:
        if self.seen is not None:
            return
        if self.sent_at_save is None:
            if not all(progress[s] for s in ("pending", "submitted", "collecting")):
                return
            if self.kind == "older_snapshot":
                self.server.client().save()
                self.sent_at_save = len(self.fal.ledger)
                return
        elif len(self.fal.ledger) < self.sent_at_save + 3:
            return
        self.seen = progress
        self.break_redis()

    def break_redis(self) -> None:
        if self.kind == "flushall":
            self.server.client().flushall()
            return
        if self.kind == "restart_keeping_data":
            self.server.shutdown()
        else:  # "crash_losing_data", "older_snapshot"
            self.server.kill()
        time.sleep(1.5)  # long enough for every process to notice
        self.server.start()


@pytest.mark.once
@pytest.mark.parametrize("kind", [
    "crash_losing_data",
    # A flush (what a crash losing data does, without the dropped
    # connections), the gentler restart and the older snapshot: `make
    # test-slow`; the soak in `make test` restarts Redis at random besides.
    pytest.param("flushall", marks=pytest.mark.slow),
    pytest.param("restart_keeping_data", marks=pytest.mark.slow),
    pytest.param("older_snapshot", marks=pytest.mark.slow),
])
def test_an_order_survives_a_redis_outage_without_duplicates(
    kind, catalog, lead, fal, settings, media_root, tmp_path
):
    """Redis flushed, crashed empty, restarted whole, or restored from an
    older snapshot (jobs already run are queued again) in the middle of an
    order of 24 fal items: the sweeper finishes every item, and fal saw one
    submission per item.

    The foreman survives the outage on its own (it retries failed ticks);
    an `rqworker` quits on some Redis errors, so the crew restarts workers
    that exit, as honcho or systemd would in a deployment.
    """
    server = PrivateRedis(tmp_path / "redis", appendonly=kind == "restart_keeping_data")
    server.start()
    use_redis(settings, server.url)
    Provider.objects.filter(slug="fal").update(concurrency_limit=5)
    fal.faults.latency = (0.01, 0.1)
    # The first downloads are slow, so items are collecting at the outage.
    fal.faults.push("file", *[Fault("delay", seconds=3)] * 3)
    # A tick that fails mid-batch leaves its claims to run out: keep it short.
    env = {**worker_env(media_root), **fal.env(), **QUICK, "FOREMAN_CLAIM_SECONDS": "5"}
    crew = Crew(env, tmp_path / "logs")
    outage = Outage(kind, server, fal)
    try:
        order = place_fal(lead, runs=12)
        for name in ("worker-1", "worker-2"):
            crew.start_worker(name, FAL_KEY=fal.key_of("worker"))
        crew.start_foreman("foreman-a", "--max-seconds", "200",
                           FAL_KEY=fal.key_of("foreman-a"))
        seconds = run_until_done(crew, order.items.all(), 180, during=outage)
        exits = wait_for_exit(crew)
    finally:
        crew.stop()
        server.kill()
    assert outage.seen, "the order finished before Redis could be broken"
    assert exits == {"foreman-a": 0}, crew.log("foreman-a")
    assert_each_item_done_once(order, fal)
    print(f"{kind}: done in {seconds:.1f}s; at the outage {outage.seen}; "
          f"{crew.restarts} worker restarts")


OUTAGE_SECONDS = 30


@pytest.mark.once
def test_the_shipped_processes_ride_out_a_30_second_redis_outage(
    catalog, lead, fal, settings, media_root, tmp_path
):
    """Redis stops for 30 s while an order is in flight: the Procfile's
    worker and collector (`run_worker`) and the foreman wait and reconnect
    instead of exiting, nobody restarts them, and the order completes with
    one submission per item."""
    server = PrivateRedis(tmp_path / "redis", appendonly=True).start()
    use_redis(settings, server.url)
    Provider.objects.filter(slug="fal").update(concurrency_limit=2)
    env = {**worker_env(media_root), **fal.env(), **QUICK, "FOREMAN_CLAIM_SECONDS": "5"}
    crew = Crew(env, tmp_path / "logs")
    key = fal.key_of("worker")
    try:
        order = place_fal(lead, runs=3)
        crew.start_worker("worker", "run_worker", "--max-wait", "4", FAL_KEY=key)
        crew.start_worker("collector", "run_worker", "--max-wait", "4",
                          "--queues", "collect", "default", FAL_KEY=key)
        crew.start_foreman("foreman-a", "--max-seconds", "200",
                           FAL_KEY=fal.key_of("foreman-a"))
        deadline = time.monotonic() + 60
        while not order.items.filter(status__in=[
                ItemStatus.SUBMITTED, ItemStatus.COLLECTING]).exists():
            assert time.monotonic() < deadline, crew.log("worker")
            time.sleep(0.1)
        server.shutdown()
        time.sleep(OUTAGE_SECONDS)
        alive = {name: p.poll() is None
                 for name, p in {**crew.workers, **crew.foremen}.items()}
        server.start()
        seconds = run_until_done(crew, order.items.all(), 120)
        exits = wait_for_exit(crew)
    finally:
        crew.stop()
        server.kill()
    assert alive == {"worker": True, "collector": True, "foreman-a": True}, (
        crew.log("worker") + crew.log("foreman-a"))
    assert crew.restarts == 0, crew.log("worker") + crew.log("collector")
    # Which loop notices depends on where the worker was: RQ's own dequeue
    # retries quietly; anywhere else `run_worker` reconnects.
    noticed = crew.log("worker", tail=100_000)
    assert ("Redis is unreachable" in noticed
            or "could not connect to Redis instance" in noticed), noticed[-3000:]
    assert exits == {"foreman-a": 0}, crew.log("foreman-a")
    assert_each_item_done_once(order, fal)
    print(f"done {seconds:.1f}s after Redis came back")


SLOW_SUBMIT_SECONDS = 20


@pytest.mark.once
def test_a_slow_submit_does_not_hold_up_a_finished_collection(
    catalog, lead, fal, redis_db, media_root, tmp_path
):
    """One worker and the collector, as the Procfile runs them: while the
    worker waits 20 s on a slow submit, the other item's finished
    generation is downloaded by the collector within seconds."""
    Provider.objects.filter(slug="fal").update(concurrency_limit=2)
    fal.faults.push("submit", Fault("delay", seconds=0),
                    Fault("delay", seconds=SLOW_SUBMIT_SECONDS))
    env = {**worker_env(media_root), **fal.env(), **QUICK}
    crew = Crew(env, tmp_path / "logs")
    key = fal.key_of("worker")
    seen: dict[int, float] = {}
    try:
        order = place_fal(lead, runs=1)
        crew.start_worker("worker", "run_worker", FAL_KEY=key)
        crew.start_worker("collector", "run_worker", "--queues", "collect", "default",
                          FAL_KEY=key)
        crew.start_foreman("foreman-a", "--max-seconds", "120",
                           FAL_KEY=fal.key_of("foreman-a"))
        deadline = time.monotonic() + SLOW_SUBMIT_SECONDS + 40
        first = None
        while first is None or first.status != ItemStatus.COMPLETED:
            assert time.monotonic() < deadline, crew.log("collector")
            for item in order.items.all():
                if item.status in (ItemStatus.COLLECTING, ItemStatus.COMPLETED):
                    seen.setdefault(item.pk, time.monotonic())
            if seen and first is None:
                first = order.items.get(pk=min(seen, key=seen.get))
            elif first is not None:
                first.refresh_from_db()
            time.sleep(0.05)
        waited = time.monotonic() - seen[first.pk]
        other = order.items.exclude(pk=first.pk).get()
        run_until_done(crew, order.items.all(), SLOW_SUBMIT_SECONDS + 60)
    finally:
        crew.stop()
    assert other.status == ItemStatus.SUBMITTING, "the slow submit was not under way"
    assert waited < 8, f"the collection waited {waited:.1f}s behind a slow submit"
    print(f"collected {waited:.1f}s after the generation finished, while a "
          f"{SLOW_SUBMIT_SECONDS}s submit held the worker")


@pytest.mark.slow
@pytest.mark.once
def test_two_workers_and_two_foremen_handle_each_of_200_items_once(
    catalog, lead, fal, redis_db, media_root, tmp_path
):
    """Two workers and two foremen work one 200-item order side by side.

    No item is handled twice: one fal submission and one attempt per item,
    one product per output, and no item is polled again before its poll
    interval ran out. A foreman renews an item's lease to "now + interval"
    only after its status call returned, so two status calls for one
    request closer together than the interval mean it was held twice in
    one round. The fake tells the foremen apart by their keys.
    """
    if connection.vendor != "postgresql":
        pytest.skip("row locks with SKIP LOCKED need PostgreSQL; SQLite "
                    "serialises writers, so there is no race to test")
    Provider.objects.filter(slug="fal").update(concurrency_limit=20)
    fal.seconds_per_stage = 0.3
    poll = 1.0
    # No webhooks: a webhook's poll hint may rightly make an item due early.
    env = {**worker_env(media_root), **fal.env(), **QUICK, "WEBHOOK_BASE_URL": "",
           "FOREMAN_POLL_SECONDS": str(poll), "FOREMAN_BATCH_SIZE": "10"}
    crew = Crew(env, tmp_path / "logs")
    try:
        order = place_fal(lead, runs=100)
        assert order.item_count == 200
        for name in ("worker-1", "worker-2"):
            crew.start_worker(name, FAL_KEY=fal.key_of("worker"))
        for name in ("foreman-a", "foreman-b"):
            crew.start_foreman(name, "--max-seconds", "150", FAL_KEY=fal.key_of(name))
        seconds = run_until_done(crew, order.items.all(), 120)
        exits = wait_for_exit(crew)
    finally:
        crew.stop()
    assert exits == {"foreman-a": 0, "foreman-b": 0}
    assert_each_item_done_once(order, fal)
    assert crew.restarts == 0, crew.log("worker-1") + crew.log("worker-2")
    polls = defaultdict(list)
    for entry in fal.polls:
        if entry.caller.startswith("foreman"):
            polls[entry.request_id].append(entry)
    assert set(polls) == {e["request_id"] for e in fal.ledger}
    by_caller = Counter(p.caller for p in fal.polls)
    assert by_caller["foreman-a"] and by_caller["foreman-b"], by_caller
    too_close = [
        (rid, earlier.caller, later.caller, round(later.at - earlier.at, 3))
        for rid, seen in polls.items()
        for earlier, later in zip(seen, seen[1:])
        if later.at - earlier.at < poll * 0.9
    ]
    assert not too_close, too_close[:10]
    handovers = sum(earlier.caller != later.caller for seen in polls.values()
                    for earlier, later in zip(seen, seen[1:]))
    print(f"200 items in {seconds:.1f}s; status calls {dict(by_caller)}; "
          f"{handovers} polls by the other foreman than the previous one")

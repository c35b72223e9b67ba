"""Reads behind the live progress: tallies, throughput, ETA, failures."""
from datetime import timedelta

import pytest
from django.utils import timezone

from factory.models import ItemStatus, OrderItem, OrderStatus
from factory.production.watching import (
    FailureGroup, Tally, load_by_provider, orders_to_watch, tally_orders,
    watch_order,
)

from tests.progress_data import FIRE, TIMEOUT, build_order

pytestmark = pytest.mark.django_db


def test_tally_leaves_out_failures_that_were_retried():
    tally = Tally.from_counts(
        {ItemStatus.COMPLETED: 5, ItemStatus.FAILED: 3, ItemStatus.SUBMITTED: 1,
         ItemStatus.COLLECTING: 1, ItemStatus.PENDING: 2},
        attempts=2,
    )
    assert (tally.completed, tally.failed, tally.in_flight, tally.pending) == (5, 1, 2, 2)
    assert tally.retried == 2
    assert tally.total == 10
    assert tally.items == 12
    assert tally.percent == 60


def test_percent_reaches_100_only_when_nothing_is_left():
    assert Tally(completed=999, pending=1).percent == 99
    assert Tally(completed=999, failed=1).percent == 100
    assert Tally().percent == 0


def test_snapshot_counts_states_and_groups_failures(catalog):
    order = build_order(
        completed=6, failed=3, cancelled=1, in_flight=2, pending=4, products=4,
        errors=(FIRE, FIRE, TIMEOUT),
    )
    snapshot = watch_order(order)
    assert snapshot.tally == Tally(
        completed=6, failed=3, cancelled=1, in_flight=2, pending=4
    )
    assert snapshot.failures == [FailureGroup(FIRE, 2), FailureGroup(TIMEOUT, 1)]
    assert snapshot.product_count == 4
    assert [p.item.index for p in snapshot.products] == [0, 1, 2, 3]
    assert [item.index for item in snapshot.items] == list(range(16))
    assert snapshot.is_closed is False
    assert snapshot.placeholders == 6


def test_throughput_of_a_running_order_counts_the_recent_minutes(catalog):
    order = build_order(completed=10, pending=20, placed_ago=timedelta(minutes=30))
    now = timezone.now()
    # Ten items in the five-minute window: two a minute, ten minutes left.
    snapshot = watch_order(order, now=now)
    assert snapshot.per_minute == pytest.approx(2.0, rel=0.01)
    assert snapshot.eta_seconds == pytest.approx(600, rel=0.01)


def test_throughput_of_a_young_order_counts_since_it_was_placed(catalog):
    order = build_order(completed=6, in_flight=6, placed_ago=timedelta(minutes=1))
    snapshot = watch_order(order, now=order.placed_at + timedelta(minutes=1))
    assert snapshot.per_minute == pytest.approx(6.0, rel=0.02)
    assert snapshot.eta_seconds == pytest.approx(60, rel=0.02)


def test_closed_order_has_its_overall_rate_and_no_eta(catalog):
    order = build_order(
        completed=8, failed=2, status=OrderStatus.DONE_WITH_FAILURES,
        placed_ago=timedelta(minutes=5),
    )
    snapshot = watch_order(order)
    assert snapshot.per_minute == pytest.approx(2.0, rel=0.01)
    assert snapshot.eta_seconds is None
    assert snapshot.is_closed is True
    assert snapshot.placeholders == 0


def test_order_without_results_has_no_rate(catalog):
    snapshot = watch_order(build_order(pending=5, status=OrderStatus.PLACED))
    assert snapshot.per_minute is None
    assert snapshot.eta_seconds is None
    assert snapshot.failures == []


def test_retried_failure_leaves_the_failure_list(catalog):
    order = build_order(completed=1, failed=2, errors=(FIRE, TIMEOUT))
    first = order.items.get(last_error=FIRE)
    OrderItem.objects.create(
        order=order, machine=order.machine, index=3, parameters={}, retry_of=first,
    )
    snapshot = watch_order(order)
    assert snapshot.failures == [FailureGroup(TIMEOUT, 1)]
    assert (snapshot.tally.failed, snapshot.tally.pending) == (1, 1)
    assert snapshot.tally.retried == 1


def test_tallies_of_many_orders_take_one_query(catalog, django_assert_num_queries):
    orders = [build_order(completed=n, pending=3) for n in (1, 2, 3)]
    empty = build_order(status=OrderStatus.PLACED)
    with django_assert_num_queries(1):
        tallies = tally_orders([o.pk for o in [*orders, empty]])
    assert [tallies[o.pk].completed for o in orders] == [1, 2, 3]
    assert tallies[empty.pk].total == 0


def test_watched_orders_put_running_then_placed_before_newer_ones(catalog):
    running = build_order(title="running", in_flight=1)
    placed = build_order(title="placed", pending=1, status=OrderStatus.PLACED)
    done = [build_order(title=f"done {n}", completed=1, status=OrderStatus.DONE)
            for n in range(3)]
    orders = orders_to_watch(3)
    assert [o.title for o in orders] == ["running", "placed", "done 2"]
    assert orders[0].tally.in_flight == 1
    assert done[2].pk == orders[2].pk


def test_load_by_provider_splits_in_flight_from_waiting(catalog):
    build_order(in_flight=2, pending=3, completed=4)
    [load] = load_by_provider()
    assert (load.name, load.in_flight, load.pending) == ("Demo (offline)", 2, 3)

"""The spend ledger: estimates per unit, reservations, actual charges, caps."""
import threading
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction

from factory.models import (
    EventKind, FactoryMachine, ItemEvent, ItemStatus, MonthlyCap, Order, OrderItem,
    OrderStatus, Project, Provider, SpendEntry, SpendSource,
)
from factory.models.spend import AppendOnlyError
from factory.ordering import place_order, plan_order
from factory.parameters.pricing import FALLBACK_COMPUTE_SECONDS, estimate
from factory.production.finish import fail_item
from factory.production.retry import retry_failed_items
from factory.recipes import order_again
from factory.spending import (
    BudgetError, enforce_caps, month_balance, project_balance, typical_seconds,
)
from tests.fakes.fal import FakeFal
from tests.states import put

PRICE = Decimal("0.025")


# ------------------------------------------------------------------ estimates
@pytest.mark.parametrize("unit, params, units, amount, basis", [
    ("request", {"num_images": 4}, "1", "0.0250", "1 request"),
    ("output", {"num_images": 4}, "4", "0.1000", "4 outputs"),
    ("output", {}, "1", "0.0250", "1 output"),
    ("megapixel", {"num_images": 2, "image_size": {"width": 1024, "height": 512}},
     "1.048576", "0.0262", "2 outputs × 0.524288 MP = 1.048576 megapixels"),
    ("megapixel", {"image_size": "landscape_16_9"}, "0.589824", "0.0147",
     "1 output × 0.589824 MP = 0.589824 megapixels"),
    ("second", {"duration": "5"}, "5", "0.1250", "5 seconds of output"),
    ("second", {"seconds_total": 30}, "30", "0.7500", "30 seconds of output"),
])
def test_each_pricing_unit_counts_its_own_units(unit, params, units, amount, basis):
    found = estimate(PRICE, unit, params)
    assert (found.units, found.amount, found.basis) == (
        Decimal(units), Decimal(amount), basis)
    assert found.formula("USD") == f"{basis} × 0.025 USD = {amount} USD"


def test_compute_seconds_use_the_typical_run_time_or_say_they_assume():
    typical = estimate(Decimal("0.001"), "compute_second", {}, Decimal("6"))
    assert (typical.units, typical.amount) == (Decimal(6), Decimal("0.0060"))
    assert "typical run" in typical.basis
    unknown = estimate(Decimal("0.001"), "compute_second", {})
    assert unknown.units == FALLBACK_COMPUTE_SECONDS
    assert "assumed" in unknown.basis


@pytest.mark.django_db
def test_measured_runs_replace_the_catalogs_typical_time(catalog):
    machine = FactoryMachine.objects.get(slug="replicate-sdxl")
    assert typical_seconds(machine) == Decimal("6")
    provider = machine.provider
    for seconds in ("2.5", "3.5", "30"):
        SpendEntry.objects.create(
            provider=provider, machine=machine, source=SpendSource.PROVIDER,
            units=Decimal(seconds), unit="compute_second",
            unit_price=machine.price_amount, amount=Decimal("0.001"))
    assert typical_seconds(machine) == Decimal("3.50")  # the median


# --------------------------------------------------------------- the ledger
@pytest.mark.django_db
def test_entries_are_never_changed_or_deleted(catalog):
    entry = SpendEntry.objects.create(
        provider=Provider.objects.get(slug="fal"), source=SpendSource.CORRECTION,
        amount=Decimal("1"))
    entry.amount = Decimal("2")
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        SpendEntry.objects.filter(pk=entry.pk).update(amount=0)
    with pytest.raises(AppendOnlyError):
        SpendEntry.objects.all().delete()
    assert SpendEntry.objects.get().amount == Decimal("1")


def _fal_order(project=None, runs=1, user=None, size="square", slug="fal-flux-dev",
               **fields) -> Order:
    return Order.objects.create(
        title=f"{runs} lighthouses", machine=FactoryMachine.objects.get(slug=slug),
        prompt="a lighthouse at dusk", project=project, runs=runs, created_by=user,
        base_parameters={"image_size": size, "output_format": "png"}, **fields,
    )


@pytest.fixture
def fal(settings, monkeypatch):
    """A fake fal that finishes at once."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    fake = FakeFal(key="test-key", polls_per_stage=0).start()
    fake.max_side = 4096  # images as large as asked for
    settings.FAL_KEY = "test-key"
    settings.FAL_QUEUE_URL = fake.url + "/"
    settings.FAL_API_URL = fake.url
    settings.DOWNLOAD_ALLOW_HTTP = True
    settings.DOWNLOAD_ALLOWED_PRIVATE_HOSTS = [fake.url.removeprefix("http://")]
    yield fake
    fake.stop()


class UpscalingFal(FakeFal):
    """Serves images twice the size asked for: four times the megapixels."""

    def _size(self, image_size: Any) -> tuple[int, int]:
        width, height = super()._size(image_size)
        return width * 2, height * 2


def _run(order, capture, work_queues, user=None):
    with capture(execute=True):
        place_order(order, user=user)
    work_queues()
    order.refresh_from_db()


def test_demo_orders_reserve_nothing_and_cost_nothing(demo_order):
    entries = SpendEntry.objects.filter(order=demo_order)
    assert not entries.filter(source=SpendSource.RESERVATION).exists()
    actual = entries.filter(source=SpendSource.PROVIDER)
    assert actual.count() == 2
    assert set(actual.values_list("amount", flat=True)) == {Decimal(0)}
    assert entries.total() == 0


def test_a_fal_order_is_reserved_then_charged_what_came_back(
        catalog, lead, fal, django_capture_on_commit_callbacks, work_queues):
    project = Project.objects.create(name="Coast", budget=Decimal("5"))
    order = _fal_order(project, runs=3)
    _run(order, django_capture_on_commit_callbacks, work_queues, user=lead)
    assert order.status == OrderStatus.DONE
    entries = SpendEntry.objects.filter(order=order)
    reservation = entries.get(source=SpendSource.RESERVATION)
    assert (reservation.amount, reservation.units, reservation.user) == (
        order.estimated_cost, 3, lead)
    charged = entries.filter(source=SpendSource.PROVIDER)
    assert charged.count() == 3
    # 512 × 512 images at 0.025 USD a megapixel: what the estimate said.
    for entry in charged:
        assert (entry.units, entry.unit, entry.amount) == (
            Decimal("0.262144"), "megapixel", Decimal("0.0066"))
        assert entry.request_id == entry.item.request_id
    assert entries.filter(source=SpendSource.RELEASE).total() == -order.estimated_cost
    balance = project_balance(project)
    assert balance.committed == balance.actual == charged.total() == Decimal("0.0198")


def test_failed_and_cancelled_items_release_their_reservation(
        catalog, lead, fal, django_capture_on_commit_callbacks):
    project = Project.objects.create(name="Coast", budget=Decimal("1"))
    order = _fal_order(project, runs=3)
    with django_capture_on_commit_callbacks(execute=False):
        place_order(order, user=lead)
    assert project_balance(project).committed == order.estimated_cost
    first, second, third = order.items.order_by("index")
    put(first, ItemStatus.SUBMITTED, request_id="req-1")
    fail_item(first, "the runner crashed")
    fail_item(first, "a second report of the same failure")
    from factory.production.cancel import cancel_items

    cancel_items([second.pk])
    cancel_items([second.pk])
    releases = SpendEntry.objects.filter(source=SpendSource.RELEASE)
    assert sorted(releases.values_list("item_id", flat=True)) == [first.pk, second.pk]
    assert not SpendEntry.objects.actual().exists()
    assert project_balance(project).committed == third.cost


# ------------------------------------------------------------------- budgets
@pytest.mark.django_db
def test_a_second_order_is_refused_while_the_first_holds_its_reservation(
        catalog, django_capture_on_commit_callbacks):
    project = Project.objects.create(name="Tight", budget=Decimal("0.02"))
    first = _fal_order(project, runs=2)
    with django_capture_on_commit_callbacks(execute=False):
        place_order(first)
    second = _fal_order(project, runs=2)
    with pytest.raises(BudgetError, match=(
            r"budget 0\.02 USD, committed 0\.0132 USD, this order 0\.0132 USD")):
        plan_order(second)
    with pytest.raises(BudgetError):
        place_order(second)
    second.refresh_from_db()
    assert second.status == OrderStatus.DRAFT and not second.items.exists()
    assert SpendEntry.objects.filter(order=second).count() == 0


@pytest.mark.django_db
def test_order_again_and_retries_reserve_like_placing(
        catalog, django_capture_on_commit_callbacks):
    project = Project.objects.create(name="Tight", budget=Decimal("0.02"))
    order = _fal_order(project, runs=2)
    with django_capture_on_commit_callbacks(execute=False):
        place_order(order)
    again = order_again(order)
    with pytest.raises(BudgetError):
        place_order(again)
    items = list(order.items.order_by("index"))
    for item in items:
        put(item, ItemStatus.SUBMITTED, request_id=f"req-{item.pk}")
        fail_item(item, "the runner crashed")
    assert project_balance(project).committed == 0
    with django_capture_on_commit_callbacks(execute=False):
        retried = retry_failed_items([items[0].pk])
    reservation = SpendEntry.objects.filter(
        source=SpendSource.RESERVATION).order_by("-id").first()
    assert (reservation.amount, reservation.note) == (
        retried[0].cost, "retrying 1 item(s)")
    with django_capture_on_commit_callbacks(execute=False):
        place_order(_fal_order(project, runs=2))
    with pytest.raises(BudgetError, match="this order 0.0066 USD"):
        retry_failed_items([items[1].pk])
    assert OrderItem.objects.filter(retry_of=items[1]).count() == 0


@pytest.mark.django_db
def test_the_monthly_cap_holds_across_projects(catalog, django_capture_on_commit_callbacks):
    MonthlyCap.objects.create(amount=Decimal("0.01"))
    with django_capture_on_commit_callbacks(execute=False):
        place_order(_fal_order(Project.objects.create(name="A"), runs=1))
    with pytest.raises(BudgetError, match="over this month's spending cap"):
        place_order(_fal_order(Project.objects.create(name="B"), runs=1))
    assert month_balance().committed == Decimal("0.0066")


# ----------------------------------------------------------------------- caps
@pytest.mark.django_db
def test_reaching_a_cap_cancels_pending_items_and_lets_running_ones_finish(catalog):
    project = Project.objects.create(name="Capped", budget=Decimal("0.03"))
    order = _fal_order(project, runs=4)
    with transaction.atomic():
        place_order(order)
    items = list(order.items.order_by("index"))
    OrderItem.objects.filter(pk=items[0].pk).update(status=ItemStatus.COLLECTING)
    OrderItem.objects.filter(pk=items[1].pk).update(status=ItemStatus.SUBMITTED)
    assert enforce_caps(project.pk) == 0  # reserved is not spent
    SpendEntry.objects.create(
        project=project, order=order, provider=order.machine.provider,
        source=SpendSource.CORRECTION, amount=Decimal("0.03"),
        note="reconciled: the provider charged more")
    assert enforce_caps(project.pk) == 2
    states = dict(OrderItem.objects.values_list("index", "status"))
    assert states == {0: ItemStatus.COLLECTING, 1: ItemStatus.SUBMITTED,
                      2: ItemStatus.CANCELLED, 3: ItemStatus.CANCELLED}
    stopped = ItemEvent.objects.filter(kind=EventKind.STOPPED)
    assert stopped.count() == 2
    assert stopped.first().message == (
        "project Capped reached its budget: 0.03 USD spent of 0.03 USD")
    assert OrderItem.objects.get(index=3).last_error == stopped.first().message


def test_production_stops_when_actual_spend_reaches_the_budget(
        catalog, settings, monkeypatch, django_capture_on_commit_callbacks,
        work_queues):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    fake = UpscalingFal(key="test-key", polls_per_stage=0).start()
    fake.max_side = 4096
    settings.FAL_QUEUE_URL = fake.url + "/"
    settings.FAL_API_URL = fake.url
    settings.DOWNLOAD_ALLOW_HTTP = True
    settings.DOWNLOAD_ALLOWED_PRIVATE_HOSTS = [fake.url.removeprefix("http://")]
    Provider.objects.filter(slug="fal").update(concurrency_limit=1)
    try:
        # Estimated at 10 × 0.0066; each image comes back 4 × as large.
        project = Project.objects.create(name="Capped", budget=Decimal("0.066"))
        order = _fal_order(project, runs=10)
        _run(order, django_capture_on_commit_callbacks, work_queues)
    finally:
        fake.stop()
    states = list(order.items.order_by("index").values_list("status", flat=True))
    # The third image crosses the budget; one submitted while it was being
    # collected is running then, and finishes.
    done = states.count(ItemStatus.COMPLETED)
    assert done in (3, 4)
    assert states == [ItemStatus.COMPLETED] * done + [ItemStatus.CANCELLED] * (10 - done)
    balance = project_balance(project)
    assert balance.actual == done * Decimal("0.0262") and balance.reached
    assert balance.committed == balance.actual  # nothing is held any more
    assert ItemEvent.objects.filter(kind=EventKind.STOPPED).count() == 10 - done


# --------------------------------------------------------------- concurrency
needs_row_locks = pytest.mark.skipif(
    "connection.vendor != 'postgresql'",
    reason="SQLite serialises writers; the race needs PostgreSQL's row locks")


def _all_at_once(jobs) -> list[BaseException | None]:
    """Run every job in its own thread and connection, released together."""
    barrier = threading.Barrier(len(jobs))
    outcomes: list[BaseException | None] = [None] * len(jobs)

    def run(index: int) -> None:
        try:
            barrier.wait()
            jobs[index]()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


@needs_row_locks
@pytest.mark.django_db(transaction=True)
def test_twenty_placements_at_once_never_exceed_the_budget(catalog, redis_db):
    project = Project.objects.create(name="Contested", budget=Decimal("0.04"))
    orders = [_fal_order(project) for _ in range(20)]  # 0.0066 each: room for 6
    outcomes = _all_at_once([lambda o=o: place_order(o) for o in orders])
    refused = [o for o, outcome in zip(orders, outcomes) if outcome is not None]
    assert all(isinstance(outcomes[orders.index(o)], BudgetError) for o in refused)
    assert len(refused) == 14
    assert project_balance(project).committed == 6 * Decimal("0.0066")
    for order in refused:
        order.refresh_from_db()
        assert order.status == OrderStatus.DRAFT and not order.items.exists()
        assert not SpendEntry.objects.filter(order=order).exists()


@needs_row_locks
@pytest.mark.django_db(transaction=True)
def test_twenty_retries_at_once_never_exceed_the_budget(catalog, redis_db):
    project = Project.objects.create(name="Contested", budget=Decimal("1"))
    failed = []
    for _ in range(20):
        order = _fal_order(project)
        place_order(order)
        item = put(order.items.get(), ItemStatus.SUBMITTING)
        fail_item(item, "the runner crashed")
        failed.append(item)
    Project.objects.filter(pk=project.pk).update(budget=Decimal("0.04"))  # room for 6
    outcomes = _all_at_once([lambda i=i: retry_failed_items([i.pk]) for i in failed])
    assert sum(isinstance(o, BudgetError) for o in outcomes) == 14
    assert all(o is None or isinstance(o, BudgetError) for o in outcomes)
    assert OrderItem.objects.filter(retry_of__isnull=False).count() == 6
    assert project_balance(project).committed == 6 * Decimal("0.0066")

"""Spend control: reservations under lock, actual charges, caps that stop work.

Placing an order or retrying items reserves their estimate inside the
transaction that writes the items, after locking the project's row and the
monthly cap's, so two placements cannot both pass the same check. When an
item finishes, its actual charge (what the provider reported, or nothing for
a generation it does not bill) is written and its share of the reservation
released, in the transaction that finishes the item. Every amount is an
append-only ``SpendEntry``; a project's committed spend is their sum.
"""
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from statistics import median

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import DecimalField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from factory.models import (
    EventKind, FactoryMachine, ItemEvent, ItemStatus, MonthlyCap, Order, OrderItem,
    Project, SpendEntry, SpendSource,
)
from factory.models.spend import ACTUAL
from factory.parameters.schema import ParameterError
from factory.providers.base import (
    Charge, OutputFacts, Price, RemoteOutput, RemoteStatus,
)

log = logging.getLogger(__name__)
BUDGET_CURRENCY = "USD"
# Measured runs needed before they replace the catalog's typical run time.
MEASURED_RUNS = 3
MEASURED_WINDOW = 50
CENTS = Decimal("0.01")


class BudgetError(ParameterError):
    """An order or retry that would take a project or the month over its cap."""


@dataclass(frozen=True)
class Balance:
    """Where a budget stands: ``committed`` = actual charges + open reservations."""

    budget: Decimal | None
    committed: Decimal
    actual: Decimal

    @property
    def left(self) -> Decimal | None:
        return None if self.budget is None else self.budget - self.committed

    @property
    def reached(self) -> bool:
        """Actual spend has reached the cap: pending work stops."""
        return self.budget is not None and self.actual >= self.budget


def _money(value: Decimal) -> str:
    """``12.50 USD``; fractions of a cent kept where there are any."""
    exact = Decimal(value).quantize(Decimal("0.0001"))
    shown = exact if exact != exact.quantize(CENTS) else exact.quantize(CENTS)
    return f"{shown:,} {BUDGET_CURRENCY}"


def month_start(now: datetime | None = None) -> datetime:
    now = now or timezone.now()
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _balance(entries, budget: Decimal | None) -> Balance:
    rows = entries.filter(currency=BUDGET_CURRENCY).aggregate(
        committed=Sum("amount"), actual=Sum("amount", filter=Q(source__in=ACTUAL)),
    )
    return Balance(budget, rows["committed"] or Decimal(0), rows["actual"] or Decimal(0))


def project_balance(project: Project) -> Balance:
    return _balance(SpendEntry.objects.filter(project=project), project.budget)


def with_balances(projects: QuerySet) -> QuerySet:
    """Projects annotated with ``committed`` and ``actual`` from the ledger.

    Two correlated sums on the (project, source) index, so a list of
    projects costs no query per row; ``balance_of`` turns a row into a
    ``Balance``.
    """
    entries = (SpendEntry.objects.filter(project=OuterRef("pk"), currency=BUDGET_CURRENCY)
               .order_by().values("project"))
    zero = Value(Decimal(0), output_field=DecimalField(max_digits=14, decimal_places=4))

    def total(rows) -> Coalesce:
        return Coalesce(Subquery(rows.annotate(total=Sum("amount")).values("total")), zero)

    return projects.annotate(committed=total(entries),
                             actual=total(entries.filter(source__in=ACTUAL)))


def balance_of(project: Project) -> Balance:
    """The balance of a project annotated by ``with_balances``."""
    return Balance(project.budget, project.committed, project.actual)


def monthly_cap() -> Decimal | None:
    cap = MonthlyCap.objects.first()
    return cap.amount if cap else None


def month_balance(cap: Decimal | None = None, now: datetime | None = None) -> Balance:
    entries = SpendEntry.objects.filter(created_at__gte=month_start(now))
    return _balance(entries, cap if cap is not None else monthly_cap())


# ------------------------------------------------------------------ estimates
def run_time(machine: FactoryMachine) -> tuple[Decimal | None, str]:
    """Compute seconds one call of ``machine`` typically bills, and whence.

    The median of its last measured runs once there are a few
    (``"measured"``), else the catalog's typical run time (``"typical"``),
    else None (``"assumed"``: the estimate falls back to a guess).
    """
    measured = list(
        SpendEntry.objects.filter(
            machine=machine, source=SpendSource.PROVIDER, unit="compute_second",
        ).order_by("-id").values_list("units", flat=True)[:MEASURED_WINDOW]
    )
    if len(measured) >= MEASURED_RUNS:
        return Decimal(median(measured)).quantize(CENTS), "measured"
    if machine.typical_run_seconds is not None:
        return machine.typical_run_seconds, "typical"
    return None, "assumed"


def typical_seconds(machine: FactoryMachine) -> Decimal | None:
    """Compute seconds one call of ``machine`` typically bills (see ``run_time``)."""
    return run_time(machine)[0]


# --------------------------------------------------------------- reservations
def _check(what: str, balance: Balance, cost: Decimal) -> None:
    if balance.budget is not None and balance.committed + cost > balance.budget:
        raise BudgetError(
            f"{what}: budget {_money(balance.budget)}, committed "
            f"{_money(balance.committed)}, this order {_money(cost)}, which "
            f"is {_money(balance.committed + cost - balance.budget)} too much; "
            f"{_money(max(balance.left, Decimal(0)))} is left"
        )


def check_budget(project: Project | None, cost: Decimal) -> None:
    """Refuse ``cost`` when it would cross the project's budget or the
    monthly cap as they stand now (no lock: for previews)."""
    if project is not None and project.budget is not None:
        _check(f"over the budget of project {project}", project_balance(project), cost)
    cap = monthly_cap()
    if cap is not None:
        _check("over this month's spending cap", month_balance(cap), cost)


def reserve(
    order: Order, cost: Decimal, count: int, *, user: AbstractBaseUser | None = None,
    note: str = "",
) -> SpendEntry | None:
    """Lock the project and the cap, check them and reserve ``cost``.

    Call inside the transaction that writes the items: the locks are held
    until it ends, so the check and the reservation cannot interleave with
    another placement's. Raises BudgetError with the numbers.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("reserve() must run inside the transaction writing the items")
    project = None
    if order.project_id is not None:
        project = Project.objects.select_for_update().get(pk=order.project_id)
    cap = MonthlyCap.objects.select_for_update().first()
    if project is not None and project.budget is not None:
        _check(f"over the budget of project {project}", project_balance(project), cost)
    if cap is not None and cap.amount is not None:
        _check("over this month's spending cap", month_balance(cap.amount), cost)
    if not cost:
        return None
    machine = order.machine
    return SpendEntry.objects.create(
        order=order, project=project, provider_id=machine.provider_id, machine=machine,
        user=user or order.created_by, source=SpendSource.RESERVATION,
        units=count, unit="items", unit_price=0, amount=cost,
        currency=machine.price_currency, note=note[:500],
    )


# ------------------------------------------------------------------- settling
def _entry(item: OrderItem, source: str, amount: Decimal, **fields) -> SpendEntry:
    machine = item.machine
    return SpendEntry(
        item=item, order_id=item.order_id, project_id=item.order.project_id,
        provider_id=machine.provider_id, machine=machine,
        user_id=item.order.created_by_id, request_id=item.request_id or "",
        source=source, amount=amount, currency=machine.price_currency, **fields,
    )


def _release(item: OrderItem) -> SpendEntry | None:
    if not item.cost:
        return None
    return _entry(item, SpendSource.RELEASE, -item.cost, note="reservation released")


def price_of(machine: FactoryMachine) -> Price:
    return Price(machine.price_amount, machine.price_unit, machine.price_currency)


def actual_charge(item: OrderItem, outputs: list[RemoteOutput]) -> Charge:
    """What the provider billed for a completed ``item``, by its own rule."""
    from factory.providers import get_backend

    facts = [OutputFacts(p.media.width, p.media.height, p.media.duration)
             for p in item.products.select_related("media").order_by("output_index")]
    backend = get_backend(item.machine.provider.slug)
    return backend.charge(price_of(item.machine), outputs, facts)


def refused_charge(item: OrderItem, outputs: list[RemoteOutput]) -> Charge | None:
    """What a completed request whose outputs were refused here was billed,
    where the answer alone tells (no output was stored to measure)."""
    from factory.providers import get_backend

    backend = get_backend(item.machine.provider.slug)
    charge = backend.charge(price_of(item.machine), outputs,
                            [OutputFacts() for _ in outputs])
    return charge if charge.reported else None


def settle_completed(item: OrderItem, outputs: list[RemoteOutput]) -> None:
    """Complete ``item`` and write its actual charge and release, atomically.

    A charge the answer does not report is taken at the estimate (source
    ``estimate``) so that nothing spent goes unrecorded; reconciliation
    corrects it from the provider's own records.
    """
    charge = actual_charge(item, outputs)
    if charge.reported:
        actual = _entry(item, SpendSource.PROVIDER, charge.amount, units=charge.units,
                        unit=charge.unit, unit_price=charge.unit_price)
    else:
        actual = _entry(item, SpendSource.ESTIMATE, item.cost or Decimal(0),
                        unit=item.machine.price_unit,
                        unit_price=item.machine.price_amount,
                        note="the provider reported nothing to bill from")
    with transaction.atomic():
        if not OrderItem.objects.filter(pk=item.pk).complete(cost=item.cost):
            return  # another run of the collection completed it first
        item.status = ItemStatus.COMPLETED
        SpendEntry.objects.bulk_create(
            [e for e in (actual, _release(item)) if e is not None],
            ignore_conflicts=True,
        )
    if actual.amount:
        enforce_caps(item.order.project_id)


def unfinished_charge(item: OrderItem, status: RemoteStatus) -> Charge | None:
    """What the provider billed for ``item`` although it failed or was
    cancelled (hardware time it ran), by its own rule; None for nothing."""
    from factory.providers import get_backend

    backend = get_backend(item.machine.provider.slug)
    return backend.unfinished_charge(price_of(item.machine), status)


def settle_unbilled(
    items: Iterable[OrderItem], charges: dict[int, Charge] | None = None,
) -> None:
    """Release the reservations of items that failed or were cancelled.

    Most failed and cancelled generations are not billed (see
    docs/operations.md); ``charges`` holds, per item id, what a provider
    reported it billed anyway (Replicate's hardware time), written as the
    item's actual charge. Reconciliation records a correction for anything
    else a provider says it billed. Rerun-safe.
    """
    charges = charges or {}
    entries = []
    for item in items:
        charge = charges.get(item.pk)
        if charge is not None and charge.amount:
            entries.append(_entry(
                item, SpendSource.PROVIDER, charge.amount, units=charge.units,
                unit=charge.unit, unit_price=charge.unit_price,
                note="billed by the provider although the item did not complete"))
        entries.append(_release(item))
    entries = [e for e in entries if e is not None]
    if entries:
        SpendEntry.objects.bulk_create(entries, ignore_conflicts=True)


def settle_cancelled_run(item: OrderItem, status: RemoteStatus) -> None:
    """Charge a cancelled ``item`` for what its request was billed once the
    provider stopped it; nothing while it still runs. Rerun-safe."""
    if not status.is_final:
        return
    charge = unfinished_charge(item, status)
    if charge is not None and charge.amount:
        SpendEntry.objects.bulk_create([_entry(
            item, SpendSource.PROVIDER, charge.amount, units=charge.units,
            unit=charge.unit, unit_price=charge.unit_price,
            note="billed for the time it ran before it was cancelled")],
            ignore_conflicts=True)


def settle_finished_ids(ids: list[int], charges: dict[int, Charge] | None = None) -> None:
    """``settle_unbilled`` for items given by id (one query to load them)."""
    if ids:
        settle_unbilled(OrderItem.objects.filter(pk__in=ids).select_related(
            "machine__provider", "order"), charges)


# ----------------------------------------------------------------------- caps
def enforce_caps(project_id: int | None) -> int:
    """Cancel pending work once actual spend reaches a cap; running items finish.

    Returns how many items were cancelled.
    """
    from factory.production.cancel import cancel_items

    stopped = 0
    if project_id is not None:
        project = Project.objects.get(pk=project_id)
        balance = project_balance(project)
        if balance.reached:
            stopped += _stop(
                OrderItem.objects.filter(order__project_id=project_id),
                f"project {project} reached its budget: {_money(balance.actual)} "
                f"spent of {_money(balance.budget)}", cancel_items,
            )
    cap = monthly_cap()
    if cap is not None:
        balance = month_balance(cap)
        if balance.reached:
            stopped += _stop(
                OrderItem.objects.all(),
                f"this month's spending cap is reached: {_money(balance.actual)} "
                f"spent of {_money(cap)}", cancel_items,
            )
    return stopped


def _stop(items, reason: str, cancel_items) -> int:
    pending = list(items.filter(status=ItemStatus.PENDING).values_list("pk", flat=True))
    if not pending:
        return 0
    cancelled = cancel_items(pending)
    gone = list(OrderItem.objects.filter(pk__in=pending, status=ItemStatus.CANCELLED)
                .values_list("pk", flat=True))
    OrderItem.objects.filter(pk__in=gone).update(last_error=reason[:4000])
    ItemEvent.objects.bulk_create(
        [ItemEvent(item_id=pk, kind=EventKind.STOPPED, message=reason) for pk in gone])
    log.warning("%s: %d pending item(s) cancelled", reason, cancelled)
    return cancelled

"""Read-only figures from the spend ledger, for the dashboard and reports.

Each function is one aggregate query over ``SpendEntry`` whatever the
number of entries. ``actual`` is what the providers took (sources
provider, estimate and correction); ``committed`` adds the reservations
still open. Amounts are in the budget currency (USD); entries in another
currency are left out, as budgets leave them out.
"""
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from factory.models import ItemStatus, Order, SpendEntry, SpendSource
from factory.models.spend import ACTUAL
from factory.spending import BUDGET_CURRENCY

ZERO = Decimal(0)
# Dimensions a report groups by: name -> (id field, label field).
DIMENSIONS = {
    "project": ("project_id", "project__name"),
    "machine": ("machine_id", "machine__name"),
    "provider": ("provider_id", "provider__name"),
    "user": ("user_id", "user__username"),
}
ACTUAL_Q = Q(source__in=ACTUAL)
# The estimate of items that were billed: the reservation each completed
# item released when its actual charge was written.
BILLED_ESTIMATE_Q = Q(source=SpendSource.RELEASE, item__status=ItemStatus.COMPLETED)


@dataclass(frozen=True)
class SpendRow:
    """One group of a report: what was charged and what is still held."""

    key: int | None
    label: str
    actual: Decimal
    committed: Decimal

    @property
    def held(self) -> Decimal:
        return self.committed - self.actual


@dataclass(frozen=True)
class EstimateRow:
    """Estimate versus actual charge of the billed items of one machine or order."""

    key: int | None
    label: str
    billed_items: int
    estimated: Decimal
    actual: Decimal

    @property
    def difference(self) -> Decimal:
        return self.actual - self.estimated

    @property
    def ratio(self) -> Decimal | None:
        """Actual as a share of the estimate: 1.10 is 10 % over."""
        return (self.actual / self.estimated).quantize(Decimal("0.01")) \
            if self.estimated else None


def ledger(since: datetime | None = None):
    entries = SpendEntry.objects.filter(currency=BUDGET_CURRENCY)
    return entries.filter(created_at__gte=since) if since is not None else entries


def spend_by_day(days: int = 30, now: datetime | None = None) -> list[tuple[date, Decimal]]:
    """Actual spend of each of the last ``days`` days (today last), zeros kept."""
    today = timezone.localdate(now or timezone.now())
    first = today - timedelta(days=days - 1)
    start = timezone.make_aware(datetime.combine(first, datetime.min.time()))
    sums = dict(
        ledger(start).actual().order_by()
        .annotate(day=TruncDate("created_at")).values("day")
        .annotate(total=Sum("amount")).values_list("day", "total")
    )
    return [(day, sums.get(day) or ZERO)
            for day in (first + timedelta(days=n) for n in range(days))]


def spend_by(dimension: str, since: datetime | None = None) -> list[SpendRow]:
    """Actual and committed spend per project, machine, provider or user."""
    if dimension not in DIMENSIONS:
        raise ValueError(f"unknown dimension {dimension!r}; "
                         f"the dimensions are {', '.join(DIMENSIONS)}")
    key, label = DIMENSIONS[dimension]
    rows = (ledger(since).order_by().values(key, label)
            .annotate(actual=Sum("amount", filter=ACTUAL_Q), committed=Sum("amount"))
            .order_by("-actual", label))
    return [SpendRow(row[key], row[label] or "(none)", row["actual"] or ZERO,
                     row["committed"] or ZERO) for row in rows]


def _estimate_rows(entries, key: str, label: str) -> list[EstimateRow]:
    rows = (entries.order_by().values(key, label).annotate(
        billed=Count("item", filter=ACTUAL_Q & Q(item__isnull=False), distinct=True),
        estimated=Sum("amount", filter=BILLED_ESTIMATE_Q),
        actual=Sum("amount", filter=ACTUAL_Q),
    ).order_by(label))
    return [EstimateRow(row[key], row[label] or "(none)", row["billed"],
                        -(row["estimated"] or ZERO), row["actual"] or ZERO)
            for row in rows]


def estimate_vs_actual_by_machine(since: datetime | None = None) -> list[EstimateRow]:
    """Per machine: the estimate of its billed items against their charges."""
    return _estimate_rows(ledger(since), "machine_id", "machine__name")


@dataclass(frozen=True)
class OrderSpend:
    """An order's money: estimated when placed, reserved, charged, still held."""

    estimated: Decimal
    reserved: Decimal
    billed: EstimateRow
    committed: Decimal

    @property
    def held(self) -> Decimal:
        return self.committed - self.billed.actual


def order_spend(order: Order) -> OrderSpend:
    """Estimate versus actual for one order, in one query."""
    rows = ledger().filter(order=order).aggregate(
        billed=Count("item", filter=ACTUAL_Q & Q(item__isnull=False), distinct=True),
        estimated=Sum("amount", filter=BILLED_ESTIMATE_Q),
        actual=Sum("amount", filter=ACTUAL_Q),
        reserved=Sum("amount", filter=Q(source=SpendSource.RESERVATION)),
        committed=Sum("amount"),
    )
    billed = EstimateRow(order.pk, str(order), rows["billed"],
                         -(rows["estimated"] or ZERO), rows["actual"] or ZERO)
    return OrderSpend(order.estimated_cost, rows["reserved"] or ZERO, billed,
                      rows["committed"] or ZERO)

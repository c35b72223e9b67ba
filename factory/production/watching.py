"""Reads for watching orders run: tallies by state, throughput, failures.

Every read here costs a fixed number of queries whatever the number of
items, so pages that poll them every few seconds stay cheap at scale.
"""
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Case, Count, Max, Q, Value, When
from django.db.models.functions import Left
from django.utils import timezone

from factory.models import ItemStatus, Order, OrderItem, OrderStatus, Product

CLOSED = (OrderStatus.DONE, OrderStatus.DONE_WITH_FAILURES, OrderStatus.CANCELLED)
IN_FLIGHT = (
    ItemStatus.SUBMITTING, ItemStatus.SUBMITTED, ItemStatus.COLLECTING,
    ItemStatus.SUBMIT_UNKNOWN,
)
# Throughput of a running order is measured over its most recent minutes,
# so a stall shows up as a falling rate instead of a stale average.
RATE_WINDOW = timedelta(minutes=5)
MESSAGE_CHARS = 200
GRID_PRODUCTS = 24
TABLE_ITEMS = 50
TOP_FAILURES = 5


@dataclass(frozen=True)
class Tally:
    """Items of one order by state; retried failures are left out."""

    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    in_flight: int = 0
    pending: int = 0
    retried: int = 0  # failed items a later attempt replaced

    @classmethod
    def from_counts(cls, counts: dict[str, int], attempts: int = 0) -> "Tally":
        """Build from item counts by status and the number of retry attempts.

        A failed item is retried at most once, so each attempt stands for
        exactly one failure that no longer counts against the order.
        """
        return cls(
            completed=counts.get(ItemStatus.COMPLETED, 0),
            failed=counts.get(ItemStatus.FAILED, 0) - attempts,
            cancelled=counts.get(ItemStatus.CANCELLED, 0),
            in_flight=sum(counts.get(status, 0) for status in IN_FLIGHT),
            pending=counts.get(ItemStatus.PENDING, 0),
            retried=attempts,
        )

    @property
    def total(self) -> int:
        return self.finished + self.unfinished

    @property
    def items(self) -> int:
        """Every item row, the retried failures included."""
        return self.total + self.retried

    @property
    def finished(self) -> int:
        return self.completed + self.failed + self.cancelled

    @property
    def unfinished(self) -> int:
        return self.in_flight + self.pending

    def share(self, part: int) -> float:
        """``part`` as a percentage of the total, for bar widths."""
        return round(100 * part / self.total, 2) if self.total else 0.0

    @property
    def percent(self) -> int:
        """Finished items in whole percent; 100 only when all are finished."""
        if not self.total:
            return 0
        return 100 if not self.unfinished else min(99, 100 * self.finished // self.total)


@dataclass(frozen=True)
class FailureGroup:
    message: str
    count: int


@dataclass
class OrderSnapshot:
    """What the order page shows of a placed order, read in one go."""

    order: Order
    tally: Tally
    per_minute: float | None = None  # finished items per minute
    eta_seconds: float | None = None
    failures: list[FailureGroup] = field(default_factory=list)
    product_count: int = 0
    products: list[Product] = field(default_factory=list)
    items: list[OrderItem] = field(default_factory=list)

    @property
    def is_closed(self) -> bool:
        """The order will not change any more: pages stop polling it."""
        return self.order.status in CLOSED

    @property
    def took_seconds(self) -> float | None:
        """How long a closed order ran, from placing to finishing."""
        order = self.order
        if not self.is_closed or not order.placed_at or not order.finished_at:
            return None
        return (order.finished_at - order.placed_at).total_seconds()

    @property
    def placeholders(self) -> int:
        """Empty tiles standing for products still to come in the grid."""
        if self.is_closed:
            return 0
        room = max(0, GRID_PRODUCTS - len(self.products))
        return min(room, self.tally.unfinished)


def tally_orders(order_ids: Iterable[int]) -> dict[int, Tally]:
    """Tallies of many orders in one grouped query; every id gets one."""
    ids = list(order_ids)
    rows = (
        OrderItem.objects.filter(order_id__in=ids).order_by()
        .values("order_id", "status")
        .annotate(n=Count("id"), attempts=Count("retry_of"))
    )
    counts: dict[int, dict[str, int]] = {pk: {} for pk in ids}
    attempts = dict.fromkeys(ids, 0)
    for row in rows:
        counts[row["order_id"]][row["status"]] = row["n"]
        attempts[row["order_id"]] += row["attempts"]
    return {pk: Tally.from_counts(counts[pk], attempts[pk]) for pk in ids}


def attach_tallies(orders: list[Order]) -> None:
    """Set ``order.tally`` on each order with one query for all of them."""
    tallies = tally_orders(order.pk for order in orders)
    for order in orders:
        order.tally = tallies[order.pk]


def watch_order(order: Order, now: datetime | None = None) -> OrderSnapshot:
    """Tally, throughput, ETA, top failures, first products and items.

    Five queries at most, whatever the order's size: one grouped tally
    with completion times, one grouped failure count, one product count
    and two bounded slices.
    """
    now = now or timezone.now()
    since = max(order.placed_at or now, now - RATE_WINDOW)
    items = OrderItem.objects.filter(order=order)
    rows = list(
        items.order_by().values("status").annotate(
            n=Count("id"), attempts=Count("retry_of"), last=Max("completed_at"),
            recent=Count("id", filter=Q(completed_at__gte=since)),
        )
    )
    tally = Tally.from_counts(
        {row["status"]: row["n"] for row in rows},
        sum(row["attempts"] for row in rows),
    )
    snapshot = OrderSnapshot(order=order, tally=tally)
    snapshot.per_minute = _rate(snapshot, rows, since, now)
    if snapshot.per_minute and tally.unfinished and not snapshot.is_closed:
        snapshot.eta_seconds = 60 * tally.unfinished / snapshot.per_minute
    if tally.failed:
        snapshot.failures = top_failures(items)
    products = Product.objects.filter(item__order=order)
    snapshot.product_count = products.count()
    if snapshot.product_count:
        snapshot.products = list(
            products.select_related("media", "item")
            .order_by("item__index", "output_index")[:GRID_PRODUCTS]
        )
    snapshot.items = list(items.order_by("index")[:TABLE_ITEMS])
    return snapshot


def _rate(
    snapshot: OrderSnapshot, rows: list[dict], since: datetime, now: datetime
) -> float | None:
    """Finished items per minute: recent ones while running, all once closed."""
    finished = [row for row in rows if row["last"] is not None]
    if snapshot.is_closed:
        start = snapshot.order.placed_at
        ends = [row["last"] for row in finished]
        if start is None or not ends:
            return None
        count, seconds = sum(row["n"] for row in finished), (max(ends) - start)
    else:
        count, seconds = sum(row["recent"] for row in finished), (now - since)
    seconds = max(seconds.total_seconds(), 1.0)
    return 60 * count / seconds if count else None


def top_failures(items, limit: int = TOP_FAILURES) -> list[FailureGroup]:
    """The most common messages among failures nobody retried yet."""
    rows = (
        items.filter(status=ItemStatus.FAILED, retries__isnull=True)
        .annotate(message=Left("last_error", MESSAGE_CHARS))
        .order_by().values("message").annotate(n=Count("id"))
        .order_by("-n", "message")[:limit]
    )
    return [FailureGroup(row["message"] or "(no message)", row["n"]) for row in rows]


def orders_to_watch(limit: int) -> list[Order]:
    """Running orders first, then placed ones, then the newest, with tallies.

    Two queries: the orders, then one grouped count of their items.
    """
    first = Case(
        When(status=OrderStatus.RUNNING, then=Value(0)),
        When(status=OrderStatus.PLACED, then=Value(1)),
        default=Value(2),
    )
    return list(
        Order.objects.exclude(status=OrderStatus.DRAFT)
        .select_related("machine")
        .order_by(first, "-created_at", "-pk")
        .with_tallies()[:limit]
    )


@dataclass(frozen=True)
class ProviderLoad:
    name: str
    in_flight: int
    pending: int
    limit: int


def load_by_provider() -> list[ProviderLoad]:
    """Unfinished items per provider, in flight and waiting, in one query."""
    rows = (
        OrderItem.objects.filter(status__in=(*IN_FLIGHT, ItemStatus.PENDING))
        .order_by().values(
            "machine__provider__name", "machine__provider__concurrency_limit"
        ).annotate(
            in_flight=Count("id", filter=Q(status__in=IN_FLIGHT)),
            pending=Count("id", filter=Q(status=ItemStatus.PENDING)),
        ).order_by("machine__provider__name")
    )
    return [
        ProviderLoad(
            row["machine__provider__name"], row["in_flight"], row["pending"],
            row["machine__provider__concurrency_limit"],
        )
        for row in rows
    ]

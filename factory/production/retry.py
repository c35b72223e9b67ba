"""Retry failed items as linked new attempts; the failed ones stay as they are."""
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, F, Max, QuerySet, Sum

from factory.models import FactoryMachine, ItemStatus, Order, OrderItem, OrderStatus
from factory.production import limits
from factory.spending import reserve


# OrderItem.cost's precision: SQLite sums decimals as floats.
COST_PRECISION = Decimal("0.0001")


@dataclass(frozen=True)
class RetryPlan:
    """What retrying a selection would queue and spend; nothing is written."""

    count: int = 0
    costs: dict[str, Decimal] = field(default_factory=dict)  # per currency


def retryable_items(items: QuerySet | Iterable[int]) -> QuerySet:
    """The failed items a retry would repeat: not yet retried, order open."""
    if not isinstance(items, QuerySet):
        items = OrderItem.objects.filter(pk__in=list(items))
    return items.filter(status=ItemStatus.FAILED, retries__isnull=True).exclude(
        order__status=OrderStatus.CANCELLED
    )


def plan_retry(items: QuerySet | Iterable[int]) -> RetryPlan:
    """Count and estimated cost of ``retry_failed_items`` on the same items.

    Each attempt costs what its failed item was estimated at, so the sum
    is grouped by the machines' price currency.
    """
    rows = list(
        retryable_items(items)
        .values("machine__price_currency")
        .annotate(n=Count("id"), cost=Sum("cost"))
        .order_by("machine__price_currency")
    )
    return RetryPlan(
        count=sum(row["n"] for row in rows),
        costs={
            row["machine__price_currency"]:
                (row["cost"] or Decimal(0)).quantize(COST_PRECISION)
            for row in rows
        },
    )


def retry_failed_items(
    items: QuerySet | Iterable[int], user: AbstractBaseUser | None = None,
) -> list[OrderItem]:
    """Create one pending attempt per failed item and queue it on commit.

    Each attempt copies the machine, field values, parameters, seed and
    estimated cost, points back through ``retry_of`` and takes the next
    free index of its order, which is reopened. Items already retried and
    items of cancelled orders are skipped, so a rerun queues nothing twice.
    Their estimate is reserved as placing reserves it: a retry that would
    cross a budget raises BudgetError and writes nothing.
    """
    wanted = retryable_items(items)
    with transaction.atomic():
        order_ids = sorted(set(wanted.values_list("order_id", flat=True)))
        # Locking the orders serialises retries, numbering and reruns.
        orders = {o.pk: o for o in Order.objects.select_for_update(of=("self",))
                  .select_related("machine").filter(pk__in=order_ids)}
        failed = list(wanted.order_by("order_id", "index"))
        attempts = _new_attempts(failed)
        for order_id, order in orders.items():
            added = [a for a in attempts if a.order_id == order_id]
            reserve(order, sum((a.cost or Decimal(0) for a in added), Decimal(0)),
                    len(added), user=user, note=f"retrying {len(added):,} item(s)")
        OrderItem.objects.bulk_create(attempts)
        _reopen(attempts)
        transaction.on_commit(lambda: admit_attempts(attempts))
    return attempts


def admit_attempts(attempts: list[OrderItem]) -> None:
    """Queue the new attempts machine by machine (``limits.admit``)."""
    by_machine: dict[int, list[int]] = {}
    for attempt in attempts:
        by_machine.setdefault(attempt.machine_id, []).append(attempt.pk)
    machines = FactoryMachine.objects.select_related("provider").in_bulk(by_machine)
    for machine_id, ids in by_machine.items():
        limits.admit(machines[machine_id], ids)


def _new_attempts(failed: list[OrderItem]) -> list[OrderItem]:
    last = dict(
        OrderItem.objects.filter(order_id__in={i.order_id for i in failed})
        .values("order_id").annotate(last=Max("index")).values_list("order_id", "last")
    )
    attempts = []
    for item in failed:
        last[item.order_id] += 1
        attempts.append(OrderItem(
            order_id=item.order_id, machine_id=item.machine_id,
            index=last[item.order_id], field_values=item.field_values,
            parameters=item.parameters, seed=item.seed, cost=item.cost,
            retry_of=item,
        ))
    return attempts


def _reopen(attempts: list[OrderItem]) -> None:
    """Count the new attempts in their orders and set them running again."""
    for order_id in {a.order_id for a in attempts}:
        added = [a for a in attempts if a.order_id == order_id]
        cost = sum((a.cost or Decimal(0) for a in added), Decimal(0))
        Order.objects.filter(pk=order_id).update(
            status=OrderStatus.RUNNING, finished_at=None,
            item_count=F("item_count") + len(added),
            estimated_cost=F("estimated_cost") + cost,
        )

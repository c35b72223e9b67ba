"""Order workflows: preview, place and cancel. Never sees a request or form."""
import difflib
import json
import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Iterator

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from factory.models import FactoryMachine, Order, OrderItem, OrderStatus, SeedStrategy
from factory.parameters.pricing import estimate_cost
from factory.parameters.schema import ParameterError, schema_errors
from factory.parameters.sweeps import count_items, expand

SEED_LIMIT = 2**32
_random = random.SystemRandom()


@dataclass
class PlannedItem:
    index: int
    machine: FactoryMachine
    field_values: dict[str, Any]
    parameters: dict[str, Any]
    seed: int | None
    cost: Decimal

    @property
    def parameters_json(self) -> str:
        return json.dumps(self.parameters, ensure_ascii=False)


@dataclass
class OrderPlan:
    count: int
    items: list[PlannedItem]
    estimated_cost: Decimal = Decimal(0)
    warnings: list[str] = field(default_factory=list)


def _unknown_key_error(machine: FactoryMachine, key: str, where: str) -> str:
    accepted = machine.accepted_keys
    close = difflib.get_close_matches(key, accepted, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return (
        f"{where}: {machine.slug} does not accept {key!r}.{hint} "
        f"It accepts: {', '.join(accepted)}."
    )


def _seed_for(order: Order, index: int) -> int:
    if order.seed_strategy == SeedStrategy.RANDOM:
        return _random.randrange(SEED_LIMIT)
    start = order.seed or 0
    if order.seed_strategy == SeedStrategy.INCREMENT:
        return (start + index) % SEED_LIMIT
    return start


def resolve_parameters(
    order: Order, machine: FactoryMachine, values: dict[str, Any], index: int
) -> tuple[dict[str, Any], int | None]:
    """Defaults, then safety, base parameters, prompt and swept values."""
    user_set = {**order.base_parameters, **values}
    for key in user_set:
        if key not in machine.input_schema.get("properties", {}):
            raise ParameterError(_unknown_key_error(machine, key, f"item {index}"))
    params = {**machine.defaults, **machine.safety_parameters(order.safety_checker)}
    if order.prompt:
        params["prompt"] = order.prompt
    params.update(user_set)
    seed = None
    if "seed" in machine.input_schema["properties"]:
        seed = int(params["seed"]) if "seed" in values else _seed_for(order, index)
        params["seed"] = seed
    return params, seed


def _planned_items(order: Order) -> Iterator[PlannedItem]:
    machine = order.machine
    for index, values in enumerate(expand(order.sweeps, order.runs)):
        params, seed = resolve_parameters(order, machine, values, index)
        problems = schema_errors(machine.input_schema, params)
        if problems:
            raise ParameterError(f"item {index}: " + "; ".join(problems))
        cost = estimate_cost(machine.price_amount, machine.price_unit, params)
        yield PlannedItem(index, machine, values, params, seed, cost)


def _check_limits(order: Order, count: int, cost: Decimal) -> None:
    ceiling = order.item_ceiling or settings.ORDER_ITEM_CEILING
    if count > ceiling:
        raise ParameterError(
            f"this order expands to {count:,} items, over the ceiling of "
            f"{ceiling:,}; an operator with permission can raise it for this order"
        )
    project = order.project
    if project is not None and project.budget is not None:
        spent = project.orders.exclude(pk=order.pk).exclude(
            status=OrderStatus.DRAFT
        ).aggregate(total=Sum("estimated_cost"))["total"] or Decimal(0)
        if spent + cost > project.budget:
            raise ParameterError(
                f"estimated cost {cost} would take project {project} over its "
                f"budget ({spent} of {project.budget} already committed)"
            )


def plan_order(order: Order) -> OrderPlan:
    """Expand and validate every item; refuse huge sweeps before building."""
    if not order.machine.is_active or not order.machine.provider.is_active:
        raise ParameterError(f"machine {order.machine.slug} is inactive")
    count = count_items(order.sweeps, order.runs)
    ceiling = order.item_ceiling or settings.ORDER_ITEM_CEILING
    if count > ceiling:
        _check_limits(order, count, Decimal(0))
    items = list(_planned_items(order))
    total = sum((item.cost for item in items), Decimal(0))
    _check_limits(order, count, total)
    return OrderPlan(count=count, items=items, estimated_cost=total)


def place_order(order: Order) -> Order:
    """Write all items of a draft order in one transaction, then enqueue them.

    Nothing is written or queued when any item fails validation. Placing an
    order that is no longer a draft raises, so a double click spends once.
    """
    from factory.production.queues import enqueue_items

    plan = plan_order(order)
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.status != OrderStatus.DRAFT:
            raise ParameterError(f"order {order.pk} was already placed")
        created = OrderItem.objects.bulk_create(
            OrderItem(
                order=order, machine=item.machine, index=item.index,
                field_values=item.field_values, parameters=item.parameters,
                seed=item.seed, cost=item.cost,
            )
            for item in plan.items
        )
        order.status = OrderStatus.PLACED
        order.item_count = plan.count
        order.estimated_cost = plan.estimated_cost
        order.placed_at = timezone.now()
        order.save(update_fields=["status", "item_count", "estimated_cost", "placed_at"])
        ids = [item.pk for item in created] if created and created[0].pk else list(
            order.items.values_list("pk", flat=True)
        )
        transaction.on_commit(lambda: enqueue_items(ids))
    return order

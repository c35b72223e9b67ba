"""What the live preview says about an order form as typed."""
from dataclasses import dataclass
import json
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils.translation import ngettext

from factory.models import FactoryMachine
from factory.ordering import PlannedItem, count_order_items
from factory.parameters.pricing import estimate
from factory.parameters.schema import ParameterError
from factory.spending import run_time

PREVIEW_ITEMS = 8


@dataclass
class ItemRow:
    index: int
    prompt: str
    swept: list[tuple[str, str]]
    seed: int | None
    cost: Decimal
    machine: str


@dataclass
class ErrorRow:
    field: str
    message: str


def place_label(count: int, cost: Decimal, currency: str) -> str:
    """The place button's words: 'Place 6 items · 0.1500 USD'."""
    words = ngettext("Place %(n)d item", "Place %(n)d items", count) % {"n": count}
    return f"{words} · {cost} {currency}"


RUN_TIME_WORDS = {
    "measured": "the median of this machine's last measured runs",
    "typical": "the catalog's typical run time for this machine",
    "assumed": "assumed: no run time is known for this machine yet",
}


def item_estimate(machine: FactoryMachine, params: dict[str, Any]) -> dict[str, Any]:
    """One item's estimate as the preview shows it: formula, unit, sources."""
    seconds, run_time_source = (run_time(machine) if machine.price_unit == "compute_second"
                                else (None, ""))
    found = estimate(machine.price_amount, machine.price_unit, params, seconds)
    return {
        "formula": found.formula(machine.price_currency),
        "unit": machine.get_price_unit_display(),
        "price_source": machine.price_source,
        "run_time": RUN_TIME_WORDS.get(run_time_source, ""),
    }


def _row(item: PlannedItem) -> ItemRow:
    prompt = item.parameters.get("prompt", "")
    swept = [(key, str(value)) for key, value in item.field_values.items()
             if key not in ("prompt", "seed")]
    return ItemRow(item.index, prompt, swept, item.seed, item.cost, item.machine.name)


def _errors(form) -> list[ErrorRow]:
    rows = []
    for name, messages in form.errors.items():
        label = str(form[name].label) if name in form.fields else "Order"
        rows.extend(ErrorRow(label, str(message)) for message in messages)
    return rows


def _count(form) -> int | None:
    if form.plan is not None:
        return form.plan.count
    try:
        return count_order_items(form.instance) if form.instance.machine_id else None
    except (ParameterError, TypeError, ValueError):
        return None


def preview_context(form) -> dict[str, Any]:
    """Count, cost and its formula, warnings, first items, located errors."""
    plan = form.plan
    machine = getattr(form.instance, "machine", None) if form.instance.machine_id else None
    count = _count(form)
    context: dict[str, Any] = {
        "form": form, "plan": plan, "count": count, "machine": machine,
        "errors": _errors(form), "can_place": plan is not None and not form.errors,
        "confirm_above": settings.ORDER_CONFIRM_ABOVE,
    }
    if plan is None or machine is None:
        return context
    currency = machine.price_currency
    first = plan.items[0] if plan.items else None
    context.update(
        items=[_row(item) for item in plan.items[:PREVIEW_ITEMS]],
        currency=currency,
        label=place_label(plan.count, plan.estimated_cost, currency),
        price=machine.price_label,
        estimate=item_estimate(machine, first.parameters) if first else None,
        free=not machine.price_amount,
        item_cost=first.cost if first else Decimal(0),
        first_sent=json.dumps(first.parameters, indent=2, ensure_ascii=False)
        if first else "",
        confirms=plan.estimated_cost > Decimal(str(settings.ORDER_CONFIRM_ABOVE))
        or bool(form.instance.item_ceiling),
        cross_machine=len({item.machine.pk for item in plan.items}) > 1,
    )
    return context

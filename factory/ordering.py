"""Order workflows: plan and place. Never sees a request or form."""
import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Iterator

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from factory.models import (
    FactoryMachine, Order, OrderItem, OrderStatus, PromptMode, SeedStrategy, Wildcard,
)
from factory.models.orders import SEED_LIMIT
from factory.parameters.items import SENTINEL, MachineRules, resolve_item
from factory.parameters.prompts import count_prompts, expand_prompts
from factory.parameters.schema import ParameterError, check_plain_json, check_text
from factory.parameters.sweeps import check_sweeps, count_items, expand
from factory.spending import check_budget, reserve, typical_seconds

MACHINE_FIELD = "machine"
PROMPT_FIELD = "prompt"
MAX_WARNINGS = 20
# The largest count PostgreSQL's integer columns hold: runs, samples, ceilings.
MAX_COUNT = 2**31 - 1


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


def _whole(value: Any, name: str, low: int, high: int) -> None:
    """Refuse a count or seed that is not a whole number in ``low..high``."""
    if isinstance(value, bool) or not isinstance(value, int) or not (
            low <= value <= high):
        raise ParameterError(
            f"{name}: must be a whole number from {low:,} to {high:,}, "
            f"got {value!r}")


def check_order_fields(order: Order) -> None:
    """Refuse an order's own fields of the wrong type or out of range.

    The admin's form fields check these too, but orders also come from
    code (recipes, "order again", scripts): this is the one check they all
    pass through before anything is expanded.
    """
    if not isinstance(order.prompt, str):
        raise ParameterError(f"prompt: must be text, got {order.prompt!r}")
    check_text(order.prompt, "prompt")
    for name, kind in (("base_parameters", dict), ("tokens", dict),
                       ("sweeps", list), ("required_parameters", list)):
        value = getattr(order, name)
        if not isinstance(value, kind):
            shape = "an object {…}" if kind is dict else "a list […]"
            raise ParameterError(f"{name}: must be {shape}, got {value!r}")
        check_plain_json(value, name)
    if PROMPT_FIELD in order.base_parameters:
        raise ParameterError(
            "base_parameters: 'prompt' has a field of its own on the order; "
            "write it there, where templates and wildcards are read")
    if order.prompt_mode not in PromptMode.values:
        raise ParameterError(f"prompt_mode: unknown mode {order.prompt_mode!r}; "
                             f"use {' or '.join(PromptMode.values)}")
    _whole(order.runs, "runs", 1, MAX_COUNT)
    _whole(order.prompt_samples, "prompt_samples", 1, MAX_COUNT)
    if order.item_ceiling is not None:
        _whole(order.item_ceiling, "item_ceiling", 1, MAX_COUNT)
    if order.seed is not None:
        _whole(order.seed, "seed", 0, SEED_LIMIT - 1)
    _whole(order.seed_base, "seed_base", 0, SEED_LIMIT - 1)
    if order.seed_strategy not in SeedStrategy.values:
        raise ParameterError(
            f"seed_strategy: unknown strategy {order.seed_strategy!r}; use "
            f"{', '.join(SeedStrategy.values)}")


class _Context:
    """What every item of one order shares, computed once."""

    def __init__(self, order: Order) -> None:
        check_order_fields(order)
        self.order = order
        self.sweeps = check_sweeps(order.sweeps)
        self.swept = {e["field"] for group in self.sweeps for e in group}
        self.machines = _order_machines(order, self.sweeps)
        self.cross_machine = MACHINE_FIELD in self.swept
        self.required = set(order.required_parameters or [])
        self.rules = {
            slug: _rules(machine, order.safety_checker)
            for slug, machine in self.machines.items()
        }
        texts = [order.prompt, *self._swept_prompts()]
        self.wildcards = (_wildcards() if any(isinstance(t, str) and "__" in t
                                              for t in texts) else {})
        self.sweeps = self._expanded_prompt_sweep()

    def _swept_prompts(self) -> list[Any]:
        return [v for group in self.sweeps for e in group
                if e["field"] == PROMPT_FIELD for v in e["values"]]

    def _expanded_prompt_sweep(self) -> list:
        """Sweeps with each swept prompt read as a template, like the
        order's own prompt: the same syntax, wildcards, tokens and length
        cap. Each must make one prompt; variants belong in the prompt."""
        if PROMPT_FIELD not in self.swept:
            return self.sweeps
        tokens = self.prompt_tokens()
        expanded = []
        for group in self.sweeps:
            entries = []
            for entry in group:
                if entry["field"] == PROMPT_FIELD:
                    entry = {**entry, "values": [
                        self._one_prompt(value, number, tokens)
                        for number, value in enumerate(entry["values"], 1)]}
                entries.append(entry)
            expanded.append(entries)
        return expanded

    def _one_prompt(self, value: Any, number: int, tokens: dict[str, Any]) -> str:
        where = f"sweeps (prompt {number})"
        if not isinstance(value, str):
            raise ParameterError(f"{where}: a prompt is text, got {value!r}")
        count = count_prompts(value, self.wildcards, tokens=tokens, field=where)
        if count != 1:
            raise ParameterError(
                f"{where}: makes {count:,} prompts; a swept prompt must make "
                "one, so put variants in the order's prompt instead")
        return expand_prompts(value, self.wildcards, limit=1, tokens=tokens,
                              field=where)[0]

    def prompt_tokens(self) -> dict[str, Any]:
        """Tokens known before items exist; later values stay as sentinels."""
        later = set(self.swept)
        for rules in self.rules.values():
            later.update(rules.properties)
        tokens = {name: f"{SENTINEL}{name}{SENTINEL}" for name in later}
        tokens.update(self.order.base_parameters)
        tokens.update(self.order.tokens)
        return tokens

    def prompt_count(self) -> int:
        if not self.order.prompt or PROMPT_FIELD in self.swept:
            return 1
        return count_prompts(
            self.order.prompt, self.wildcards, self.order.prompt_mode,
            limit=self.order.prompt_samples, tokens=self.prompt_tokens(),
        )

    def prompts(self, limit: int) -> list[str] | None:
        order = self.order
        if not order.prompt or PROMPT_FIELD in self.swept:
            return None
        random_mode = order.prompt_mode == PromptMode.RANDOM
        return expand_prompts(
            order.prompt, self.wildcards, order.prompt_mode,
            limit=order.prompt_samples if random_mode else limit,
            # Preview and placing must draw the same prompts.
            seed=order.seed if order.seed is not None else order.seed_base,
            tokens=self.prompt_tokens(),
        )


def _rules(machine: FactoryMachine, safety_on: bool) -> MachineRules:
    return MachineRules(
        slug=machine.slug, schema=machine.input_schema, aliases=machine.aliases,
        base={**machine.defaults, **machine.safety_parameters(safety_on)},
        price_amount=machine.price_amount, price_unit=machine.price_unit,
        typical_seconds=(typical_seconds(machine)
                         if machine.price_unit == "compute_second" else None),
    )


def _order_machines(order: Order, sweeps: list) -> dict[str, FactoryMachine]:
    slugs = [v for group in sweeps for e in group if e["field"] == MACHINE_FIELD
             for v in e["values"]]
    if not slugs:
        machines = {order.machine.slug: order.machine}
    else:
        found = FactoryMachine.objects.select_related("provider").filter(slug__in=slugs)
        machines = {m.slug: m for m in found}
        missing = sorted(set(map(str, slugs)) - set(machines))
        if missing:
            raise ParameterError(f"sweeps: unknown machine(s) {', '.join(missing)}")
    for machine in machines.values():
        if not machine.is_active or not machine.provider.is_active:
            raise ParameterError(f"machine {machine.slug} is inactive")
        setting = machine.provider.missing_key
        if setting:
            raise ParameterError(
                f"machine {machine.slug}: {machine.provider} cannot be used until "
                f"{setting} is set in the environment"
            )
    return machines


def _wildcards() -> dict[str, list[str]]:
    return dict(Wildcard.objects.values_list("name", "values"))


def random_seed(seed_base: int, index: int) -> int:
    """Item ``index``'s random seed: drawn from the order's root, so the
    preview and the placed order agree and no two items share a stream."""
    digest = hashlib.blake2b(f"{seed_base}:{index}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big") % SEED_LIMIT


def _seed_for(order: Order, index: int) -> int:
    if order.seed_strategy == SeedStrategy.RANDOM:
        return random_seed(order.seed_base, index)
    start = order.seed or 0
    if order.seed_strategy == SeedStrategy.INCREMENT:
        return (start + index) % SEED_LIMIT
    return start


def _planned_items(
    ctx: _Context, prompts: list[str] | None
) -> Iterator[tuple[PlannedItem, list[str]]]:
    order = ctx.order
    fixed_prompt = order.prompt or None
    sweeps = ctx.sweeps
    if prompts is not None and len(prompts) == 1:
        fixed_prompt = prompts[0]
    elif prompts:
        sweeps = sweeps + [[{"field": PROMPT_FIELD, "values": prompts}]]
    default_slug = next(iter(ctx.machines))
    for index, values in enumerate(expand(sweeps, order.runs)):
        user = {**order.base_parameters, **values}
        slug = str(user.pop(MACHINE_FIELD, default_slug))
        prompt = user.pop(PROMPT_FIELD, fixed_prompt)
        resolved = resolve_item(
            ctx.rules[slug], user, prompt, _seed_for(order, index),
            strict=not ctx.cross_machine, required=ctx.required,
            tokens=order.tokens, index=index,
        )
        yield PlannedItem(
            index, ctx.machines[slug], values, resolved.parameters, resolved.seed,
            resolved.cost,
        ), resolved.warnings


def _check_ceiling(order: Order, count: int) -> None:
    ceiling = order.item_ceiling or settings.ORDER_ITEM_CEILING
    if count > ceiling:
        raise ParameterError(
            f"this order expands to {count:,} items, over the ceiling of "
            f"{ceiling:,}; an operator with permission can raise it for this order"
        )


def _largest(model: type, name: str) -> Decimal:
    """The largest amount a decimal column holds (12 digits, 4 after the point)."""
    column = model._meta.get_field(name)
    return Decimal(10) ** (column.max_digits - column.decimal_places) - (
        Decimal(10) ** -column.decimal_places)


def _check_cost(cost: Decimal, items: list[PlannedItem]) -> None:
    """Refuse a cost the order's or an item's column could not record."""
    largest = _largest(Order, "estimated_cost")
    dearest = max((item.cost for item in items), default=Decimal(0))
    if cost > largest or dearest > _largest(OrderItem, "cost"):
        raise ParameterError(
            f"estimated cost {cost:,} is over the {largest:,} an order can "
            "record; split the order or check the machine's price")


def count_order_items(order: Order) -> int:
    """The exact item count, by arithmetic, before any item is built."""
    ctx = _Context(order)
    return count_items(ctx.sweeps, order.runs) * ctx.prompt_count()


def plan_order(order: Order) -> OrderPlan:
    """Expand and validate every item; refuse huge orders before building."""
    ctx = _Context(order)
    count = count_items(ctx.sweeps, order.runs) * ctx.prompt_count()
    _check_ceiling(order, count)
    items, warnings = [], {}
    for item, item_warnings in _planned_items(ctx, ctx.prompts(limit=count)):
        items.append(item)
        warnings.update(dict.fromkeys(item_warnings))
    total = sum((item.cost for item in items), Decimal(0))
    _check_cost(total, items)
    check_budget(order.project, total)
    return OrderPlan(count, items, total, list(warnings)[:MAX_WARNINGS])


def place_order(order: Order, user: AbstractBaseUser | None = None) -> Order:
    """Write all items of a draft order in one transaction, then queue them
    (``limits.admit``: submit jobs for as many as the provider has slots for,
    a place in its line for the rest).

    Nothing is written or queued when any item fails validation. Placing an
    order that is no longer a draft raises, so a double click spends once.
    The estimate is reserved in the same transaction, under the project's
    lock: an order that would cross its budget or the monthly cap raises
    BudgetError and writes nothing.
    """
    from factory.production.limits import admit

    plan = plan_order(order)
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.status != OrderStatus.DRAFT:
            raise ParameterError(f"order {order.pk} was already placed")
        reserve(order, plan.estimated_cost, plan.count, user=user,
                note=f"placing {plan.count:,} item(s)")
        OrderItem.objects.bulk_create(
            (OrderItem(
                order=order, machine=item.machine, index=item.index,
                field_values=item.field_values, parameters=item.parameters,
                seed=item.seed, cost=item.cost,
            ) for item in plan.items),
            batch_size=1000,
        )
        order.status = OrderStatus.PLACED
        order.item_count = plan.count
        order.estimated_cost = plan.estimated_cost
        order.placed_at = timezone.now()
        order.save(update_fields=["status", "item_count", "estimated_cost", "placed_at"])
        ids = list(order.items.order_by("index").values_list("pk", flat=True))
        machine = order.machine
        transaction.on_commit(lambda: admit(machine, ids))
    return order

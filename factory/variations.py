"""Variations of a finished call: new seeds, or another machine.

Never sees a request or form. Each workflow writes one new draft Order
linked by ``source_order`` and places nothing; a rerun writes another
draft. Placing goes through the normal flow, which plans every item again.
"""
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, NamedTuple

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError

from factory.models import (
    FactoryMachine, Order, OrderStatus, Product, SeedStrategy,
)
from factory.models.orders import draw_seed_base
from factory.ordering import MACHINE_FIELD, PROMPT_FIELD, random_seed
from factory.parameters.schema import ParameterError
from factory.parameters.translate import CANONICAL, MachineInputs, translate
from factory.recipes import _verbatim

MAX_VARIATIONS = 100
_TITLE_LENGTH = Order._meta.get_field("title").max_length
# The prompt travels verbatim on its own field; the seed is what varies.
_SEED_KEYS = ("prompt", "seed")


@dataclass
class Carried:
    """Parameters translated for one machine, and what did not survive."""

    params: dict[str, Any] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Which source keys each target key came from (width+height → image_size).
    origins: dict[str, tuple[str, ...]] = field(default_factory=dict)


class MachineSwitch(NamedTuple):
    """A draft on another machine and what its translation left behind."""

    order: Order
    dropped: list[str]  # source keys the machine cannot take
    notes: list[str]  # how kept values were carried, e.g. a size as a ratio


def _title(text: str) -> str:
    return text[:_TITLE_LENGTH]


def _distinct_seed_base(count: int, avoid: int | None) -> int:
    """A seed root whose first ``count`` seeds differ from each other and
    from ``avoid``; a clash is rare, so a redraw almost never happens."""
    while True:
        base = draw_seed_base()
        seeds = {random_seed(base, index) for index in range(count)}
        if len(seeds) == count and avoid not in seeds:
            return base


def vary_seed(
    product: Product, count: int, user: AbstractBaseUser | None = None
) -> Order:
    """Write one draft of ``count`` items repeating ``product``'s call with
    new random seeds.

    The prompt is kept verbatim and the parameters as sent, on the same
    machine and project; only the seed changes, drawn at random per item
    and different from the product's. A machine without a seed input gets
    ``count`` plain repeats, each drawn by the provider. Places nothing.
    """
    if not 1 <= count <= MAX_VARIATIONS:
        raise ValidationError(
            f"Ask for 1 to {MAX_VARIATIONS} variations, not {count}."
        )
    item = product.item
    sent = item.parameters
    return Order.objects.create(
        title=_title(f"{product} · {count} new seeds"),
        machine=product.machine, project=product.project, source_order=item.order,
        prompt=_verbatim(sent.get("prompt", product.prompt)),
        base_parameters={k: v for k, v in sent.items() if k not in _SEED_KEYS},
        tokens={}, sweeps=[], runs=count, seed_strategy=SeedStrategy.RANDOM,
        seed=None, seed_base=_distinct_seed_base(count, product.seed),
        safety_checker=item.order.safety_checker, status=OrderStatus.DRAFT,
        created_by=user,
    )


def _inputs(machine: FactoryMachine) -> MachineInputs:
    return MachineInputs(machine.slug, machine.input_schema, machine.aliases)


def _chunks(params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Keys translated alone, except width and height, which travel
    together because some machines take them as one size or ratio."""
    rest = dict(params)
    chunks = []
    if "width" in rest and "height" in rest:
        chunks.append({"width": rest.pop("width"), "height": rest.pop("height")})
    return chunks + [{key: value} for key, value in rest.items()]


def carry_parameters(
    machine: FactoryMachine, params: Mapping[str, Any],
    required: Iterable[str] = (),
) -> Carried:
    """Translate ``params`` for ``machine`` (non-strict), key by key.

    A key the machine cannot take, or does not know at all, is dropped and
    listed; a required one raises ValidationError naming it.
    """
    required = set(required)
    carried = Carried()
    for chunk in _chunks(params):
        names = set(chunk) | {CANONICAL.get(key, key) for key in chunk}
        try:
            result = translate(_inputs(machine), chunk, strict=False,
                               required=required)
        except ParameterError as exc:
            if names & required:
                raise ValidationError(
                    f"{machine.slug} cannot take required parameter "
                    f"{', '.join(sorted(chunk))}: {exc}"
                ) from None
            result = None
        if not result or not result.params:
            carried.dropped.extend(chunk)
            continue
        carried.params.update(result.params)
        carried.origins.update(dict.fromkeys(result.params, tuple(chunk)))
        carried.notes.extend(w for w in result.warnings if "Dropped for" not in w)
    return carried


def _carry_group(
    machine: FactoryMachine, group: list[dict], required: set[str]
) -> tuple[list[dict], list[str], list[str]]:
    """One sweep group for ``machine``: its rows translated, zipped again.

    A target key missing from any row is dropped with its source keys, so
    the group's lists keep one length.
    """
    kept = [e for e in group if e["field"] == PROMPT_FIELD]
    swept = [e for e in group if e["field"] not in (MACHINE_FIELD, PROMPT_FIELD)]
    dropped = [f"{MACHINE_FIELD} (sweep)" for e in group if e["field"] == MACHINE_FIELD]
    if not swept:
        return kept, dropped, []
    fields = [e["field"] for e in swept]
    rows = [carry_parameters(machine, dict(zip(fields, values)), required)
            for values in zip(*(e["values"] for e in swept))]
    first = rows[0]
    common = [key for key in first.params if all(key in row.params for row in rows)]
    survived = {source for key in common for source in first.origins[key]}
    dropped += [f"{name} (sweep)" for name in fields if name not in survived]
    kept += [{"field": key, "values": [row.params[key] for row in rows]}
             for key in common]
    notes = list(dict.fromkeys(note for row in rows for note in row.notes))
    return kept, dropped, notes


def carry_sweeps(
    machine: FactoryMachine, sweeps: list, required: Iterable[str] = ()
) -> tuple[list, list[str], list[str]]:
    """Sweeps translated for ``machine``: swept values, dropped, notes."""
    new, dropped, notes = [], [], []
    for group in sweeps:
        kept, lost, said = _carry_group(machine, group, set(required))
        if kept:
            new.append(kept)
        dropped += lost
        notes += said
    return new, dropped, notes


def _from_order(
    order: Order, machine: FactoryMachine
) -> tuple[dict, list[str], list[str]]:
    required = order.required_parameters or []
    base = _without_safety(order.machine, order.base_parameters)
    carried = carry_parameters(machine, base, required)
    sweeps, dropped, notes = carry_sweeps(machine, order.sweeps, required)
    fields = {
        "title": _title(f"{order} on {machine.name}"), "source_order": order,
        "project": order.project, "prompt": order.prompt,
        "prompt_mode": order.prompt_mode, "prompt_samples": order.prompt_samples,
        "tokens": order.tokens, "base_parameters": carried.params,
        "required_parameters": required, "sweeps": sweeps, "runs": order.runs,
        "seed_strategy": order.seed_strategy, "seed": order.seed,
        "safety_checker": order.safety_checker,
    }
    return fields, [*carried.dropped, *dropped], [*carried.notes, *notes]


def _from_product(
    product: Product, machine: FactoryMachine
) -> tuple[dict, list[str], list[str]]:
    item = product.item
    source = item.order
    # What the user chose for this item, not the old machine's defaults.
    chosen = {**source.base_parameters, **item.field_values}
    chosen = {k: v for k, v in chosen.items()
              if k not in (MACHINE_FIELD, PROMPT_FIELD, "seed")}
    carried = carry_parameters(
        machine, _without_safety(product.machine, chosen),
        source.required_parameters or [],
    )
    fields = {
        "title": _title(f"{product} on {machine.name}"), "source_order": source,
        "project": product.project,
        "prompt": _verbatim(item.parameters.get("prompt", product.prompt)),
        "tokens": source.tokens, "base_parameters": carried.params, "sweeps": [],
        "runs": 1, "seed_strategy": SeedStrategy.FIXED, "seed": product.seed,
        "safety_checker": source.safety_checker,
    }
    return fields, carried.dropped, carried.notes


def _without_safety(machine: FactoryMachine, params: Mapping[str, Any]) -> dict:
    """The old machine's NSFW switch comes back from ``safety_checker``."""
    key = (machine.safety or {}).get("key")
    return {k: v for k, v in params.items() if k != key}


def _fields(
    source: Order | Product, machine: FactoryMachine
) -> tuple[dict, list[str], list[str]]:
    if isinstance(source, Product):
        return _from_product(source, machine)
    return _from_order(source, machine)


def preview_switch(source: Order | Product, machine: FactoryMachine) -> list[str]:
    """The keys a draft of ``source`` on ``machine`` would drop; writes
    nothing. Raises ValidationError as ``order_on_machine`` would."""
    return list(dict.fromkeys(_fields(source, machine)[1]))


def order_on_machine(
    source: Order | Product, machine: FactoryMachine,
    user: AbstractBaseUser | None = None,
) -> MachineSwitch:
    """Write a draft of ``source`` on ``machine``; return it with the keys
    dropped and notes on how kept values were carried.

    Base parameters and swept values go through the translation layer
    (non-strict): a key the machine lacks or a value it cannot take is
    dropped, unless the order lists it as required, which raises
    ValidationError. A product repeats its own prompt verbatim and its seed;
    an order keeps its prompt template, sweeps, runs and seeds. A sweep over
    ``machine`` is removed, so every item runs on ``machine``: a group that
    only named machines disappears (fewer items), machine values zipped
    with other lists leave those lists as they were.
    """
    if not machine.is_active or not machine.provider.is_active:
        raise ValidationError(f"{machine} is inactive.")
    fields, dropped, notes = _fields(source, machine)
    order = Order.objects.create(
        machine=machine, status=OrderStatus.DRAFT, created_by=user, **fields
    )
    return MachineSwitch(order, list(dict.fromkeys(dropped)), notes)

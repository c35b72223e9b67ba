"""Recipe workflows: templates, "order again" and wildcard imports.

Never sees a request or form. Template and order workflows only add rows:
a rerun writes another draft, or refuses a template name already used.
A rerun of a wildcard import rewrites nothing.
"""
from collections.abc import Iterable
from dataclasses import dataclass, field
import re
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from factory.models import (
    Order, OrderStatus, Product, SeedStrategy, Template, Wildcard,
)
from factory.parameters.wildcard_files import load_wildcard_file

# What a template keeps of an order: everything that shapes the items.
RECIPE_FIELDS = (
    "machine", "prompt", "prompt_mode", "prompt_samples", "tokens",
    "base_parameters", "required_parameters", "sweeps", "runs",
    "seed_strategy", "seed", "safety_checker",
)
# Compared as whole values by diff_orders; dicts are compared key by key.
PLAIN_FIELDS = (
    "machine", "project", "prompt", "prompt_mode", "prompt_samples", "runs",
    "seed_strategy", "seed", "safety_checker", "required_parameters",
)
AGAIN = " (again)"
MAX_AGAIN = 200  # drafts one bulk "order again" writes
_TITLE_LENGTH = Order._meta.get_field("title").max_length


@dataclass(frozen=True)
class Change:
    """One difference between two orders; ``None`` means absent."""

    field: str
    old: Any
    new: Any


@dataclass
class ImportReport:
    """What a wildcard import wrote: new rows, replaced values, every name."""

    created: int = 0
    updated: int = 0
    names: list[str] = field(default_factory=list)

    @property
    def unchanged(self) -> int:
        return len(self.names) - self.created - self.updated


def _recipe(source: Order | Template) -> dict[str, Any]:
    return {name: getattr(source, name) for name in RECIPE_FIELDS}


def save_as_template(
    order: Order, name: str, user: AbstractBaseUser | None = None
) -> Template:
    """Write a new Template with every recipe field of ``order``.

    A blank or already used name raises ValidationError and writes nothing,
    so a rerun with the same name is refused rather than duplicated.
    """
    name = name.strip()
    if not name:
        raise ValidationError("A template needs a name.")
    clash = ValidationError(
        f"A template named {name!r} already exists; choose another name."
    )
    if Template.objects.filter(name=name).exists():
        raise clash
    try:
        with transaction.atomic():
            return Template.objects.create(
                name=name, description=f"Saved from {order}.", **_recipe(order),
                created_by=user,
            )
    except IntegrityError:  # the same name saved meanwhile
        raise clash from None


def order_from_template(
    template: Template, user: AbstractBaseUser | None = None
) -> Order:
    """Write a new draft Order with the template's recipe; places nothing.

    A rerun writes another draft.
    """
    return Order.objects.create(
        title=template.name[:_TITLE_LENGTH], template=template,
        status=OrderStatus.DRAFT, **_recipe(template), created_by=user,
    )


def order_again(order: Order, user: AbstractBaseUser | None = None) -> Order:
    """Write a new draft copy of ``order``, linked by ``source_order``.

    Project and template carry over; a raised item ceiling does not, since
    it was granted for that one order. Places nothing; a rerun writes
    another draft.
    """
    title = str(order).removesuffix(AGAIN)[: _TITLE_LENGTH - len(AGAIN)] + AGAIN
    return Order.objects.create(
        title=title, project=order.project, template=order.template,
        source_order=order, status=OrderStatus.DRAFT, **_recipe(order),
        created_by=user,
    )


def _verbatim(prompt: str) -> str:
    """A resolved prompt written so the template syntax leaves it as is."""
    # Backslash escapes braces, bars and the underscores of a would-be
    # wildcard, $$ writes $; see parameters.prompts.
    escaped = re.sub(r"[{}|]", r"\\\g<0>", prompt).replace("$", "$$")
    return re.sub(r"_{2,}", lambda run: "\\_" * len(run.group()), escaped)


def order_again_from_product(
    product: Product, user: AbstractBaseUser | None = None
) -> Order:
    """Write a new one-item draft that repeats ``product``'s exact call.

    The parameters as sent become base parameters, the prompt is kept
    verbatim, the seed is fixed to the product's, and the project is the
    product's. Places nothing; a
    rerun writes another draft.
    """
    item = product.item
    sent = item.parameters
    base = {k: v for k, v in sent.items() if k not in ("prompt", "seed")}
    return Order.objects.create(
        title=f"{product}{AGAIN}", machine=product.machine,
        project=product.project, source_order=item.order,
        prompt=_verbatim(sent.get("prompt", product.prompt)),
        base_parameters=base,
        tokens={}, sweeps=[], runs=1, seed_strategy=SeedStrategy.FIXED,
        seed=product.seed, safety_checker=item.order.safety_checker,
        status=OrderStatus.DRAFT, created_by=user,
    )


def order_again_from_products(
    products: QuerySet[Product], user: AbstractBaseUser | None = None
) -> list[Order]:
    """One draft per product, as ``order_again_from_product`` writes it.

    More than ``MAX_AGAIN`` products raise ValidationError; otherwise all
    drafts or none are written. Places nothing; a rerun writes more drafts.
    """
    products = list(products[: MAX_AGAIN + 1])
    if len(products) > MAX_AGAIN:
        raise ValidationError(
            f"One go writes at most {MAX_AGAIN} drafts; select fewer products."
        )
    with transaction.atomic():
        return [order_again_from_product(product, user) for product in products]


def _dict_changes(name: str, old: dict, new: dict) -> list[Change]:
    return [
        Change(f"{name}.{key}", old.get(key), new.get(key))
        for key in sorted({*old, *new}, key=str)
        if old.get(key) != new.get(key) or (key in old) != (key in new)
    ]


def _sweep_values(sweeps: list) -> dict[str, Any]:
    return {entry["field"]: entry["values"] for group in sweeps for entry in group}


def _sweep_groups(sweeps: list) -> list[list[str]]:
    return [[entry["field"] for entry in group] for group in sweeps]


def diff_orders(old: Order, new: Order) -> list[Change]:
    """What ``new`` changes relative to ``old``: plain fields, then
    tokens, base parameters and swept values key by key."""
    changes = [
        Change(name, getattr(old, name), getattr(new, name))
        for name in PLAIN_FIELDS
        if getattr(old, name) != getattr(new, name)
    ]
    changes += _dict_changes("tokens", old.tokens, new.tokens)
    changes += _dict_changes(
        "base_parameters", old.base_parameters, new.base_parameters
    )
    changes += _dict_changes(
        "sweeps", _sweep_values(old.sweeps), _sweep_values(new.sweeps)
    )
    old_groups, new_groups = _sweep_groups(old.sweeps), _sweep_groups(new.sweeps)
    if old_groups != new_groups:
        changes.append(Change("sweeps.groups", old_groups, new_groups))
    return changes


def _load(filename: str, data: bytes) -> dict[str, list[str]]:
    """The file's wildcards with names checked, or a ValidationError."""
    try:
        found = load_wildcard_file(filename, data)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    name_field = Wildcard._meta.get_field("name")
    for name in found:
        try:
            name_field.run_validators(name)
        except ValidationError as exc:
            raise ValidationError(
                f"{filename}: wildcard name {name!r}: {' '.join(exc.messages)}"
            ) from None
    return found


def import_wildcard_files(files: Iterable[tuple[str, bytes]]) -> ImportReport:
    """Create or replace the Wildcards in ``files`` in one transaction.

    Every file is read before anything is written, so one malformed file
    raises ValidationError and changes nothing. A later file wins a name
    used twice. A rerun rewrites nothing and reports every name unchanged.
    """
    found: dict[str, list[str]] = {}
    for filename, data in files:
        found.update(_load(filename, data))
    report = ImportReport(names=list(found))
    with transaction.atomic():
        existing = Wildcard.objects.select_for_update().in_bulk(
            list(found), field_name="name"
        )
        for name, row in existing.items():
            if row.values != found[name]:
                row.values = found[name]
                row.save(update_fields=["values", "updated_at"])
                report.updated += 1
        new = [Wildcard(name=n, values=v) for n, v in found.items()
               if n not in existing]
        Wildcard.objects.bulk_create(new)
        report.created = len(new)
    return report


def import_wildcards(filename: str, data: bytes) -> ImportReport:
    """Create or replace the Wildcards of one .txt, .yaml/.yml or .json
    file in one transaction; see ``import_wildcard_files``."""
    return import_wildcard_files([(filename, data)])

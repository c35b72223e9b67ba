"""Read and check the seed JSON files, writing nothing.

A seed directory holds ``providers.json`` (``{"providers": [...]}``) and
``machines/*.json`` (``{"machines": [...]}``), one machine file per provider.
Every file is read and every entry checked before the loader in
``factory.seeding`` writes a row; the problems found are reported together,
each naming its file and machine, so one pass over the files can fix them.
"""
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
import json
from pathlib import Path
from typing import Any, Collection

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import models

from factory.models import FactoryMachine, Modality, PriceUnit, Provider
from factory.parameters.schema import ParameterError, check_machine_schema

REQUIRED = {
    "provider": ("slug", "name"),
    "machine": ("slug", "provider", "name", "endpoint_id", "modality",
                "input_schema", "price"),
}
OPTIONAL = {
    "provider": ("concurrency_limit", "description", "is_active"),
    "machine": ("version", "defaults", "aliases", "safety", "output_key",
                "description", "concurrency_limit", "is_active"),
}
MODELS = {"provider": Provider, "machine": FactoryMachine}
TEXT_FIELDS = ("name", "endpoint_id", "version", "output_key", "description")
PRICE_KEYS = {"amount", "unit", "currency", "source", "typical_seconds"}
MAX_PRICE = Decimal("999999.999999")  # price_amount: 12 digits, 6 decimals


class SeedError(ValueError):
    """Seed files that cannot be loaded; names the file, machine and problem."""


@dataclass
class Catalog:
    """Checked seed data: model field values by kind, then slug."""

    rows: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {"provider": {}, "machine": {}}
    )
    sources: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def providers(self) -> dict[str, dict[str, Any]]:
        return self.rows["provider"]

    @property
    def machines(self) -> dict[str, dict[str, Any]]:
        return self.rows["machine"]


def read_catalog(seed_dir: Path) -> Catalog:
    """Parse and check every seed file; SeedError lists every problem found."""
    seed_dir = Path(seed_dir).resolve()
    problems: list[str] = []
    catalog = Catalog()

    def label(path: Path) -> str:
        return str(path.relative_to(seed_dir.parent))

    path = seed_dir / "providers.json"
    for entry in _entries(path, "providers", label(path), problems):
        _add(catalog, "provider", entry, label(path), problems)
    files = sorted((seed_dir / "machines").glob("*.json"))
    if not files:
        problems.append(f"{label(seed_dir / 'machines')}: no machine files")
    for path in files:
        for entry in _entries(path, "machines", label(path), problems):
            _add(catalog, "machine", entry, label(path), problems)
    if problems:
        raise SeedError("Seed catalog not loaded:\n" + "\n".join(problems))
    return catalog


def _entries(path: Path, key: str, where: str, problems: list[str]) -> list[Any]:
    """The list under ``key`` in one JSON file, or [] with the problem noted."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.append(f"{where}: file is missing")
        return []
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        problems.append(f"{where}: not valid JSON: {exc}")
        return []
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        problems.append(f'{where}: expected {{"{key}": [...]}}')
        return []
    return data[key]


def _add(
    catalog: Catalog, kind: str, entry: Any, where: str, problems: list[str]
) -> None:
    """Keep a sound entry under its slug, or note what is wrong with it."""
    slug = entry.get("slug") if isinstance(entry, dict) else None
    found = entry_problems(kind, entry, catalog.providers)
    if not found and slug in catalog.rows[kind]:
        found = [f"slug is already used in {catalog.sources[kind, slug]}"]
    problems.extend(f"{where}: {kind} {slug!r}: {problem}" for problem in found)
    if not found:
        catalog.rows[kind][slug] = entry_fields(entry)
        catalog.sources[kind, slug] = where


def entry_fields(entry: dict[str, Any]) -> dict[str, Any]:
    """Model field values of a sound entry; absent optional fields stay as
    they are."""
    fields = {k: v for k, v in entry.items() if k not in ("slug", "price")}
    if "price" in entry:
        price = entry["price"]
        fields["price_amount"] = Decimal(price["amount"])
        fields["price_unit"] = price["unit"]
        fields["price_currency"] = price.get("currency", "USD")
        fields["price_source"] = price.get("source", "")
        typical = price.get("typical_seconds")
        fields["typical_run_seconds"] = Decimal(typical) if typical else None
    return fields


def entry_problems(
    kind: str, entry: Any, providers: Collection[str]
) -> list[str]:
    """What is wrong with one provider or machine entry; empty when sound.

    ``providers`` are the slugs a machine may name. The seed files and the
    admin's catalog import check entries with this same function.
    """
    if not isinstance(entry, dict):
        return ["each entry must be a JSON object"]
    found = [f"missing field {k!r}" for k in REQUIRED[kind] if k not in entry]
    unknown = sorted(set(entry) - {*REQUIRED[kind], *OPTIONAL[kind]})
    if unknown:
        found.append(f"unknown fields {unknown}")
    if found:
        return found
    found = _column_problems(entry, MODELS[kind])
    if kind == "machine":
        found += _machine_problems(entry, providers)
    return found


def _column_problems(
    entry: dict[str, Any], model: type[models.Model]
) -> list[str]:
    """Slug, text lengths, concurrency limit and is_active as the model takes them."""
    found = []
    try:
        validate_slug(entry["slug"])
    except (ValidationError, TypeError):
        found.append("slug must use only letters, digits, - and _")
    for name in (n for n in TEXT_FIELDS if n in entry):
        limit = model._meta.get_field(name).max_length
        if not isinstance(entry[name], str):
            found.append(f"{name} must be a string")
        elif limit and len(entry[name]) > limit:
            found.append(f"{name} is longer than {limit} characters")
    limit = entry.get("concurrency_limit", 1)
    if not (limit is None and model._meta.get_field("concurrency_limit").null
            or isinstance(limit, int) and not isinstance(limit, bool) and limit > 0):
        found.append("concurrency_limit must be a positive integer")
    if not isinstance(entry.get("is_active", True), bool):
        found.append("is_active must be true or false")
    return found


def _machine_problems(
    entry: dict[str, Any], providers: Collection[str]
) -> list[str]:
    found = []
    if entry["provider"] not in providers:
        found.append(f"unknown provider {entry['provider']!r}; providers.json "
                     f"lists {sorted(providers)}")
    if entry["modality"] not in Modality.values:
        found.append(f"modality {entry['modality']!r} is not one of "
                     f"{Modality.values}")
    return found + _price_problems(entry["price"]) + _schema_problems(entry)


def _price_problems(price: Any) -> list[str]:
    if not isinstance(price, dict) or set(price) - PRICE_KEYS:
        return ['price must be {"amount": "0.01", "unit": ..., "currency": ..., '
                '"source": ..., "typical_seconds": ...}']
    found = []
    if not isinstance(price.get("source", ""), str):
        found.append("price source must be a string: the pricing page it comes from")
    typical = price.get("typical_seconds")
    if typical is not None:
        try:
            sound = isinstance(typical, str) and 0 < Decimal(typical) < 10**6
        except InvalidOperation:
            sound = False
        if not sound:
            found.append(f'price typical_seconds must be a string like "6.5", '
                         f'not {typical!r}')
    elif price.get("unit") == "compute_second":
        found.append("a price per compute second needs typical_seconds: the run "
                     "time one call usually bills")
    if price.get("unit") not in PriceUnit.values:
        found.append(f"price unit {price.get('unit')!r} is not one of "
                     f"{PriceUnit.values}")
    if not isinstance(price.get("currency", "USD"), str):
        found.append("price currency must be a string")
    amount = price.get("amount")
    if not isinstance(amount, str):
        # A JSON float would arrive already rounded; a string stays exact.
        return found + [
            f'price amount must be a string, e.g. "0.025", not {amount!r}'
        ]
    try:
        exact = Decimal(amount)
        sound = 0 <= exact <= MAX_PRICE and exact.as_tuple().exponent >= -6
    except InvalidOperation:
        sound = False
    if not sound:
        found.append(
            f"price amount {amount!r} is not a decimal from 0 to {MAX_PRICE}"
        )
    return found


def _schema_problems(entry: dict[str, Any]) -> list[str]:
    """The schema, its defaults, the aliases and the safety switch agree."""
    schema, defaults = entry["input_schema"], entry.get("defaults", {})
    if not isinstance(defaults, dict):
        return ["defaults must be an object"]
    try:
        check_machine_schema(schema, defaults)
    except ParameterError as exc:
        return [str(exc)]
    accepted = schema["properties"]
    aliases = entry.get("aliases", {})
    if not isinstance(aliases, dict):
        return ["aliases must be an object"]
    found = [
        f"alias {name!r} points at {key!r}, which the schema lacks"
        for name, key in aliases.items()
        if not isinstance(key, str) or key not in accepted
    ]
    return found + _safety_problems(entry.get("safety", {}), defaults, accepted)


def _safety_problems(
    safety: Any, defaults: dict[str, Any], accepted: dict[str, Any]
) -> list[str]:
    if safety == {}:
        return []
    if not isinstance(safety, dict) or set(safety) - {"workflow"} != {"key", "off", "on"}:
        return ['safety must be {} or {"key": ..., "off": ..., "on": ...}, '
                'with "workflow": true for a switch sent beside the input']
    key = safety["key"]
    if not isinstance(key, str):
        return [f"safety key {key!r} must be a string"]
    if safety.get("workflow", False) is not False:
        # Sent beside the model's input (Civitai's workflow flag), so it is
        # no input: listing it would let a schema promise what is not sent.
        if safety["workflow"] is not True:
            return ['safety "workflow" must be true or absent']
        if key in accepted or key in defaults:
            return [f"workflow switch {key!r} is not a model input: leave it "
                    "out of the schema and the defaults"]
        return []
    if key not in accepted:
        return [f"safety key {key!r} is not in the schema"]
    if defaults.get(key) != safety["off"]:
        # Product rule: NSFW checkers start off and an order turns them on.
        return [f"defaults must set {key!r} to its off value {safety['off']!r}"]
    return []

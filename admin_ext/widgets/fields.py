"""What a sweep may vary on one machine, described for the sweep editor."""
from collections.abc import Iterable
from typing import Any

from factory.models import FactoryMachine

SEED_MAXIMUM = 2**32 - 1
SCALARS = ("integer", "number", "string", "boolean")
PROMPT_HELP = ("Each value replaces the prompt above. ${tokens} work in it; "
               "variants and wildcards do not.")
MACHINE_HELP = ("Each value runs the order on that machine; parameters a "
                "machine lacks are dropped with a warning in the preview.")


def _types(spec: dict[str, Any]) -> list[str]:
    """JSON types a property allows, nulls left out."""
    declared = spec.get("type")
    if isinstance(declared, str):
        declared = [declared]
    found = [t for t in declared or [] if t != "null"]
    for branch in spec.get("anyOf", []) + spec.get("oneOf", []):
        found += [t for t in _types(branch) if t not in found]
    if not found and "enum" in spec:
        found = ["string" if isinstance(v, str) else "number"
                 for v in spec["enum"][:1]]
    return found


def _enum(spec: dict[str, Any]) -> list[Any] | None:
    """Allowed values, from the property or from any of its branches."""
    values = list(spec.get("enum", []))
    for branch in spec.get("anyOf", []) + spec.get("oneOf", []):
        values += [v for v in _enum(branch) or [] if v not in values]
    return values or None


def _label(name: str, spec: dict[str, Any]) -> str:
    return spec.get("title") or name


def describe_field(name: str, spec: dict[str, Any],
                   group: str = "machine") -> dict[str, Any]:
    """One sweepable field; mixed or structured types become "object"."""
    types = _types(spec)
    kind = types[0] if len(types) == 1 and types[0] in SCALARS else "object"
    if not types:
        kind = "string"
    return {
        "name": name,
        "label": _label(name, spec),
        "type": kind,
        "enum": _enum(spec),
        "minimum": spec.get("minimum"),
        "maximum": spec.get("maximum"),
        "group": group,
    }


def sweepable_fields(
    machine: FactoryMachine,
    machines: Iterable[FactoryMachine] | None = None,
) -> list[dict[str, Any]]:
    """Fields a sweep on ``machine`` may vary: the order's, then the model's.

    Each is ``{"name", "label", "type", "enum", "minimum", "maximum",
    "group"}``, plus ``"help"`` where a field needs explaining; ``type`` is
    integer, number, string, boolean or object (JSON values), ``group`` is
    "order" or "machine". The safety switch is left
    out: the order's safety checkbox owns it. ``machines`` are the ones a
    ``machine`` sweep may pick (default: every active machine).
    """
    properties = machine.input_schema.get("properties", {})
    safety_key = (machine.safety or {}).get("key")
    if machines is None:
        machines = FactoryMachine.objects.active()
    slugs = [m.slug for m in machines if m.is_active]
    seed = {"type": "integer", "minimum": 0, "maximum": SEED_MAXIMUM,
            **properties.get("seed", {})}
    fields = [
        {**describe_field("prompt", {"type": "string"}, "order"),
         "help": PROMPT_HELP},
        describe_field("seed", seed, "order"),
        {**describe_field("machine", {"type": "string",
                                      "title": "compare machines"}, "order"),
         "enum": slugs or None, "help": MACHINE_HELP},
    ]
    fields += [
        describe_field(name, spec)
        for name, spec in properties.items()
        if name not in ("prompt", "seed", safety_key)
    ]
    return fields

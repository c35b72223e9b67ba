"""A machine's inputs as the order form offers them.

The form edits an order's *base parameters*: the values that differ from
the machine's defaults. The prompt, the seed and the NSFW switch have
fields of their own on the order, so the form does not offer them.
"""
from typing import Any

from factory.models import FactoryMachine
from factory.variations import carry_parameters

OWN_FIELDS = ("prompt", "seed")
# Schema keywords the form editor understands; the rest stay server-side.
KEPT = (
    "type", "title", "enum", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "minLength", "maxLength", "minItems", "maxItems",
    "additionalProperties", "required",
)


def offered_keys(machine: FactoryMachine) -> list[str]:
    """The machine's inputs the parameter form shows, in schema order."""
    skip = {*OWN_FIELDS, (machine.safety or {}).get("key")}
    return [key for key in machine.accepted_keys if key not in skip]


def _form_property(prop: dict[str, Any], default: Any) -> dict[str, Any]:
    out = {key: value for key, value in prop.items() if key in KEPT}
    if "description" in prop:
        out["help_text"] = prop["description"]
    if "anyOf" in prop:
        out["anyOf"] = [_form_property(option, None) for option in prop["anyOf"]]
    if "items" in prop and isinstance(prop["items"], dict):
        out["items"] = _form_property(prop["items"], None)
    if isinstance(prop.get("properties"), dict):
        out["properties"] = {
            name: _form_property(sub, sub.get("default"))
            for name, sub in prop["properties"].items()
        }
    if default is not None:
        out["default"] = default
    return out


def machine_defaults(machine: FactoryMachine) -> dict[str, Any]:
    """What the machine uses when an order leaves a key alone."""
    properties = machine.input_schema.get("properties", {})
    offered = offered_keys(machine)
    values = {
        key: properties[key]["default"] for key in offered
        if "default" in properties[key]
    }
    values.update((k, v) for k, v in machine.defaults.items() if k in offered)
    return values


def form_schema(machine: FactoryMachine) -> dict[str, Any]:
    """The jsonform schema of the machine's offered inputs, defaults filled."""
    properties = machine.input_schema.get("properties", {})
    defaults = machine_defaults(machine)
    return {
        "type": "object",
        "title": f"{machine.name} parameters",
        "properties": {
            key: _form_property(properties[key], defaults.get(key))
            for key in offered_keys(machine)
        },
        "additionalProperties": False,
    }


def in_machine_terms(
    machine: FactoryMachine, base: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """Base parameters in the machine's offered keys, and the keys dropped.

    The translation is ``carry_parameters``' (key by key, width and height
    together); a key that lands only on an input the form does not offer
    counts as dropped too.
    """
    carried = carry_parameters(machine, base)
    offered = set(offered_keys(machine))
    params = {k: v for k, v in carried.params.items() if k in offered}
    kept = {carried.origins[k] for k in params}
    lost = dict.fromkeys(
        source for key, source in carried.origins.items()
        if key not in offered and source not in kept
    )
    return params, [*carried.dropped, *(key for source in lost for key in source)]


def form_values(machine: FactoryMachine, base: dict[str, Any]) -> dict[str, Any]:
    """What the form shows: the defaults overlaid with the order's values."""
    params, _ = in_machine_terms(machine, base)
    return {**machine_defaults(machine), **params}


def overrides(machine: FactoryMachine, values: dict[str, Any]) -> dict[str, Any]:
    """The values that differ from the defaults; blanks left unset."""
    defaults = machine_defaults(machine)
    return {
        key: value for key, value in values.items()
        if value not in ("", None) and (key not in defaults or defaults[key] != value)
    }


def changed_for_switch(machine: FactoryMachine, values: dict[str, Any]) -> dict[str, Any]:
    """What to carry to another machine: the changed values, and a size
    as a whole (width with height) when either half changed."""
    changed = overrides(machine, values)
    if {"width", "height"} & set(changed) and {"width", "height"} <= set(values):
        changed.update(width=values["width"], height=values["height"])
    return changed

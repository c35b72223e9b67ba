"""A machine's input schema as rows a person can read: one per input."""
from dataclasses import dataclass
import json
from typing import Any

NO_DEFAULT = ""


@dataclass(frozen=True)
class FieldRow:
    """One top-level input of a machine, described in words."""

    name: str
    title: str
    type: str
    allowed: str
    default: str
    description: str
    required: bool
    choices: tuple[str, ...] = ()


def describe_schema(
    schema: dict[str, Any], defaults: dict[str, Any] | None = None
) -> list[FieldRow]:
    """One row per property, in schema order.

    The default shown is the machine's own default when it has one, else
    the schema's ``default``; ``NO_DEFAULT`` when neither exists.
    """
    # A half-edited machine may hold any JSON; show what can be read.
    schema = schema if isinstance(schema, dict) else {}
    defaults = defaults if isinstance(defaults, dict) else {}
    properties = schema.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    required = set(schema.get("required") or [])
    return [
        FieldRow(
            name=name,
            title=str(prop.get("title", "")),
            type=type_label(prop),
            allowed=allowed_label(prop),
            default=_default(name, prop, defaults),
            description=str(prop.get("description", "")),
            required=name in required,
            choices=tuple(_value(v) for v in prop.get("enum", [])),
        )
        for name, prop in properties.items()
        if isinstance(prop, dict)
    ]


def type_label(prop: dict[str, Any]) -> str:
    """``integer``, ``string (uri)``, ``array of object``, ``string or object``."""
    if "anyOf" in prop or "oneOf" in prop:
        kinds = [type_label(alt) for alt in prop.get("anyOf") or prop["oneOf"]]
        return " or ".join(dict.fromkeys(kinds))
    kind = prop.get("type")
    if isinstance(kind, list):
        label = " or ".join(str(k) for k in kind)
    elif kind:
        label = str(kind)
    elif "enum" in prop:
        label = "choice"
    else:
        label = "any"
    if label == "array" and isinstance(prop.get("items"), dict):
        label = f"array of {type_label(prop['items'])}"
    if "format" in prop:
        label = f"{label} ({prop['format']})"
    return label


def allowed_label(prop: dict[str, Any]) -> str:
    """Enum, numeric range, length and alternatives, joined by ``; ``."""
    alternatives = prop.get("anyOf") or prop.get("oneOf")
    if alternatives:
        return "; ".join(_alternative(alt, i) for i, alt in enumerate(alternatives))
    parts = [
        part for part in (
            _enum(prop), _range(prop), _length(prop), _items(prop), _keys(prop),
        ) if part
    ]
    return "; ".join(parts)


def _alternative(alt: dict[str, Any], index: int) -> str:
    title = alt.get("title") or f"option {index + 1}"
    detail = allowed_label(alt) or type_label(alt)
    return f"{title}: {detail}"


def _enum(prop: dict[str, Any]) -> str:
    if "enum" not in prop:
        return ""
    return "one of " + ", ".join(_value(v) for v in prop["enum"])


def _range(prop: dict[str, Any]) -> str:
    low, high = prop.get("minimum"), prop.get("maximum")
    if low is not None and high is not None:
        return f"{_value(low)}–{_value(high)}"
    bounds = [
        (f"≥ {_value(low)}" if low is not None else ""),
        _bound(prop, "exclusiveMinimum", ">"),
        (f"≤ {_value(high)}" if high is not None else ""),
        _bound(prop, "exclusiveMaximum", "<"),
    ]
    return ", ".join(b for b in bounds if b)


def _bound(prop: dict[str, Any], key: str, sign: str) -> str:
    # Draft 4 wrote exclusiveMinimum as a boolean beside minimum.
    value = prop.get(key)
    if value is None or isinstance(value, bool):
        return ""
    return f"{sign} {_value(value)}"


def _length(prop: dict[str, Any]) -> str:
    low, high = prop.get("minLength"), prop.get("maxLength")
    if low is not None and high is not None:
        return f"{low}–{high} characters"
    if high is not None:
        return f"up to {high} characters"
    if low is not None:
        return f"at least {low} characters"
    return ""


def _items(prop: dict[str, Any]) -> str:
    low, high = prop.get("minItems"), prop.get("maxItems")
    if low is not None and high is not None:
        count = f"{low}–{high} items"
    elif high is not None:
        count = f"up to {high} items"
    elif low is not None:
        count = f"at least {low} items"
    else:
        count = ""
    items = prop.get("items")
    keys = _keys(items) if isinstance(items, dict) else ""
    return "; ".join(part for part in (count, keys) if part)


def _keys(prop: dict[str, Any]) -> str:
    """The keys an object takes, required ones marked ``*``, with limits."""
    keys = prop.get("properties")
    if not isinstance(keys, dict) or not keys:
        return ""
    required = set(prop.get("required", []))
    return "keys " + ", ".join(
        _key(key, sub, key in required) for key, sub in keys.items()
    )


def _key(name: str, prop: Any, required: bool) -> str:
    label = f"{name}*" if required else name
    detail = allowed_label(prop) if isinstance(prop, dict) else ""
    return f"{label} ({detail})" if detail else label


def _default(name: str, prop: dict[str, Any], defaults: dict[str, Any]) -> str:
    if name in defaults:
        return _value(defaults[name])
    if "default" in prop:
        return _value(prop["default"])
    return NO_DEFAULT


def _value(value: Any) -> str:
    """Strings bare, everything else as JSON (``true``, ``[]``, ``3.5``)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)

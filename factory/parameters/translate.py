"""Translate what the user wrote into what one machine accepts.

Users write a model's own keys (``guidance_scale``) or common names
(``guidance``, ``steps``, ``width``/``height``). Each machine's catalog
``aliases`` map common names to its keys, so an order can go to several
machines at once. A key no machine vocabulary knows is always an error. A
known concept a machine lacks, or a value it cannot take, is an error on a
single-machine order or for a required parameter, and otherwise is dropped
for that machine with a warning.
"""
import difflib
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Mapping

from factory.parameters.schema import ParameterError, validator_for

SYNONYMS: dict[str, tuple[str, ...]] = {
    "steps": ("steps", "num_inference_steps"),
    "guidance": ("guidance", "guidance_scale", "cfg_scale", "cfgScale"),
    "negative_prompt": ("negative_prompt", "negativePrompt"),
    "num_outputs": ("num_outputs", "num_images", "quantity"),
    "output_format": ("output_format", "format"),
    "duration": ("duration", "seconds_total"),
    "seed": ("seed",),
    "width": ("width",),
    "height": ("height",),
    "image_size": ("image_size",),
    "aspect_ratio": ("aspect_ratio",),
}
CANONICAL = {key: common for common, keys in SYNONYMS.items() for key in keys}


@dataclass(frozen=True)
class MachineInputs:
    """The catalog facts translation reads."""

    slug: str
    schema: Mapping[str, Any]
    aliases: Mapping[str, str]

    @property
    def properties(self) -> Mapping[str, Any]:
        return self.schema.get("properties", {})


@dataclass
class Translation:
    params: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _fits(machine: MachineInputs, key: str, value: Any) -> bool:
    return validator_for(machine.properties[key]).is_valid(value)


def _unknown(machine: MachineInputs, key: str) -> str:
    """Why ``key`` is refused, with the closest name the machine does take."""
    props = machine.properties
    offered = list(props) + [
        common for common, target in machine.aliases.items()
        if target in props and common != target
    ]
    close = [c for c in difflib.get_close_matches(key, offered, n=3) if c != key]
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"{machine.slug} does not accept {key!r}.{hint}"


def _accepts(machine: MachineInputs) -> str:
    return f"It accepts: {', '.join(machine.properties)}."


def nearest_aspect_ratio(width: int, height: int, choices: list[str]) -> str:
    """The listed ratio closest to width:height."""
    target = Fraction(width, height)

    def distance(choice: str) -> Fraction:
        w, h = (int(part) for part in choice.split(":"))
        return abs(Fraction(w, h) - target)

    return min((c for c in choices if ":" in c), key=distance)


def _size(machine: MachineInputs, width: int, height: int) -> tuple[str, Any, str]:
    """Map width/height to this machine's size key, value and a note."""
    props = machine.properties
    if "image_size" in props and _fits(machine, "image_size", {"width": width, "height": height}):
        return "image_size", {"width": width, "height": height}, ""
    ratio_schema = props.get("aspect_ratio", {})
    if ratio_schema.get("enum"):
        ratio = nearest_aspect_ratio(width, height, ratio_schema["enum"])
        return "aspect_ratio", ratio, f"{width}×{height} sent as aspect_ratio {ratio}"
    return "", None, ""


class Translator:
    """Translate user parameters for one machine, collecting warnings."""

    def __init__(self, machine: MachineInputs, strict: bool, required: set[str]) -> None:
        self.machine = machine
        self.strict = strict
        self.required = required
        self.result = Translation()

    def _reject(self, key: str, reason: str) -> None:
        common = CANONICAL.get(key, key)
        if self.strict or key in self.required or common in self.required:
            raise ParameterError(reason)
        self.result.warnings.append(f"{reason} Dropped for {self.machine.slug}.")

    def _put(self, user_key: str, target: str, value: Any) -> None:
        if self.strict or _fits(self.machine, target, value):
            self.result.params[target] = value  # strict: the schema check reports it
        else:
            self._reject(user_key, f"{self.machine.slug} cannot take {user_key}={value!r}.")

    def add(self, key: str, value: Any) -> None:
        props = self.machine.properties
        if key in props:
            self._put(key, key, value)
            return
        common = CANONICAL.get(key)
        if common is None:
            raise ParameterError(_unknown(self.machine, key))
        target = self.machine.aliases.get(common)
        if target in props:
            self._put(key, target, value)
        else:
            self._reject(key, _unknown(self.machine, key))

    def add_size(self, width: int, height: int) -> None:
        target, value, note = _size(self.machine, width, height)
        if not target:
            self._reject("width", _unknown(self.machine, "width"))
            return
        if note:
            self.result.warnings.append(note + f" on {self.machine.slug}.")
        self._put("width", target, value)


def translate(
    machine: MachineInputs, user_params: Mapping[str, Any], *, strict: bool,
    required: set[str] = frozenset(),
) -> Translation:
    """Map ``user_params`` onto ``machine``'s own keys."""
    translator = Translator(machine, strict, set(required))
    props = machine.properties
    pending = dict(user_params)
    if "width" in pending and "height" in pending and "width" not in props:
        translator.add_size(pending.pop("width"), pending.pop("height"))
    refused = []
    for key, value in pending.items():
        try:
            translator.add(key, value)
        except ParameterError as exc:  # name every refused key at once
            refused.append(str(exc))
    if refused:
        unknown = any("does not accept" in reason for reason in refused)
        raise ParameterError(" ".join(refused + ([_accepts(machine)] if unknown else [])))
    return translator.result

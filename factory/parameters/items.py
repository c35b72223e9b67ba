"""Resolve one item's parameters for one machine. Pure: no ORM."""
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Mapping

from factory.parameters.pricing import estimate_cost
from factory.parameters.prompts import interpolate
from factory.parameters.schema import ParameterError, fast_check, schema_errors
from factory.parameters.translate import MachineInputs, translate

SENTINEL = "\x00"
SEED_LIMIT = 2**32


@dataclass
class MachineRules:
    """Everything needed to build items for one machine, compiled once."""

    slug: str
    schema: dict[str, Any]
    aliases: dict[str, str]
    base: dict[str, Any]  # defaults overlaid with the safety switch
    price_amount: Decimal
    price_unit: str
    typical_seconds: Decimal | None = None
    is_valid: Callable[[dict[str, Any]], bool] = field(init=False)

    def __post_init__(self) -> None:
        self.is_valid = fast_check(self.schema)

    @property
    def switches(self) -> set[str]:
        """Base keys the schema does not list: a workflow-level switch (such
        as Civitai's NSFW flag) that the adapter sends beside the input."""
        return set(self.base) - set(self.properties)

    @property
    def inputs(self) -> MachineInputs:
        return MachineInputs(self.slug, self.schema, self.aliases)

    @property
    def properties(self) -> Mapping[str, Any]:
        return self.schema.get("properties", {})


@dataclass
class ResolvedItem:
    parameters: dict[str, Any]
    seed: int | None
    cost: Decimal
    warnings: list[str]


def restore_tokens(text: str, values: Mapping[str, Any]) -> str:
    """Put per-item values where prompt expansion left token sentinels."""
    if SENTINEL not in text:
        return text
    for name, value in values.items():
        text = text.replace(f"{SENTINEL}{name}{SENTINEL}", str(value))
    return text


def _interpolate_strings(params: dict[str, Any], tokens: Mapping[str, Any]) -> None:
    for key, value in params.items():
        if key != "prompt" and isinstance(value, str) and "$" in value:
            params[key] = interpolate(value, tokens, field=key)


def _checked_seed(value: Any, index: int) -> int:
    """A seed given as a parameter: a whole number in the seed range."""
    if isinstance(value, bool) or not isinstance(value, int) or not (
            0 <= value < SEED_LIMIT):
        raise ParameterError(
            f"item {index}: seed must be a whole number from 0 to "
            f"{SEED_LIMIT - 1:,}, got {value!r}")
    return value


def resolve_item(
    rules: MachineRules, user: dict[str, Any], prompt: str | None, seed: int | None,
    *, strict: bool, required: set[str], tokens: Mapping[str, Any], index: int,
) -> ResolvedItem:
    """Defaults and safety, then translated user values, prompt and seed."""
    if "seed" in user:  # before translation, which may drop what it cannot take
        _checked_seed(user["seed"], index)
    try:
        translation = translate(rules.inputs, user, strict=strict, required=required)
    except ParameterError as exc:
        raise ParameterError(f"item {index}: {exc}") from None
    params = {**rules.base, **translation.params}
    if prompt is not None and "prompt" in rules.properties:
        params["prompt"] = restore_tokens(prompt, {**tokens, **params})
    if "seed" in rules.properties:
        seed = _checked_seed(params["seed"], index) if "seed" in translation.params else seed
        if seed is not None:
            params["seed"] = seed
    else:
        seed = None
    _interpolate_strings(params, {**tokens, **params})
    switches = rules.switches
    inputs = {k: v for k, v in params.items() if k not in switches}
    if not rules.is_valid(inputs):
        problems = schema_errors(rules.schema, inputs)
        raise ParameterError(f"item {index} on {rules.slug}: " + "; ".join(problems))
    cost = estimate_cost(rules.price_amount, rules.price_unit, params,
                         rules.typical_seconds)
    return ResolvedItem(params, seed, cost, translation.warnings)

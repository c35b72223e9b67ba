"""The wildcards one template sees, and the arithmetic that counts prompts.

Wildcard values are templates too: each is prepared (tokens, escapes) and
parsed once, on first use, and a value written ``2::red`` weighs 2. The
count walks the parsed template without making a single prompt, so an
order's size is known before anything is expanded, and a recursive
wildcard is reported with its cycle instead of recursing forever.
"""
from collections.abc import Mapping
import difflib
import math
import re
from typing import Any

from dynamicprompts.commands import (
    Command, LiteralCommand, SequenceCommand, VariantCommand, VariantOption,
    WildcardCommand,
)
from dynamicprompts.wildcards import WildcardManager
from dynamicprompts.wildcards.collection import WildcardCollection
from dynamicprompts.wildcards.item import WildcardItem

from factory.parameters.prompt_text import (
    PreparedText, PromptError, parse_prepared, prepare, restore,
)

_WEIGHT = re.compile(r"(\d+(?:\.\d*)?|\.\d+)::(.*)", re.DOTALL)


def _split_weight(value: str) -> tuple[float, str]:
    match = _WEIGHT.fullmatch(value)
    return (float(match[1]), match[2]) if match else (1.0, value)


class _Collection(WildcardCollection):
    """One wildcard's values, prepared on first use."""

    def __init__(self, library: "Library", name: str, values: list[str]):
        self.library, self.name, self.raw = library, name, values
        self.items: list[str | WildcardItem] | None = None

    def __repr__(self) -> str:
        return f"<wildcard __{self.name}__>"

    def get_values(self) -> list[str | WildcardItem]:
        if self.items is None:
            self.items = [self.item(n, v) for n, v in enumerate(self.raw, 1)
                          if v.strip()]
        return self.items

    def item(self, number: int, value: str) -> str | WildcardItem:
        weight, text = _split_weight(value.strip())
        where = f"wildcard __{self.name}__ value {number}"
        prepared = self.library.prepare(text, where)
        return prepared if weight == 1 else WildcardItem(prepared, weight)


class Library:
    """Wildcards and tokens for one template, with parses and counts cached."""

    def __init__(self, wildcards: Mapping[str, list[str]],
                 tokens: Mapping[str, Any] | None) -> None:
        self.tokens = tokens or {}
        self.field = "prompt"  # the template's field, named in errors
        self.names = sorted(wildcards)
        self.sources: dict[str, PreparedText] = {}
        self.parsed: dict[str, Command] = {}
        self.found: dict[str, list[VariantOption]] = {}
        self.counts: dict[str, list[int]] = {}
        collections = {name: _Collection(self, name, list(values))
                       for name, values in wildcards.items()}
        self.manager = WildcardManager(root_map={"": [collections]})
        self.manager.sort_wildcards = False  # keep the order users wrote

    def prepare(self, text: str, where: str) -> str:
        source = prepare(text, self.tokens, where)
        prepared = "".join(source.parts)
        self.sources.setdefault(prepared, source)
        return prepared

    def parse(self, prepared: str) -> Command:
        if prepared not in self.parsed:
            self.parsed[prepared] = parse_prepared(self.sources[prepared])
        return self.parsed[prepared]

    def path(self, command: WildcardCommand) -> str:
        if not isinstance(command.wildcard, str):
            raise PromptError("wildcard names cannot contain variants")
        if command.variables:
            raise PromptError(f"wildcard __{restore(command.wildcard)}__: "
                              "'(name=value)' variables are not supported")
        return restore(command.wildcard)

    def options(self, command: WildcardCommand,
                stack: tuple[str, ...] = ()) -> list[VariantOption]:
        """The wildcard's distinct values, parsed, with their weights."""
        path = self.path(command)
        if path not in self.found:
            items = self.manager.get_values(path)
            if not items:
                raise self.unknown(path, stack)
            weights: dict[str, float] = {}
            for item in items:
                weights.setdefault(str(item), getattr(item, "weight", 1.0))
            self.found[path] = [VariantOption(self.parse(text), weight)
                                for text, weight in weights.items()]
        return self.found[path]

    def unknown(self, path: str, stack: tuple[str, ...]) -> PromptError:
        used = f" (used in __{stack[-1]}__)" if stack else ""
        if path in self.names:
            return PromptError(f"wildcard __{path}__ has no values{used}")
        close = difflib.get_close_matches(path, self.names, n=3)
        hint = "; did you mean " + ", ".join(f"__{c}__" for c in close) + "?"
        return PromptError(f"unknown wildcard __{path}__{used}"
                           + (hint if close else ""))

    def template(self, text: str, field: str) -> Command:
        self.field = field
        return self.parse(self.prepare(text, field))


def sole_wildcard(command: VariantCommand) -> WildcardCommand | None:
    """The wildcard in ``{2$$__name__}``, which stands for its values."""
    if len(command.values) == 1 and isinstance(command.values[0],
                                               WildcardCommand):
        return command.values[0]
    return None


def _value_counts(command: WildcardCommand, library: Library,
                  stack: tuple[str, ...]) -> list[int]:
    path = library.path(command)
    if path in stack:
        cycle = (*stack[stack.index(path):], path)
        chain = " -> ".join(f"__{name}__" for name in cycle)
        raise PromptError(f"wildcard __{path}__ is recursive: {chain}")
    if path not in library.counts:
        options = library.options(command, stack)
        library.counts[path] = [
            count_paths(option.value, library, (*stack, path))
            for option in options]
    return library.counts[path]


def _choose(counts: list[int], low: int, high: int) -> int:
    """Prompts from picking low..high distinct options (sums of e_k)."""
    picks = [1] + [0] * high
    for count in counts:
        for k in range(high, 0, -1):
            picks[k] += picks[k - 1] * count
    return sum(picks[low:high + 1])


def _is_empty(command: Command) -> bool:
    """An option that writes nothing, as in ``{|red}``."""
    if isinstance(command, SequenceCommand):
        return all(_is_empty(token) for token in command.tokens)
    return isinstance(command, LiteralCommand) and not command.literal.strip()


def check_variant(command: VariantCommand, options: int, field: str) -> None:
    """Refuse a variant that would be read other than as written.

    The library clamps ``{9$$a|b}`` to two picks and ``{|}`` yields the same
    empty text twice: both would buy items nobody asked for.
    """
    low, high = command.min_bound, command.max_bound
    if high is not None and high < 1:
        raise PromptError(f"{field}: a choose-N variant must pick at least 1 option, "
                          f"not {high}")
    if max(low, high or 0) > options:
        asked = f"{low}" if high in (None, low) else f"{low}-{high}"
        raise PromptError(f"{field}: a choose-N variant asks for {asked} picks but "
                          f"has only {options} option(s)")
    if sole_wildcard(command) is None and sum(
            map(_is_empty, command.values)) > 1:
        raise PromptError(f"{field}: a variant has more than one empty "
                          "option, so it would make the same prompt twice; "
                          "keep one, as in {|red}")


def count_paths(command: Command, library: Library,
          stack: tuple[str, ...] = ()) -> int:
    """Prompts ``command`` yields in combinatorial mode, without making them."""
    if isinstance(command, LiteralCommand):
        total = 1
    elif isinstance(command, SequenceCommand):
        total = math.prod([count_paths(t, library, stack)
                           for t in command.tokens])
    elif isinstance(command, WildcardCommand):
        total = sum(_value_counts(command, library, stack))
    elif isinstance(command, VariantCommand):
        wildcard = sole_wildcard(command)
        counts = ([count_paths(v, library, stack) for v in command.values]
                  if wildcard is None else
                  _value_counts(wildcard, library, stack))
        check_variant(command, len(counts), library.field)
        total = _choose(counts, command.min_bound,
                        min(command.max_bound or len(counts), len(counts)))
    else:  # every construct the scanner lets through is handled above
        raise PromptError(f"unsupported template part {command!r}")
    method = command.sampling_method
    # A random or cyclical part gives one value per prompt around it.
    return 1 if method is not None and method.is_nonfinite() else total

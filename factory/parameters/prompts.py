"""Prompt templates: the one module that speaks ``dynamicprompts``.

The syntax is dynamicprompts' (variants ``{a|b}``, weights ``{2::a|b}``,
choose-N ``{2$$a|b|c}``, ``{1-2$$ and $$a|b}``, wildcards ``__name__``,
``__colors/*__``, random ``{~a|b}``), with choices that remove its traps:

- ``${name}`` is replaced by an order token or parameter *before* parsing, so
  ``{${style}|plain}`` works. The value goes in verbatim: its braces, bars
  and ``$`` are not syntax. An undefined name is an error; the library's own
  variables (``${x=…}``) and wrap commands (``%{…}``) are not offered.
- ``$$`` writes a literal ``$`` and a lone ``$`` is literal, so ``{$5|$10}``
  parses; only the ``$$`` of a choose-N bound (``{2$$``, ``{2$$ and $$``)
  keeps the library's meaning. ``#`` and ``%`` are literal, not comments.
- ``\\{``, ``\\}`` and ``\\|`` write literal braces and bars. Braces around a
  single plain option, like ``{curly}``, are refused, since the library
  would silently drop them; so is a ``}`` without its ``{``.
- Combinatorial mode yields one prompt per choice path, so counts are plain
  arithmetic and ``{a|a}`` gives two prompts. Choose-N yields combinations:
  ``{2$$a|b|c}`` gives ``a,b``, ``a,c``, ``b,c``, never the library's
  ordered ``b,a``. Weights only steer random mode.
- Wildcard values are templates too, tokens included; a value written
  ``2::red`` weighs 2, and a weight of 0 is never drawn in random mode.
  Random choose-N keeps the written order of its picks, as above.
"""
from collections.abc import Mapping
import dataclasses
import difflib
from itertools import combinations, islice
import math
from random import Random
import re
from typing import Any
import warnings

from dynamicprompts.commands import (
    Command, LiteralCommand, SamplingMethod, SequenceCommand, VariantCommand,
    VariantOption, WildcardCommand,
)
from dynamicprompts.parser.parse import parse
from dynamicprompts.samplers import (
    CombinatorialSampler, CyclicalSampler, RandomSampler,
)
from dynamicprompts.samplers.combinatorial import _combo_to_prompt
from dynamicprompts.sampling_context import SamplingContext
from dynamicprompts.sampling_result import SamplingResult
from dynamicprompts.wildcards import WildcardManager
from dynamicprompts.wildcards.collection import WildcardCollection
from dynamicprompts.wildcards.item import WildcardItem
from pyparsing import ParseBaseException

from factory.parameters.schema import ParameterError

MAX_PROMPT_CHARS = 4000
MODES = ("combinatorial", "random")


class PromptError(ParameterError):
    """A template, token or wildcard problem; the message says where."""


# Literal characters travel through the parser as private-use stand-ins.
_PROTECTED = "{}|$#%_"
_STAND_IN = {ord(c): 0xE000 + ord(c) for c in _PROTECTED}
_RESTORE = {v: k for k, v in _STAND_IN.items()}
_LITERAL = {k: v for k, v in _STAND_IN.items() if k != ord("_")}
_SCAN = re.compile(
    r"\\(?P<escaped>[{}|])"
    r"|(?P<bound>\{\s*[~!@]?\s*(?:\d+-?\d*|-\d+)\$\$(?:[^${}]+\$\$)?)"
    r"|\$\{(?P<token>[^{}$]*)\}|(?P<unclosed>\$\{)|(?P<dollar>\$\$?)"
    r"|(?P<literal>[#%])|(?P<brace>[{}|])"
    r"|(?P<reserved>[" + "".join(map(chr, _RESTORE)) + "])"
)
_PLAIN = re.compile(r"\$\$|\$\{(?P<token>[^{}$]*)\}|(?P<unclosed>\$\{)")
_NAME = re.compile(r"\s*([A-Za-z_][\w-]*)\s*")
_WEIGHT = re.compile(r"(\d+(?:\.\d*)?|\.\d+)::(.*)", re.DOTALL)


def _literal(text: str) -> str:
    """Text the parser passes through untouched."""
    # Single underscores stay, so '__${name}__' can still name a wildcard.
    text = re.sub(r"_{2,}", lambda m: m.group().translate(_STAND_IN), text)
    return text.translate(_LITERAL)


def _restore(text: str) -> str:
    return text.translate(_RESTORE)


class _Source:
    """Prepared template text, each character mapped to its original index."""

    def __init__(self, raw: str, where: str) -> None:
        self.raw, self.where = raw, where
        self.parts: list[str] = []
        self.origins: list[int] = []

    def add(self, text: str, origin: int, spread: bool = False) -> None:
        self.parts.append(text)
        step = 1 if spread else 0
        self.origins.extend(origin + i * step for i in range(len(text)))

    def error(self, index: int, reason: str) -> PromptError:
        """A PromptError pointing at ``index`` of the original text."""
        start = self.raw.rfind("\n", 0, index) + 1
        end = len(self.raw) if "\n" not in self.raw[index:] else (
            self.raw.index("\n", index))
        column = index - start + 1
        place = f"column {column}"
        if "\n" in self.raw:
            place = f"line {self.raw.count(chr(10), 0, index) + 1}, {place}"
        return PromptError(f"{self.where}, {place}: {reason}\n"
                           + _excerpt(self.raw[start:end], column - 1))

    def prepared_error(self, index: int, reason: str) -> PromptError:
        origin = self.origins[index] if index < len(self.origins) else None
        return self.error(len(self.raw) if origin is None else origin, reason)


def _excerpt(line: str, offset: int, width: int = 40) -> str:
    """The line around ``offset`` with a caret under it, long lines cut."""
    left = max(0, offset - width)
    head = "..." if left else ""
    tail = "..." if len(line) > offset + width else ""
    caret = " " * (len(head) + offset - left) + "^"
    return f"  {head}{line[left:offset + width]}{tail}\n  {caret}"


def _token(body: str, tokens: Mapping[str, Any], source: _Source,
           index: int) -> str:
    name = _NAME.fullmatch(body)
    if name is None:
        raise source.error(index, f"'${{{body}}}' is not a token; write "
                                  "${name}, or $$ for a literal '$'")
    if name.group(1) not in tokens:
        known = ", ".join(sorted(tokens)) or "none"
        raise source.error(index, f"undefined token ${{{name.group(1)}}}; "
                                  f"defined tokens: {known}")
    return str(tokens[name.group(1)])


def _piece(match: re.Match, tokens: Mapping[str, Any], source: _Source) -> str:
    """What one scanned piece of a template becomes before parsing."""
    kind, text = match.lastgroup, match.group()
    if kind == "token":
        return _literal(_token(match["token"], tokens, source, match.start()))
    if kind == "unclosed":
        raise source.error(match.start(), "'${' is never closed with '}'")
    if kind == "reserved":
        raise source.error(match.start(), f"character U+{ord(text):04X} "
                                          "cannot be used in a template")
    if kind in ("escaped", "dollar", "literal"):
        return _literal(text[-1])
    return text


@dataclasses.dataclass
class _Brace:
    index: int
    plain: bool = True


def _track(braces: list[_Brace], match: re.Match, source: _Source) -> None:
    """Refuse unbalanced braces and braces the parser would drop."""
    char = match.group()[0]
    if match.lastgroup not in ("bound", "brace"):
        return
    if char == "{":
        if braces:
            braces[-1].plain = False
        braces.append(_Brace(match.start(), match.lastgroup == "brace"))
    elif char == "|" and braces:
        braces[-1].plain = False
    elif char == "}":
        if not braces:
            raise source.error(match.start(), "'}' has no matching '{' "
                                              "(write \\} for a literal '}')")
        brace = braces.pop()
        inner = source.raw[brace.index + 1:match.start()]
        if brace.plain and "__" not in inner:
            raise source.error(brace.index, f"braces around {inner!r} hold one "
                               "option and would vanish; write \\{ and \\} for "
                               "literal braces, or '|' between options")


def _prepare(text: str, tokens: Mapping[str, Any], where: str) -> _Source:
    """Resolve tokens and escapes into text the library reads as meant."""
    source, braces, done = _Source(text, where), [], 0
    for match in _SCAN.finditer(text):
        source.add(text[done:match.start()], done, spread=True)
        piece = _piece(match, tokens, source)
        source.add(piece, match.start(), spread=match.lastgroup == "bound")
        _track(braces, match, source)
        done = match.end()
    source.add(text[done:], done, spread=True)
    if braces:
        raise source.error(braces[-1].index, "'{' is never closed "
                                             "(write \\{ for a literal '{')")
    return source


def _parse(source: _Source) -> Command:
    prepared = "".join(source.parts)
    if "{" not in prepared and "__" not in prepared:
        return LiteralCommand(prepared)  # the parser would return the same
    try:
        return parse(prepared)
    except ParseBaseException as exc:
        found = prepared[exc.loc:exc.loc + 2]
        reason = ("'__' opens a wildcard that is never closed with '__'"
                  if found == "__" else f"cannot read the template here "
                  f"({exc.msg})")
        raise source.prepared_error(exc.loc, reason) from None


def _split_weight(value: str) -> tuple[float, str]:
    match = _WEIGHT.fullmatch(value)
    return (float(match[1]), match[2]) if match else (1.0, value)


class _Collection(WildcardCollection):
    """One wildcard's values, prepared on first use."""

    def __init__(self, library: "_Library", name: str, values: list[str]):
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


class _Library:
    """Wildcards and tokens for one template, with parses and counts cached."""

    def __init__(self, wildcards: Mapping[str, list[str]],
                 tokens: Mapping[str, Any] | None) -> None:
        self.tokens = tokens or {}
        self.names = sorted(wildcards)
        self.sources: dict[str, _Source] = {}
        self.parsed: dict[str, Command] = {}
        self.found: dict[str, list[VariantOption]] = {}
        self.counts: dict[str, list[int]] = {}
        collections = {name: _Collection(self, name, list(values))
                       for name, values in wildcards.items()}
        self.manager = WildcardManager(root_map={"": [collections]})
        self.manager.sort_wildcards = False  # keep the order users wrote

    def prepare(self, text: str, where: str) -> str:
        source = _prepare(text, self.tokens, where)
        prepared = "".join(source.parts)
        self.sources.setdefault(prepared, source)
        return prepared

    def parse(self, prepared: str) -> Command:
        if prepared not in self.parsed:
            self.parsed[prepared] = _parse(self.sources[prepared])
        return self.parsed[prepared]

    def path(self, command: WildcardCommand) -> str:
        if not isinstance(command.wildcard, str):
            raise PromptError("wildcard names cannot contain variants")
        if command.variables:
            raise PromptError(f"wildcard __{_restore(command.wildcard)}__: "
                              "'(name=value)' variables are not supported")
        return _restore(command.wildcard)

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
        return self.parse(self.prepare(text, field))


def _sole_wildcard(command: VariantCommand) -> WildcardCommand | None:
    """The wildcard in ``{2$$__name__}``, which stands for its values."""
    if len(command.values) == 1 and isinstance(command.values[0],
                                               WildcardCommand):
        return command.values[0]
    return None


def _value_counts(command: WildcardCommand, library: _Library,
                  stack: tuple[str, ...]) -> list[int]:
    path = library.path(command)
    if path in stack:
        cycle = (*stack[stack.index(path):], path)
        chain = " -> ".join(f"__{name}__" for name in cycle)
        raise PromptError(f"wildcard __{path}__ is recursive: {chain}")
    if path not in library.counts:
        options = library.options(command, stack)
        library.counts[path] = [_count(option.value, library, (*stack, path))
                                for option in options]
    return library.counts[path]


def _choose(counts: list[int], low: int, high: int) -> int:
    """Prompts from picking low..high distinct options (sums of e_k)."""
    picks = [1] + [0] * high
    for count in counts:
        for k in range(high, 0, -1):
            picks[k] += picks[k - 1] * count
    return sum(picks[low:high + 1])


def _count(command: Command, library: _Library,
           stack: tuple[str, ...] = ()) -> int:
    """Prompts ``command`` yields in combinatorial mode, without making them."""
    if isinstance(command, LiteralCommand):
        total = 1
    elif isinstance(command, SequenceCommand):
        total = math.prod([_count(t, library, stack) for t in command.tokens])
    elif isinstance(command, WildcardCommand):
        total = sum(_value_counts(command, library, stack))
    elif isinstance(command, VariantCommand):
        wildcard = _sole_wildcard(command)
        counts = ([_count(v, library, stack) for v in command.values]
                  if wildcard is None else
                  _value_counts(wildcard, library, stack))
        total = _choose(counts, min(command.min_bound, len(counts)),
                        min(command.max_bound, len(counts)))
    else:  # every construct the scanner lets through is handled above
        raise PromptError(f"unsupported template part {command!r}")
    method = command.sampling_method
    # A random or cyclical part gives one value per prompt around it.
    return 1 if method is not None and method.is_nonfinite() else total


class _PathSampler(CombinatorialSampler):
    """Combinatorial sampling, one prompt per path, combinations for N."""

    def __init__(self, library: _Library) -> None:
        self.library = library

    def _get_variant(self, command: VariantCommand, context: SamplingContext):
        wildcard = _sole_wildcard(command)
        if wildcard is not None:
            options = self.library.options(wildcard)
            command = dataclasses.replace(command, variants=options)
        command = command.adjust_range()
        for size in range(command.min_bound, command.max_bound + 1):
            for combo in combinations(command.values, size):
                for parts in _combo_to_prompt(context, list(combo)):
                    yield SamplingResult.joined(parts,
                                                separator=command.separator)

    def _get_wildcard(self, command: WildcardCommand,
                      context: SamplingContext):
        for option in self.library.options(command):
            yield from context.generator_from_command(option.value)


def _drawable(options: list[VariantOption]) -> list[VariantOption]:
    """Options a random draw may pick: never weight 0, unless all are."""
    positive = [option for option in options if option.weight > 0]
    return positive or [dataclasses.replace(o, weight=1.0) for o in options]


class _RandomSampler(RandomSampler):
    """Random sampling that reuses the parsed, weighted wildcard values."""

    def __init__(self, library: _Library) -> None:
        self.library = library

    def _get_variant(self, command: VariantCommand, context: SamplingContext):
        wildcard = _sole_wildcard(command)
        options = (command.variants if wildcard is None
                   else self.library.options(wildcard))
        # The library's draw fails outright when a weight of 0 remains.
        command = dataclasses.replace(command, variants=_drawable(options))
        return super()._get_variant(command, context)

    def _get_variant_choices(self, values: list[Command], *args, **kwargs):
        # Written order, as in combinatorial mode: 'a,b', never 'b,a'.
        chosen = super()._get_variant_choices(values, *args, **kwargs)
        return sorted(chosen, key=values.index)

    def _get_wildcard(self, command: WildcardCommand,
                      context: SamplingContext):
        options = _drawable(self.library.options(command))
        weights = [option.weight for option in options]
        while True:
            chosen = context.rand.choices(options, weights)[0]
            yield next(context.generator_from_command(chosen.value))


def _sample(root: Command, library: _Library, mode: str, rand: Random,
            number: int) -> list[str]:
    method = SamplingMethod(mode)
    samplers = {SamplingMethod.COMBINATORIAL: _PathSampler(library),
                SamplingMethod.RANDOM: _RandomSampler(library),
                SamplingMethod.CYCLICAL: CyclicalSampler()}
    context = SamplingContext(default_sampling_method=method, rand=rand,
                              wildcard_manager=library.manager,
                              samplers=samplers)
    with warnings.catch_warnings():
        # The library warns that '!' inside a random part samples randomly;
        # that is the documented meaning here.
        warnings.simplefilter("ignore")
        results = context.generator_from_command(root)
        return [_restore(str(r)) for r in islice(results, number)]


def _checked_mode(mode: str) -> str:
    if mode not in MODES:
        raise PromptError(f"unknown prompt mode {mode!r}; use "
                          + " or ".join(MODES))
    return mode


def count_prompts(template: str, wildcards: Mapping[str, list[str]],
                  mode: str = "combinatorial", *, limit: int = 1,
                  tokens: Mapping[str, Any] | None = None,
                  field: str = "prompt") -> int:
    """Prompts the template yields: all paths, or ``limit`` when random."""
    library = _Library(wildcards, tokens)
    total = _count(library.template(template, field), library)
    return total if _checked_mode(mode) == "combinatorial" else limit


def expand_prompts(template: str, wildcards: Mapping[str, list[str]],
                   mode: str = "combinatorial", *, limit: int,
                   seed: int | None = None,
                   tokens: Mapping[str, Any] | None = None,
                   field: str = "prompt",
                   max_chars: int = MAX_PROMPT_CHARS) -> list[str]:
    """Every prompt (combinatorial) or ``limit`` prompts sampled from seed."""
    library = _Library(wildcards, tokens)
    root = library.template(template, field)
    total = _count(root, library)
    if _checked_mode(mode) == "combinatorial" and total > limit:
        raise PromptError(f"{field} gives {total:,} prompts, over the limit "
                          f"of {limit:,}")
    number = total if mode == "combinatorial" else limit
    prompts = _sample(root, library, mode, Random(seed), number)
    for position, prompt in enumerate(prompts, 1):
        if len(prompt) > max_chars:
            raise PromptError(f"{field} {position} of {len(prompts)} is "
                              f"{len(prompt):,} characters long, over the "
                              f"limit of {max_chars:,}")
    return prompts


def interpolate(text: str, tokens: Mapping[str, Any],
                field: str = "text") -> str:
    """Replace ``${name}`` tokens in a plain string; ``$$`` is a '$'."""
    source = _Source(text, field)

    def replace(match: re.Match) -> str:
        if match["unclosed"]:
            raise source.error(match.start(), "'${' is never closed with '}'")
        if match["token"] is None:
            return "$"
        return _token(match["token"], tokens, source, match.start())

    return _PLAIN.sub(replace, text)

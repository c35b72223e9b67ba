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
- ``\\{``, ``\\}`` and ``\\|`` write literal braces and bars, ``\\_`` a
  literal underscore (``\\_\\_name\\_\\_`` is text, not a wildcard). Braces around a
  single plain option, like ``{curly}``, are refused, since the library
  would silently drop them; so is a ``}`` without its ``{``.
- Combinatorial mode yields one prompt per choice path, so counts are plain
  arithmetic and ``{a|a}`` gives two prompts. Choose-N yields combinations:
  ``{2$$a|b|c}`` gives ``a,b``, ``a,c``, ``b,c``, never the library's
  ordered ``b,a``. Weights only steer random mode. Asking for more picks
  than there are options (``{3$$a|b}``), for none, or writing two empty
  options (``{|}``) is refused, where the library would quietly clamp or
  repeat.
- Wildcard values are templates too, tokens included; a value written
  ``2::red`` weighs 2, and a weight of 0 is never drawn in random mode.
  Random choose-N keeps the written order of its picks, as above.

This module is the public face: ``count_prompts``, ``expand_prompts`` and
``interpolate``. The work is done in ``prompt_text`` (tokens, escapes and
located errors), ``prompt_library`` (wildcards and counting) and
``prompt_sampling`` (making the prompts).
"""
from collections.abc import Mapping
from random import Random
from typing import Any

from factory.parameters.prompt_library import Library, count_paths
from factory.parameters.prompt_sampling import sample
from factory.parameters.prompt_text import PromptError, interpolate

__all__ = ["MAX_PROMPT_CHARS", "MODES", "PromptError", "count_prompts",
           "expand_prompts", "interpolate"]

MAX_PROMPT_CHARS = 4000
MODES = ("combinatorial", "random")


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
    library = Library(wildcards, tokens)
    total = count_paths(library.template(template, field), library)
    return total if _checked_mode(mode) == "combinatorial" else limit


def expand_prompts(template: str, wildcards: Mapping[str, list[str]],
                   mode: str = "combinatorial", *, limit: int,
                   seed: int | None = None,
                   tokens: Mapping[str, Any] | None = None,
                   field: str = "prompt",
                   max_chars: int = MAX_PROMPT_CHARS) -> list[str]:
    """Every prompt (combinatorial) or ``limit`` prompts sampled from seed."""
    library = Library(wildcards, tokens)
    root = library.template(template, field)
    total = count_paths(root, library)
    if _checked_mode(mode) == "combinatorial" and total > limit:
        raise PromptError(f"{field} gives {total:,} prompts, over the limit "
                          f"of {limit:,}")
    number = total if mode == "combinatorial" else limit
    prompts = sample(root, library, mode, Random(seed), number)
    for position, prompt in enumerate(prompts, 1):
        if len(prompt) > max_chars:
            raise PromptError(f"{field} {position} of {len(prompts)} is "
                              f"{len(prompt):,} characters long, over the "
                              f"limit of {max_chars:,}")
    return prompts

"""Making the prompts: dynamicprompts' samplers with the traps removed.

Combinatorial mode yields one prompt per choice path, so the output always
matches the count, and choose-N yields combinations (``a,b``), never the
library's ordered permutations (``b,a``). Random mode draws wildcard values
by weight, never a value weighted 0, and keeps a choose-N's picks in the
written order, as combinatorial mode does.
"""
import dataclasses
from itertools import combinations, islice
from random import Random
import warnings

from dynamicprompts.commands import (
    Command, SamplingMethod, VariantCommand, VariantOption, WildcardCommand,
)
from dynamicprompts.samplers import (
    CombinatorialSampler, CyclicalSampler, RandomSampler,
)
from dynamicprompts.samplers.combinatorial import _combo_to_prompt
from dynamicprompts.sampling_context import SamplingContext
from dynamicprompts.sampling_result import SamplingResult

from factory.parameters.prompt_library import Library, sole_wildcard
from factory.parameters.prompt_text import restore


class _PathSampler(CombinatorialSampler):
    """Combinatorial sampling, one prompt per path, combinations for N."""

    def __init__(self, library: Library) -> None:
        self.library = library

    def _get_variant(self, command: VariantCommand, context: SamplingContext):
        wildcard = sole_wildcard(command)
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

    def __init__(self, library: Library) -> None:
        self.library = library

    def _get_variant(self, command: VariantCommand, context: SamplingContext):
        wildcard = sole_wildcard(command)
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


def sample(root: Command, library: Library, mode: str, rand: Random,
           number: int) -> list[str]:
    """The first ``number`` prompts of ``root`` in ``mode``, as written."""
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
        return [restore(str(r)) for r in islice(results, number)]

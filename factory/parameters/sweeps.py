"""Sweeps in InvokeAI's batch model.

A sweep is a list of groups; a group is a list of ``{"field", "values"}``
entries. Inside a group the value lists are zipped (equal lengths), across
groups they are multiplied, and ``runs`` repeats the whole set. The count
is arithmetic, so a huge sweep is refused before anything is built.
"""
from itertools import product
from math import prod
from typing import Any, Iterator

from factory.parameters.schema import ParameterError

Sweeps = list[list[dict[str, Any]]]


def check_sweeps(sweeps: Any) -> Sweeps:
    """Return ``sweeps`` if well formed, else raise a located error."""
    if not isinstance(sweeps, list):
        raise ParameterError("sweeps: expected a list of groups")
    seen: set[str] = set()
    for g, group in enumerate(sweeps):
        if not isinstance(group, list) or not group:
            raise ParameterError(f"sweeps[{g}]: a group is a non-empty list")
        for e, entry in enumerate(group):
            where = f"sweeps[{g}][{e}]"
            if not isinstance(entry, dict) or set(entry) != {"field", "values"}:
                raise ParameterError(f'{where}: expected {{"field": …, "values": […]}}')
            field, values = entry["field"], entry["values"]
            if not isinstance(field, str) or not field:
                raise ParameterError(f"{where}: field must be a parameter name")
            if field in seen:
                raise ParameterError(f"{where}: {field!r} is swept twice")
            seen.add(field)
            if not isinstance(values, list) or not values:
                raise ParameterError(f"{where} ({field}): values must be a non-empty list")
        lengths = {len(entry["values"]) for entry in group}
        if len(lengths) > 1:
            sizes = ", ".join(f"{e['field']}={len(e['values'])}" for e in group)
            raise ParameterError(
                f"sweeps[{g}]: zipped lists need equal lengths, got {sizes}"
            )
    return sweeps


def count_items(sweeps: Sweeps, runs: int) -> int:
    """How many items the sweep expands to, without building any."""
    if runs < 1:
        raise ParameterError("runs: must be at least 1")
    return runs * prod(len(group[0]["values"]) for group in check_sweeps(sweeps))


def expand(sweeps: Sweeps, runs: int) -> Iterator[dict[str, Any]]:
    """Yield each item's swept field values, in a stable order."""
    check_sweeps(sweeps)
    zipped = [
        [dict(zip([e["field"] for e in group], row))
         for row in zip(*(e["values"] for e in group))]
        for group in sweeps
    ]
    for _ in range(runs):
        for combination in product(*zipped):
            values: dict[str, Any] = {}
            for part in combination:
                values.update(part)
            yield values

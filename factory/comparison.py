"""The sweep comparison grid: an order's items pivoted by their swept values.

Every item records what the sweep chose for it (``field_values``). The
fields whose values differ across the order's items are its axes; fields
that always change together (a zipped group such as width and height)
make one axis. Repeated runs of the same values give a ``run`` axis.
Picking two axes (and optionally a third, as pages) puts each item, with
its products, in the cell its values name, as A1111's X/Y/Z plot does.
"""
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

from django.db.models import Prefetch

from factory.models import Order, OrderItem, Product

MACHINE_FIELD = "machine"
RUN_FIELD = "run"
LABEL_CHARS = 80  # longest header label before it is cut short
WHOLE_CHARS = 24  # texts this short are shown whole
MISSING = "–"


class ComparisonError(ValueError):
    """The comparison asked for cannot be drawn; the message says why."""


@dataclass(frozen=True)
class AxisValue:
    """One row, column or page header: a short label and the full text."""

    key: str  # canonical JSON of the value(s), to match items by
    label: str
    title: str


@dataclass(frozen=True)
class Axis:
    """One swept dimension: the field(s) it stands for and their values."""

    fields: tuple[str, ...]
    values: tuple[AxisValue, ...]

    @property
    def key(self) -> str:
        """The name the page's URL uses: the axis's first field."""
        return self.fields[0]

    @property
    def label(self) -> str:
        return " / ".join(self.fields)

    def __len__(self) -> int:
        return len(self.values)


@dataclass
class Cell:
    """The items (and so the products) one combination of values holds."""

    items: list[OrderItem] = field(default_factory=list)

    @property
    def products(self) -> list[Product]:
        return [p for item in self.items for p in item.products.all()]

    @property
    def waiting(self) -> list[OrderItem]:
        """Items with nothing to show yet, or ever: their state says why."""
        return [item for item in self.items if not item.products.all()]


@dataclass(frozen=True)
class Row:
    header: AxisValue | None
    cells: list[Cell]


@dataclass(frozen=True)
class Page:
    """One value of the third axis (or the whole order): a grid of cells."""

    header: AxisValue | None
    rows: list[Row]

    @property
    def cell_count(self) -> int:
        return sum(len(row.cells) for row in self.rows)


@dataclass(frozen=True)
class Comparison:
    """The pivot of one order's items on the chosen axes."""

    x: Axis
    y: Axis | None
    z: Axis | None
    pages: list[Page]

    @property
    def columns(self) -> tuple[AxisValue, ...]:
        return self.x.values


def comparison_items(order: Order) -> list[OrderItem]:
    """The order's items with their machines and products, in two queries.

    Failed items a retry replaced are left out: their retry stands in
    their place, in the order of first attempts (so in sweep order).
    """
    products = Prefetch(
        "products",
        queryset=Product.objects.select_related("media", "machine")
        .order_by("output_index"),
    )
    items = list(
        order.items.select_related("machine").prefetch_related(products)
        .order_by("index")
    )
    by_pk = {item.pk: item for item in items}
    replaced = {item.retry_of_id for item in items if item.retry_of_id}
    kept = [item for item in items if item.pk not in replaced]
    return sorted(kept, key=lambda item: _root_index(item, by_pk))


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _root_index(item: OrderItem, by_pk: dict[int, OrderItem]) -> int:
    """The index of the first attempt, so a retry sorts where it stood."""
    while item.retry_of_id in by_pk:
        item = by_pk[item.retry_of_id]
    return item.index


def item_values(items: list[OrderItem]) -> list[dict[str, Any]]:
    """Each item's swept values, plus its run among identical ones.

    Runs are counted in the order given, which ``comparison_items`` makes
    the order of first attempts, so a retry counts in the run it stands
    for. A swept machine is named by the item's own machine.
    """
    seen: dict[str, int] = defaultdict(int)
    values = []
    for item in items:
        chosen = dict(item.field_values or {})
        if MACHINE_FIELD in chosen:
            chosen[MACHINE_FIELD] = item.machine.slug
        combination = _canonical(chosen)
        seen[combination] += 1
        values.append({**chosen, RUN_FIELD: seen[combination]})
    return values


def find_axes(items: list[OrderItem]) -> list[Axis]:
    """The dimensions the items vary along, in the order they were swept.

    Fields with the same partition of the items (zipped, or a token of
    the prompt) are merged into one axis; fields with one value are not
    axes at all.
    """
    chosen = item_values(items)
    names = list(dict.fromkeys(name for values in chosen for name in values))
    signatures: dict[tuple[int, ...], list[str]] = {}
    for name in names:
        keys = [_canonical(values.get(name)) for values in chosen]
        numbering: dict[str, int] = {}
        signature = tuple(numbering.setdefault(k, len(numbering)) for k in keys)
        if len(numbering) > 1:
            signatures.setdefault(signature, []).append(name)
    machines = {item.machine.slug: item.machine.name for item in items}
    return [
        _axis(tuple(fields), chosen, machines) for fields in signatures.values()
    ]


def _axis(
    fields: tuple[str, ...], chosen: list[dict[str, Any]], machines: dict[str, str]
) -> Axis:
    distinct: dict[str, tuple[Any, ...]] = {}
    for values in chosen:
        picked = tuple(values.get(name) for name in fields)
        distinct.setdefault(_canonical(list(picked)), picked)
    columns = list(zip(*distinct.values()))
    texts = [
        _field_labels(name, column, machines) for name, column in zip(fields, columns)
    ]
    axis_values = tuple(
        AxisValue(
            key=key,
            label=" / ".join(labels[n] for labels, _ in texts),
            title=" / ".join(titles[n] for _, titles in texts),
        )
        for n, key in enumerate(distinct)
    )
    return Axis(fields, axis_values)


def _field_labels(
    name: str, values: tuple[Any, ...], machines: dict[str, str]
) -> tuple[list[str], list[str]]:
    """Short labels and full titles for one field's distinct values."""
    if name == MACHINE_FIELD:
        names = [machines.get(str(v), str(v)) for v in values]
        return names, [f"{machines.get(str(v), v)} ({v})" for v in values]
    if name == RUN_FIELD:
        return [f"run {v}" for v in values], [f"run {v}" for v in values]
    titles = [_text(v) for v in values]
    return differing_parts(titles), titles


def _text(value: Any) -> str:
    if value is None:
        return MISSING
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def differing_parts(texts: list[str], limit: int = LABEL_CHARS) -> list[str]:
    """What tells long texts apart: the words between their common ends.

    ``a red fox in the deep snow`` and ``a grey heron in the deep snow``
    give ``… red fox …`` and ``… grey heron …``; short texts stay whole,
    and any label is cut at ``limit``.
    """
    if all(len(text) <= WHOLE_CHARS for text in texts) or len(texts) < 2:
        return [_shorten(text, limit) for text in texts]
    words = [text.split(" ") for text in texts]
    shortest = min(len(w) for w in words)
    head = 0
    while head < shortest and len({w[head] for w in words}) == 1:
        head += 1
    tail = 0
    while tail < shortest - head and len({w[-1 - tail] for w in words}) == 1:
        tail += 1
    labels = []
    for w in words:
        middle = " ".join(w[head:len(w) - tail]) or MISSING
        shown = _shorten(middle, limit)
        # No-break spaces keep an ellipsis from wrapping onto a line alone;
        # a label cut short ends in one already.
        before = "…\u00a0" if head else ""
        after = "\u00a0…" if tail and shown == middle else ""
        labels.append(before + shown + after)
    return labels


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def pick_axis(axes: list[Axis], key: str | None) -> Axis | None:
    """The axis a URL names by its first field, or None."""
    return next((axis for axis in axes if axis.key == key), None)


def pivot(
    items: list[OrderItem], axes: list[Axis], x: Axis,
    y: Axis | None = None, z: Axis | None = None,
) -> Comparison:
    """Put every item in the cell (page, row, column) its values name."""
    chosen = [axis for axis in (x, y, z) if axis is not None]
    if len({axis.key for axis in chosen}) < len(chosen):
        raise ComparisonError("Choose a different field for each axis.")
    cells: dict[tuple[str | None, ...], Cell] = defaultdict(Cell)
    for item, values in zip(items, item_values(items)):
        cells[tuple(_key(axis, values) for axis in (x, y, z))].items.append(item)
    pages = []
    for page in (z.values if z else (None,)):
        rows = [
            Row(row, [
                cells.get((column.key, _own(row), _own(page)), Cell())
                for column in x.values
            ])
            for row in (y.values if y else (None,))
        ]
        pages.append(Page(page, rows))
    return Comparison(x, y, z, pages)


def _key(axis: Axis | None, values: dict[str, Any]) -> str | None:
    """Which of the axis's values an item has, as its canonical key."""
    if axis is None:
        return None
    return _canonical([values.get(name) for name in axis.fields])


def _own(value: AxisValue | None) -> str | None:
    return value.key if value is not None else None


def default_axes(axes: Iterable[Axis]) -> tuple[Axis | None, Axis | None]:
    """X and Y when none are chosen: the first two swept dimensions.

    The run axis goes last, since repeats are rarely what is compared.
    """
    ranked = sorted(axes, key=lambda axis: axis.key == RUN_FIELD)
    ranked += [None, None]
    return ranked[0], ranked[1]


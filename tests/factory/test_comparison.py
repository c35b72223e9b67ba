"""The comparison grid's pivot: axes from an order's items, items in cells."""
import pytest

from factory.comparison import (
    ComparisonError, comparison_items, default_axes, differing_parts, find_axes,
    pick_axis, pivot,
)
from factory.models import ItemStatus, OrderItem
from factory.production.retry import retry_failed_items
from tests.comparison_data import HEIGHTS, WIDTHS, give_products, swept_order, width_by_height


def _grid(order, x: str, y: str | None = None, z: str | None = None):
    items = comparison_items(order)
    axes = find_axes(items)
    return pivot(items, axes, pick_axis(axes, x), pick_axis(axes, y), pick_axis(axes, z))


@pytest.mark.django_db
def test_each_item_of_a_2_by_3_sweep_lands_in_its_cell(catalog):
    order = width_by_height()
    products = {p.item.index: p for p in give_products(order)}
    axes = find_axes(comparison_items(order))
    assert [axis.key for axis in axes] == ["width", "height"]
    assert [v.label for v in axes[0].values] == ["256", "384"]
    assert [v.label for v in axes[1].values] == ["64", "96", "128"]

    grid = _grid(order, "width", "height")
    (page,) = grid.pages
    assert [row.header.label for row in page.rows] == ["64", "96", "128"]
    assert page.cell_count == 6
    for row, height in zip(page.rows, HEIGHTS):
        for cell, width in zip(row.cells, WIDTHS):
            (product,) = cell.products
            assert product == products[product.item.index]
            assert (product.parameters["width"], product.parameters["height"]) == (
                width, height)


@pytest.mark.django_db
def test_swapping_the_axes_transposes_the_grid(catalog):
    order = width_by_height()
    give_products(order)
    (page,) = _grid(order, "height", "width").pages
    assert len(page.rows) == 2 and len(page.rows[0].cells) == 3
    assert page.rows[1].cells[2].products[0].parameters == {
        **page.rows[1].cells[2].products[0].parameters, "width": 384, "height": 128}


@pytest.mark.django_db
def test_a_prompt_variant_is_an_axis_labelled_by_the_differing_words(catalog):
    order = swept_order(
        [[{"field": "width", "values": WIDTHS}]],
        prompt="a {red fox|grey heron|snow owl} standing alone in the deep winter "
               "snow of a quiet birch forest at dawn",
    )
    give_products(order)
    axes = find_axes(comparison_items(order))
    prompt = pick_axis(axes, "prompt")
    assert [v.label for v in prompt.values] == [
        "…\u00a0red fox\u00a0…", "…\u00a0grey heron\u00a0…", "…\u00a0snow owl\u00a0…"]
    assert prompt.values[0].title.startswith("a red fox standing alone")
    (page,) = _grid(order, "width", "prompt").pages
    assert [p.prompt for row in page.rows for p in row.cells[0].products] == [
        v.title for v in prompt.values]


def test_short_texts_stay_whole_and_long_ones_are_cut():
    assert differing_parts(["fox", "heron"]) == ["fox", "heron"]
    long = ["x" * 200, "y" * 200]
    assert [len(label) for label in differing_parts(long)] == [80, 80]
    assert differing_parts(["a b c " + "z" * 60, "a b c"])[1] == "…\u00a0–"
    cut = differing_parts(["a " + "y" * 100 + " z", "a " + "x" * 100 + " z"])
    assert cut[0] == "…\u00a0" + "y" * 79 + "…"
    assert differing_parts([
        "a lighthouse on a cliff at golden hour", "a windmill at golden hour",
    ]) == ["…\u00a0lighthouse on a cliff\u00a0…", "…\u00a0windmill\u00a0…"]


@pytest.mark.django_db
def test_machines_are_an_axis_named_by_machine(catalog):
    order = swept_order(
        [[{"field": "machine", "values": ["demo-image", "fal-flux-schnell"]}],
         [{"field": "seed", "values": [5, 6]}]],
    )
    give_products(order)
    axes = find_axes(comparison_items(order))
    machine = pick_axis(axes, "machine")
    assert [v.label for v in machine.values] == ["Demo image", "FLUX.1 [schnell]"]
    (page,) = _grid(order, "machine", "seed").pages
    assert [[c.products[0].machine.slug for c in row.cells] for row in page.rows] == [
        ["demo-image", "fal-flux-schnell"]] * 2


@pytest.mark.django_db
def test_a_third_axis_makes_one_page_per_value(catalog):
    order = swept_order([
        [{"field": "width", "values": WIDTHS}],
        [{"field": "height", "values": HEIGHTS}],
        [{"field": "output_format", "values": ["png", "jpeg"]}],
    ])
    give_products(order)
    grid = _grid(order, "width", "height", "output_format")
    assert [page.header.label for page in grid.pages] == ["png", "jpeg"]
    for page, fmt in zip(grid.pages, ["png", "jpeg"]):
        assert page.cell_count == 6
        assert {p.parameters["output_format"] for row in page.rows
                for c in row.cells for p in c.products} == {fmt}


@pytest.mark.django_db
def test_zipped_fields_make_one_axis_and_runs_another(catalog):
    order = swept_order(
        [[{"field": "width", "values": WIDTHS}, {"field": "height", "values": [64, 96]}]],
        runs=2,
    )
    give_products(order)
    axes = find_axes(comparison_items(order))
    assert [(a.label, [v.label for v in a.values]) for a in axes] == [
        ("width / height", ["256 / 64", "384 / 96"]), ("run", ["run 1", "run 2"])]
    assert default_axes(axes) == (axes[0], axes[1])


@pytest.mark.django_db
def test_empty_cells_keep_their_items_state(catalog):
    order = width_by_height()
    give_products(order, leave={1: ItemStatus.FAILED, 4: ItemStatus.PENDING})
    (page,) = _grid(order, "width", "height").pages
    waiting = {(r, c): [i.status for i in cell.waiting]
               for r, row in enumerate(page.rows) for c, cell in enumerate(row.cells)
               if cell.waiting}
    assert waiting == {(1, 0): [ItemStatus.FAILED], (1, 1): [ItemStatus.PENDING]}


@pytest.mark.django_db
def test_a_retry_takes_the_place_of_the_failed_item(catalog):
    order = width_by_height()
    give_products(order, leave={2: ItemStatus.FAILED})
    (attempt,) = retry_failed_items(order.items.filter(index=2))
    grid = _grid(order, "width", "height")
    (cell_items,) = [c.items for row in grid.pages[0].rows for c in row.cells
                     if any(i.pk == attempt.pk for i in c.items)]
    assert [i.pk for i in cell_items] == [attempt.pk]
    assert OrderItem.objects.get(pk=attempt.pk).field_values == {"width": 256, "height": 128}


@pytest.mark.django_db
def test_an_order_without_a_sweep_has_no_axes(catalog):
    order = swept_order([])
    give_products(order)
    assert find_axes(comparison_items(order)) == []
    assert default_axes([]) == (None, None)


@pytest.mark.django_db
def test_one_field_cannot_be_two_axes(catalog):
    order = width_by_height()
    items = comparison_items(order)
    axes = find_axes(items)
    with pytest.raises(ComparisonError, match="different field for each axis"):
        pivot(items, axes, axes[0], axes[0])


@pytest.mark.django_db
def test_a_retry_stays_in_the_run_of_the_item_it_replaces(catalog):
    order = swept_order([[{"field": "width", "values": WIDTHS}]], runs=2)
    give_products(order, leave={0: ItemStatus.FAILED})
    (attempt,) = retry_failed_items(order.items.filter(index=0))
    (page,) = _grid(order, "width", "run").pages
    assert [[i.index for i in cell.items] for row in page.rows for cell in row.cells] == [
        [attempt.index], [1], [2], [3]]

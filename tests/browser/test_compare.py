"""The sweep comparison grid in a real browser: a 2 × 3 sweep produced by
the live worker, each product in its cell, curation from a cell, the PNG."""
import io
import re

import pytest
from PIL import Image

from admin_ext.orders.comparison import sheet_spec
from factory.comparison import comparison_items, find_axes, pick_axis, pivot
from factory.media import contact_sheet
from factory.models import Product
from tests.browser.test_retry_flow import SCREENSHOTS, log_in, wait_until_finished
from tests.comparison_data import swept_order

PROMPT = ("a {lighthouse on a cliff|windmill in a field of tulips} at golden hour, "
          "oil painting")
SEEDS = [11, 12, 13]
IMAGES_LOADED = """() => [...document.querySelectorAll('#compare-grid img')]
    .every(i => i.complete && i.naturalWidth > 0)"""


def _texts(page, selector: str) -> list[str]:
    return [text.strip() for text in page.locator(selector).all_inner_texts()]


def _cell_of(page, product: Product) -> str:
    card = page.locator(f"#product-card-{product.pk}")
    return card.evaluate("card => card.closest('td').dataset.cell")


@pytest.mark.django_db(transaction=True)
def test_compare_a_2_by_3_sweep_curate_a_cell_and_download_the_sheet(
    page, live_server, live_worker, lead, catalog, tmp_path
):
    order = swept_order(
        [[{"field": "seed", "values": SEEDS}]], prompt=PROMPT, title="Coast studies",
        base_parameters={"width": 320, "height": 240}, created_by=lead,
    )
    wait_until_finished(order)
    products = list(Product.objects.filter(item__order=order))
    assert len(products) == 6
    log_in(page, live_server.url, "lead", "pw-lead")
    page.goto(f"{live_server.url}/admin/factory/order/{order.pk}/change/")
    page.get_by_role("link", name=re.compile(r"\bCompare$")).click()
    page.wait_for_url(re.compile(rf".*/order/{order.pk}/compare/$"))
    page.wait_for_function(IMAGES_LOADED)

    assert _texts(page, "th.af-xy__col") == ["11", "12", "13"]
    rows = _texts(page, "th.af-xy__row")
    assert rows == ["…\u00a0lighthouse on a cliff\u00a0…",
                    "…\u00a0windmill in a field of tulips\u00a0…"]
    assert page.locator("th.af-xy__row").first.get_attribute("title") == (
        "a lighthouse on a cliff at golden hour, oil painting")
    for product in products:
        row = 0 if "lighthouse" in product.prompt else 1
        assert _cell_of(page, product) == f"{row}-{SEEDS.index(product.seed)}"

    chosen = next(p for p in products if p.seed == 12 and "windmill" in p.prompt)
    card = page.locator(f"#product-card-{chosen.pk}")
    card.hover()
    card.locator("[data-favorite-toggle]").click()
    page.wait_for_selector(f'#product-card-{chosen.pk}[data-favorite="true"]')
    assert Product.objects.get(pk=chosen.pk).is_favorite is True
    page.locator(f"#product-card-{chosen.pk}").hover()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "compare.png"))

    with page.expect_download() as download:
        page.click("#compare-sheet")
    assert download.value.suggested_filename == f"order-{order.pk}-seed-by-prompt.png"
    target = tmp_path / "sheet.png"
    download.value.save_as(target)
    _assert_sheet_cells(Image.open(target), order)

    page.emulate_media(color_scheme="dark")
    page.reload()
    page.wait_for_function(IMAGES_LOADED)
    assert "dark" in page.locator("html").get_attribute("class")
    page.screenshot(path=str(SCREENSHOTS / "compare-dark.png"))
    page.click("#compare-back")
    page.wait_for_url(re.compile(rf".*/order/{order.pk}/change/$"))


def _assert_sheet_cells(sheet: Image.Image, order) -> None:
    """Every cell of the PNG holds a picture, where the layout puts it."""
    items = comparison_items(order)
    axes = find_axes(items)
    grid = pivot(items, axes, pick_axis(axes, "seed"), pick_axis(axes, "prompt"))
    layout = contact_sheet.plan_layout(sheet_spec(order, grid, grid.pages[0]))
    assert sheet.size == (layout.width, layout.height)
    top = contact_sheet.MARGIN + layout.title_height + layout.column_header
    left = contact_sheet.MARGIN + layout.row_header
    for r in range(2):
        for c in range(3):
            x = left + c * (layout.cell_width + contact_sheet.GAP)
            y = top + r * (layout.tile + contact_sheet.GAP)
            tile = sheet.crop((x + 8, y + 8, x + layout.tile - 8, y + layout.tile - 8))
            low, high = tile.convert("L").getextrema()
            assert high - low > 20, (r, c, "blank cell")
    with io.BytesIO() as out:
        sheet.save(out, "PNG")

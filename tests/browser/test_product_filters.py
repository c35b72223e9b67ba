"""Filtering the products grid in a real browser: expressions, chips, removal."""
import re

import pytest

from factory.models import Product
from tests.browser.test_demo_order_flow import SCREENSHOTS
from tests.browser.test_product_grid import IMAGES_LOADED, _log_in
from tests.gallery import produce

FILTERS_BUTTON = "a[x-on\\:click='filterOpen = true']"
STEPS = [20, 28, 40, 50]
GUIDANCE = [2, 3.5, 5, 7]


@pytest.fixture
def gallery(catalog, operator) -> list[Product]:
    """Sixteen pictures whose steps and guidance vary; seeds 1 to 16."""
    products = produce("demo-image", 16, user=operator)
    for index, product in enumerate(products):
        product.parameters = {
            **product.parameters, "num_inference_steps": STEPS[index % 4],
            "guidance_scale": GUIDANCE[index // 4],
            "image_size": {"width": 1024 if index % 2 else 512, "height": 768},
        }
        product.save(update_fields=["parameters"])
    return products


def _expected(products: list[Product], test) -> set[int]:
    return {product.pk for product in products if test(product.parameters)}


def _shown(page) -> set[int]:
    ids = page.eval_on_selector_all("[data-card]", "cards => cards.map(c => c.id)")
    return {int(card_id.rsplit("-", 1)[1]) for card_id in ids}


def _chips(page) -> list[str]:
    return page.locator("[data-filter-chip] [data-chip-label]").all_inner_texts()


def _apply(page, expression: str) -> None:
    """Type an expression in the filter sheet and apply the filters."""
    page.click(FILTERS_BUTTON)
    box = page.locator("#id_param")
    box.wait_for(state="visible")
    box.fill(expression)
    page.click("#filter-form button[type=submit]")
    page.wait_for_load_state()
    page.wait_for_function(IMAGES_LOADED)


@pytest.mark.django_db(transaction=True)
def test_filter_by_seed_and_range_then_remove_a_chip(page, live_server, gallery):
    _log_in(page, live_server, "operator")
    page.goto(f"{live_server.url}/admin/factory/product/")
    page.wait_for_function(IMAGES_LOADED)
    assert len(_shown(page)) == 16
    assert page.locator("#af-filter-chips").count() == 0

    _apply(page, "seed=5")
    assert re.search(r"[?&]param=seed%3D5", page.url)
    assert _shown(page) == {Product.objects.get(seed=5).pk}
    assert _chips(page) == ["seed = 5"]

    page.click(FILTERS_BUTTON)
    box = page.locator("#id_param")
    assert box.input_value() == "seed=5"
    keys = page.locator("[data-parameter-key]")
    assert "num_inference_steps" in keys.all_inner_texts()
    box.fill("num_inference_steps 20..40")
    page.click("[data-parameter-key=guidance_scale]")
    assert box.input_value() == "num_inference_steps 20..40; guidance_scale"
    box.press("End")
    box.type(">=3")
    page.wait_for_timeout(300)  # the sheet has finished sliding in
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "products-filter-sheet.png"))
    page.click("#filter-form button[type=submit]")
    page.wait_for_load_state()
    page.wait_for_function(IMAGES_LOADED)

    both = _expected(gallery, lambda p: 20 <= p["num_inference_steps"] <= 40
                     and p["guidance_scale"] >= 3)
    assert _shown(page) == both and len(both) == 9
    assert _chips(page) == ["num_inference_steps 20–40", "guidance_scale ≥ 3"]
    page.screenshot(path=str(SCREENSHOTS / "products-filtered.png"))

    page.click("[aria-label='Remove guidance_scale ≥ 3']")
    page.wait_for_load_state()
    page.wait_for_function(IMAGES_LOADED)
    assert _chips(page) == ["num_inference_steps 20–40"]
    steps = _expected(gallery, lambda p: 20 <= p["num_inference_steps"] <= 40)
    assert _shown(page) == steps and len(steps) == 12

    _apply(page, "guidance_scale>=lots")
    assert "compares numbers" in page.content()
    assert _chips(page) == ["Not understood: guidance_scale>=lots"]
    assert len(_shown(page)) == 16

    page.click("#af-clear-filters")
    page.wait_for_load_state()
    assert page.locator("#af-filter-chips").count() == 0
    assert len(_shown(page)) == 16

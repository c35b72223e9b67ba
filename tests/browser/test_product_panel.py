"""The grid's side panel in a real browser: keys, tags, project, lightbox."""
import pytest

from factory.models import Product, Project, Tag
from tests.browser.test_demo_order_flow import SCREENSHOTS
from tests.browser.test_product_grid import (  # noqa: F401 (fixture)
    IMAGES_LOADED, _log_in, _open_grid, gallery,
)


def _panel_for(page, product: Product) -> None:
    page.wait_for_selector(f"#af-panel [data-panel][data-pk='{product.pk}']")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#af-panel img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )


def _tags(product: Product) -> list[str]:
    return sorted(product.tags.values_list("name", flat=True))


@pytest.mark.django_db(transaction=True)
def test_panel_tags_moves_and_opens_the_lightbox(page, live_server, gallery):
    Tag.objects.create(name="sunset")
    project = Project.objects.create(name="Harbour studies")
    first, second = Product.objects.all()[4:6]  # the two newest pictures
    _log_in(page, live_server, "operator")
    _open_grid(page, live_server)

    for _ in range(4):  # past the tunes and clips, which lead the grid
        page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    _panel_for(page, first)
    assert "is-open" in page.locator(f"#product-card-{first.pk}").get_attribute("class")

    page.keyboard.press("t")
    assert page.evaluate("document.activeElement.id") == "af-tag-input"
    page.keyboard.type("misty harbour")
    page.wait_for_selector(".af-tag-input__options li:has-text('Create “misty harbour”')")
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-tag='misty harbour']")
    assert page.input_value("#af-tag-input") == ""
    page.keyboard.type("suns")
    page.wait_for_selector(".af-tag-input__options li.is-active:has-text('sunset')")
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-tag='sunset']")
    assert _tags(first) == ["misty harbour", "sunset"]
    assert Tag.objects.count() == 2  # the existing tag was reused

    page.select_option("#af-project-select", label="Harbour studies")
    page.wait_for_selector(f"#af-project-select option[value='{project.pk}'][selected]",
                           state="attached")
    assert Product.objects.get(pk=first.pk).project == project

    Project.objects.create(name="Print run")
    page.click("[data-panel-next]")
    page.click("[data-panel-prev]")  # the panel now offers Print run
    _panel_for(page, first)
    page.wait_for_selector("#af-project-select option:has-text('Print run')", state="attached")
    Project.objects.filter(name="Print run").update(is_archived=True)
    page.select_option("#af-project-select", label="Print run")
    page.wait_for_selector("#af-grid-toast:has-text('Print run is archived')")
    assert page.locator("#af-project-select option:checked").inner_text() == "Harbour studies"
    assert Product.objects.get(pk=first.pk).project == project

    page.fill("#af-notes-input", "Keep for the print run")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector(f"#af-panel-notes-{first.pk} .af-panel__saved")
    assert Product.objects.get(pk=first.pk).notes == "Keep for the print run"

    page.locator(f"#af-panel-tags-{first.pk} [data-tag='sunset'] button").click()
    page.wait_for_selector("[data-tag='sunset']", state="detached")
    assert _tags(first) == ["misty harbour"]
    page.wait_for_timeout(300)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "product-panel.png"))

    page.click("[data-panel-next]")
    _panel_for(page, second)
    assert "is-focused" in page.locator(f"#product-card-{second.pk}").get_attribute("class")
    page.keyboard.press("ArrowLeft")
    _panel_for(page, first)
    page.keyboard.press("ArrowRight")
    _panel_for(page, second)

    page.keyboard.press("4")
    page.wait_for_selector(f"#product-card-{second.pk}[data-rating='4']")
    page.wait_for_selector("[data-panel-rate='4'].is-on")
    page.wait_for_selector(f"#product-card-{second.pk}.is-open.is-focused")

    page.keyboard.press("l")
    page.wait_for_selector("#af-lightbox", state="visible")
    image = page.locator("#af-lightbox [data-lightbox-image]")
    assert page.inner_text("[data-zoom-label]") == "Fit"
    page.wait_for_timeout(300)
    page.screenshot(path=str(SCREENSHOTS / "product-lightbox.png"))
    box = image.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 3, box["y"] + box["height"] / 3)
    page.wait_for_function(
        "() => document.querySelector('[data-zoom-label]').textContent.endsWith('%')"
    )
    moved = image.get_attribute("style")
    page.mouse.move(box["x"] + 300, box["y"] + 300)
    page.mouse.down()
    page.mouse.move(box["x"] + 200, box["y"] + 250, steps=5)
    page.mouse.up()
    assert image.get_attribute("style") != moved  # dragged
    page.wait_for_timeout(200)
    page.screenshot(path=str(SCREENSHOTS / "product-lightbox-zoom.png"))
    page.click("[data-zoom-actual]")
    assert page.inner_text("[data-zoom-label]") == "100%"
    page.click("[data-zoom-fit]")
    assert page.inner_text("[data-zoom-label]") == "Fit"
    page.mouse.move(box["x"] + 100, box["y"] + 100)
    page.mouse.wheel(0, -300)
    page.wait_for_function(
        "() => document.querySelector('[data-zoom-label]').textContent.endsWith('%')"
    )
    page.keyboard.press("Escape")
    page.wait_for_selector("#af-lightbox", state="hidden")
    page.keyboard.press("Escape")
    page.wait_for_selector("#af-panel", state="hidden")


@pytest.mark.django_db(transaction=True)
def test_panel_in_dark_mode_by_click_and_double_click(page, live_server, gallery):
    products = list(Product.objects.all()[:7])
    shown = products[6]
    shown.add_tags(["harbour", "mist", "print"])
    shown.set_rating(4)
    shown.set_favorite(True)
    _log_in(page, live_server, "operator")
    page.emulate_media(color_scheme="dark")
    _open_grid(page, live_server)

    page.locator(f"#product-card-{shown.pk}").click(position={"x": 40, "y": 40})
    _panel_for(page, shown)
    assert page.locator("[data-panel-rate].is-on").count() == 4
    assert page.url.endswith("/admin/factory/product/")  # stayed on the grid
    page.wait_for_timeout(300)
    page.screenshot(path=str(SCREENSHOTS / "product-panel-dark.png"))

    page.keyboard.press("?")
    page.wait_for_selector("#af-keys", state="visible")
    page.keyboard.press("Escape")
    page.wait_for_selector("#af-keys", state="hidden")
    assert page.locator("#af-panel").is_visible()  # Esc closed the overlay only

    page.locator(f"#product-card-{products[2].pk}").dblclick(position={"x": 40, "y": 40})
    page.wait_for_selector("#af-lightbox video", state="visible")  # a clip plays large
    _panel_for(page, products[2])
    page.keyboard.press("Escape")
    page.wait_for_selector("#af-lightbox", state="hidden")

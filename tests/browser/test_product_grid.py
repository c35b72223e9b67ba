"""The products grid in a real browser: density, keyboard curation, selection."""
import re

import pytest

from factory.models import Product
from tests.browser.test_demo_order_flow import SCREENSHOTS
from tests.conftest import ROOT
from tests.gallery import produce

LOCAL_SHOTS = ROOT / "var" / "screenshots"
FULLY_VISIBLE = """() => [...document.querySelectorAll('[data-card]')].filter(card => {
    const r = card.getBoundingClientRect();
    return r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight && r.right <= innerWidth;
}).length"""
IMAGES_LOADED = """() => [...document.querySelectorAll('[data-card] img')]
    .filter(i => i.getBoundingClientRect().top < innerHeight)
    .every(i => i.complete && i.naturalWidth > 0)"""


@pytest.fixture
def gallery(catalog, operator):
    """Thirty products of all three kinds, a few already curated.

    The clips and tunes are made last, so they lead the grid (newest first).
    """
    images = produce("demo-image", 26, user=operator)
    for product, rating in zip(images[4:20:3], [5, 3, 4, 2, 5, 4]):
        product.set_rating(rating)
        product.set_favorite(rating == 5)
    return (images + produce("demo-video", 2, user=operator)
            + produce("demo-audio", 2, user=operator))


def _log_in(page, live_server, user: str) -> None:
    page.goto(f"{live_server.url}/admin/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", f"pw-{user}")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/admin/$"))


def _open_grid(page, live_server) -> None:
    page.goto(f"{live_server.url}/admin/factory/product/")
    page.wait_for_selector("[data-card].is-focused")
    page.wait_for_function(IMAGES_LOADED)


def _card(page, product: Product):
    return page.locator(f"#product-card-{product.pk}")


@pytest.mark.django_db(transaction=True)
def test_grid_curates_from_the_keyboard(page, live_server, gallery):
    _log_in(page, live_server, "operator")
    _open_grid(page, live_server)
    assert page.locator("[data-card]").count() == 30
    assert page.evaluate(FULLY_VISIBLE) >= 24

    first = Product.objects.first()  # newest, the card that starts focused
    card = _card(page, first)
    assert "is-focused" in card.get_attribute("class")
    page.keyboard.press("f")
    page.wait_for_selector(f"#product-card-{first.pk}[data-favorite=true]")
    page.keyboard.press("4")
    page.wait_for_selector(f"#product-card-{first.pk}[data-rating='4']")
    first.refresh_from_db()
    assert (first.is_favorite, first.rating) == (True, 4)
    assert card.locator(".af-card__stars .is-on").count() == 4

    page.keyboard.press("ArrowRight")
    second = Product.objects.all()[1]
    assert "is-focused" in _card(page, second).get_attribute("class")
    page.keyboard.press("0")  # clearing an unrated card changes nothing
    page.keyboard.press("x")
    assert _card(page, second).locator("input.action-select").is_checked()
    assert page.locator(".action-counter").inner_text() == "1 of 30 selected"

    _card(page, first).hover()
    assert _card(page, first).locator(".af-card__info").is_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "products.png"))


@pytest.mark.django_db(transaction=True)
def test_grid_clicks_ranges_keys_and_density(page, live_server, gallery):
    _log_in(page, live_server, "operator")
    _open_grid(page, live_server)
    products = list(Product.objects.all()[:6])

    star = _card(page, products[2]).locator("[data-rate='3']")
    _card(page, products[2]).hover()
    star.click()
    page.wait_for_selector(f"#product-card-{products[2].pk}[data-rating='3']")
    _card(page, products[2]).locator("[data-rate='3']").click()  # same star clears
    page.wait_for_selector(f"#product-card-{products[2].pk}[data-rating='']")
    assert Product.objects.get(pk=products[2].pk).rating is None

    _card(page, products[0]).locator("input.action-select").check(force=True)
    _card(page, products[4]).locator("input.action-select").click(
        modifiers=["Shift"], force=True
    )
    checked = page.locator("input.action-select:checked")
    assert checked.count() == 5
    assert page.locator("#changelist-actions").is_visible()

    page.keyboard.press("?")
    page.wait_for_selector("#af-keys", state="visible")
    page.wait_for_timeout(300)  # let the sheet finish fading in
    LOCAL_SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(LOCAL_SHOTS / "products-keys.png"))
    page.keyboard.press("Escape")
    page.wait_for_selector("#af-keys", state="hidden")

    page.click("[data-density=large]")
    large = page.evaluate(FULLY_VISIBLE)
    page.reload()
    page.wait_for_selector("[data-card].is-focused")
    assert page.locator("[data-density=large]").get_attribute("aria-pressed") == "true"
    page.click("[data-density=small]")
    assert page.evaluate(FULLY_VISIBLE) > large
    page.click("[data-density=medium]")

    page.click("#af-view-table")
    page.wait_for_selector("#result_list")
    page.screenshot(path=str(LOCAL_SHOTS / "products-table.png"))
    page.click("#af-view-grid")
    page.wait_for_selector("[data-card]")


@pytest.mark.django_db(transaction=True)
def test_grid_in_dark_mode(page, live_server, gallery):
    _log_in(page, live_server, "operator")
    page.emulate_media(color_scheme="dark")
    _open_grid(page, live_server)
    assert "dark" in page.locator("html").get_attribute("class")
    products = list(Product.objects.all()[:3])
    for product in products:
        product.set_favorite(True)
    products[1].set_rating(5)
    page.reload()
    page.wait_for_function(IMAGES_LOADED)
    _card(page, products[2]).hover()
    LOCAL_SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(LOCAL_SHOTS / "products-dark.png"))


@pytest.mark.django_db(transaction=True)
def test_clips_play_on_hover_and_tunes_scrub_in_place(page, live_server, gallery):
    _log_in(page, live_server, "operator")
    _open_grid(page, live_server)
    clip = Product.objects.filter(media_type="video").first()
    tune = Product.objects.filter(media_type="audio").first()

    _card(page, clip).hover()
    video = _card(page, clip).locator("video")
    video.wait_for(state="attached")
    page.wait_for_function(
        "v => !v.paused && v.muted && v.currentTime > 0", arg=video.element_handle())
    page.mouse.move(0, 0)  # leaving the card stops and drops the clip
    video.wait_for(state="detached")

    track = _card(page, tune).locator("[data-track]")
    box = track.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + box["height"] / 2)
    audio = _card(page, tune).locator("audio").element_handle()
    page.wait_for_function(
        "a => !a.paused && a.duration > 0 && a.currentTime >= a.duration * 0.7", arg=audio)
    assert page.locator("#af-panel [data-panel-pk]").count() == 0  # no panel opened

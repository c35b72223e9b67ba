"""Pick a machine, fill its form, sweep, watch the preview, place, watch it
run: the whole ordering flow in a real browser, with a live worker."""
import os
import re
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from factory.models import FactoryMachine, Order, OrderItem, OrderStatus, Product

from tests.conftest import ROOT

# `make screenshots` points this at docs/screenshots to refresh the README's.
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", ROOT / "var" / "screenshots"))
PROMPTS = "a lighthouse on a cliff at golden hour\na windmill in a field of tulips"
PERCENT = "document.querySelector('#order-progress-percent').textContent.trim()"
THUMBS = "document.querySelectorAll('#order-thumbnails img')"
COUNT = "document.querySelector('#preview-count')?.textContent.trim()"


@pytest.fixture
def admin_login(transactional_db):
    User.objects.create_superuser("ada", "ada@example.com", "correct-horse-battery")
    return "ada", "correct-horse-battery"


def _log_in(page, live_server, username: str, password: str) -> None:
    page.goto(f"{live_server.url}/admin/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/admin/$"))


def _parameter(page, key: str):
    """The jsonform input of one machine parameter."""
    return page.locator(f".order-parameters [name='rjf§{key}']")


def _open_demo_form(page, live_server) -> FactoryMachine:
    page.goto(f"{live_server.url}/admin/factory/order/add/")
    page.get_by_role("link", name="Demo image", exact=True).click()
    machine = FactoryMachine.objects.get(slug="demo-image")
    page.wait_for_url(re.compile(rf".*/admin/factory/order/add/\?machine={machine.pk}$"))
    return machine


def _sweep_prompts_and_seeds(page) -> None:
    editor = page.locator(".af-sweeps")
    editor.get_by_role("button", name="Add a group").click()
    first = editor.locator("section.af-group").nth(0)
    first.locator("select").select_option("prompt")
    first.locator("textarea.af-values").fill(PROMPTS)
    editor.get_by_role("button", name="Multiply by a group").click()
    second = editor.locator("section.af-group").nth(1)
    second.locator("select").select_option("seed")
    second.locator("textarea.af-values").fill("11\n12\n13")
    assert editor.locator(".af-total strong").inner_text() == "2 × 3 = 6 combinations"


@pytest.mark.django_db(transaction=True)
def test_pick_sweep_preview_place_and_watch_without_a_reload(
    page, live_server, live_worker, admin_login, catalog
):
    _log_in(page, live_server, *admin_login)
    _open_demo_form(page, live_server)
    # The machine's own fields, with its defaults.
    assert _parameter(page, "width").input_value() == "768"
    assert _parameter(page, "output_format").input_value() == "png"
    assert _parameter(page, "width").get_attribute("max") == "2048"

    page.fill("input[name=title]", "Coast studies")
    _parameter(page, "width").fill("384")
    _parameter(page, "height").fill("256")
    _sweep_prompts_and_seeds(page)
    page.wait_for_function(f"() => {COUNT} === '6'")
    place = page.locator("#place-from-form")
    assert place.inner_text().strip().endswith("Place 6 items · 0.0000 USD")
    assert place.is_enabled()
    seeds = page.locator("#preview-items li").evaluate_all(
        "items => items.map(li => li.dataset.seed)")
    assert seeds == ["11", "12", "13", "11", "12", "13"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "order-form.png"))

    place.click()
    page.wait_for_url(re.compile(r".*/admin/factory/order/\d+/change/$"))
    assert "6 items queued" in page.content()
    order = Order.objects.get()
    assert order.status != OrderStatus.DRAFT and order.base_parameters == {
        "width": 384, "height": 256}
    page.evaluate("window.__marker = 1")
    page.wait_for_function(f"() => {PERCENT} === '100 %'", timeout=60_000)
    page.wait_for_function(
        f"() => {THUMBS}.length === 6 && [...{THUMBS}]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    assert page.evaluate("window.__marker") == 1, "the page was reloaded"
    assert Product.objects.filter(item__order=order).count() == 6, list(
        OrderItem.objects.values_list("status", "attempts", "last_error"))
    assert {(p.prompt, p.seed) for p in Product.objects.all()} == {
        (prompt, seed) for prompt in PROMPTS.split("\n") for seed in (11, 12, 13)}

    page.goto(f"{live_server.url}/admin/factory/product/")
    assert page.locator("img[loading=lazy]").count() == 6

    page.goto(f"{live_server.url}/admin/factory/order/")
    assert page.get_by_text("Done", exact=True).count() >= 1
    page.screenshot(path=str(SCREENSHOTS / "orders.png"))

    page.goto(f"{live_server.url}/admin/")
    page.wait_for_function(
        "() => [...document.querySelectorAll('section img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"))


@pytest.mark.django_db(transaction=True)
def test_out_of_range_value_is_located_in_the_preview_and_blocks_placing(
    page, live_server, admin_login, catalog
):
    _log_in(page, live_server, *admin_login)
    _open_demo_form(page, live_server)
    page.fill("textarea[name=prompt]", "a {fox|owl} in the snow")
    page.wait_for_function(f"() => {COUNT} === '2'")
    _parameter(page, "width").fill("5000")
    errors = page.locator("#preview-errors")
    errors.wait_for()
    assert "item 0 on demo-image: /width: 5000 is greater than the maximum of 2048" in (
        errors.inner_text())
    assert page.locator("#place-from-form").is_disabled()
    page.screenshot(path=str(SCREENSHOTS / "order-form-error.png"))
    _parameter(page, "width").fill("1024")
    page.locator("#preview-errors").wait_for(state="detached")
    assert page.locator("#place-from-form").is_enabled()
    assert not Order.objects.exists()

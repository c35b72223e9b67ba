"""Pick a machine for a new order, and read a machine's page: in a browser."""
import re

import pytest
from django.contrib.auth.models import User

from factory.models import FactoryMachine

from tests.browser.test_demo_order_flow import SCREENSHOTS, admin_login  # noqa: F401


def log_in(page, live_server, username: str, password: str) -> None:
    page.goto(f"{live_server.url}/admin/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/admin/$"))


@pytest.mark.django_db(transaction=True)
def test_search_and_pick_a_machine(page, live_server, admin_login, demo_order, settings):
    settings.CIVITAI_API_TOKEN = ""  # one provider shows how a missing key looks
    FactoryMachine.objects.get(slug="fal-flux-dev").starred_by.add(
        User.objects.get(username=admin_login[0])
    )
    log_in(page, live_server, *admin_login)

    page.goto(f"{live_server.url}/admin/factory/order/add/")
    cards = page.locator("article.picker-card")
    assert cards.count() == FactoryMachine.objects.active().count()
    assert page.locator("[data-group=starred] article").count() == 1
    assert page.get_by_text("needs CIVITAI_API_TOKEN").is_visible()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.picker-thumb img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "machine-picker.png"), full_page=True)

    audio = FactoryMachine.objects.get(slug="demo-audio")
    page.click(f"#star-{audio.pk}")
    page.locator(f"#star-{audio.pk}.is-starred").wait_for()
    assert audio.starred_by.filter(username=admin_login[0]).exists()

    page.fill("#picker-search", "demo")
    # Alpine filters on its next tick: wait for the filter, not any card.
    page.wait_for_function(
        "() => [...document.querySelectorAll('article.picker-card')]"
        ".filter(card => card.offsetParent !== null).length === 3"
    )
    visible = page.locator("article.picker-card:visible")
    names = visible.locator(".picker-name").all_inner_texts()
    assert sorted(names) == ["Demo audio", "Demo image", "Demo video"]
    assert page.locator("section[data-group=starred]").is_hidden()

    page.get_by_role("link", name="Demo image", exact=True).click()
    machine = FactoryMachine.objects.get(slug="demo-image")
    page.wait_for_url(re.compile(rf".*/admin/factory/order/add/\?machine={machine.pk}$"))


@pytest.mark.django_db(transaction=True)
def test_machine_page_reads_first(page, live_server, admin_login, catalog):
    log_in(page, live_server, *admin_login)
    machine = FactoryMachine.objects.get(slug="fal-flux-dev")
    page.goto(f"{live_server.url}/admin/factory/factorymachine/{machine.pk}/change/")
    rows = page.locator("#schema-table tbody tr")
    assert rows.count() == len(machine.input_schema["properties"])
    assert page.locator("#machine-price").inner_text() == "0.025 USD per megapixel"
    assert page.locator("textarea[name=input_schema]").is_hidden()
    page.screenshot(path=str(SCREENSHOTS / "machine-page.png"), full_page=True)
    page.get_by_text("Raw model inputs").click()
    assert page.locator("textarea[name=input_schema]").is_visible()

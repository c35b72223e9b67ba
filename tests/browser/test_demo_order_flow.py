"""Log in, place a demo order, see the thumbnails: in a real browser."""
import os
import re
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from factory.models import OrderItem

from tests.conftest import ROOT

# `make screenshots` points this at docs/screenshots to refresh the README's.
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", ROOT / "var" / "screenshots"))


@pytest.fixture
def admin_login(transactional_db):
    User.objects.create_superuser("ada", "ada@example.com", "correct-horse-battery")
    return "ada", "correct-horse-battery"


@pytest.mark.django_db(transaction=True)
def test_place_demo_order_and_see_thumbnails(
    page, live_server, live_worker, admin_login, catalog
):
    username, password = admin_login
    page.goto(f"{live_server.url}/admin/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/admin/$"))

    page.goto(f"{live_server.url}/admin/factory/order/add/")
    page.get_by_role("link", name="Demo image", exact=True).click()
    page.wait_for_url(re.compile(r".*/admin/factory/order/add/\?machine=\d+$"))
    page.fill("input[name=title]", "Lighthouse studies")
    page.fill("textarea[name=prompt]", "a lighthouse on a cliff at golden hour")
    page.fill("textarea[name=base_parameters]", '{"width": 384, "height": 256}')
    page.fill("input[name=runs]", "4")
    page.click("button[name=_continue]")
    # Django keeps the add page's query string (?machine=) on the redirect.
    page.wait_for_url(re.compile(r".*/change/(\?.*)?$"))

    page.get_by_role("link", name=re.compile("Place order")).click()
    assert page.locator("#plan-count").inner_text() == "4"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "place-order.png"))
    page.click("#confirm-place")
    page.wait_for_url(re.compile(r".*/change/$"))
    assert "4 items queued" in page.content()

    products_url = f"{live_server.url}/admin/factory/product/"
    for _ in range(60):
        page.goto(products_url)
        if page.locator("img[loading=lazy]").count() == 4:
            break
        page.wait_for_timeout(500)
    thumbs = page.locator("img[loading=lazy]")
    assert thumbs.count() == 4, list(
        OrderItem.objects.values_list("status", "attempts", "last_error", "lease_until")
    )
    page.wait_for_function(
        "() => [...document.querySelectorAll('img[loading=lazy]')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    page.screenshot(path=str(SCREENSHOTS / "products.png"), full_page=True)

    page.goto(f"{live_server.url}/admin/factory/order/")
    assert page.get_by_text("Done", exact=True).count() >= 1
    page.screenshot(path=str(SCREENSHOTS / "orders.png"))

    page.goto(f"{live_server.url}/admin/")
    assert page.locator("section img[loading=lazy]").count() == 4
    page.wait_for_function(
        "() => [...document.querySelectorAll('section img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"))

"""An order's page fills in by itself while the live worker produces it."""
import os
import re
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from factory.models import (
    FactoryMachine, ItemStatus, Order, OrderItem, OrderStatus, Provider, SeedStrategy,
)
from factory.ordering import place_order

from tests.conftest import ROOT
from tests.progress_data import build_order

# `make screenshots` points this at docs/screenshots to refresh the docs' copies.
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", ROOT / "var" / "screenshots"))
PERCENT = "document.querySelector('#order-progress-percent').textContent.trim()"
THUMBS = "document.querySelectorAll('#order-thumbnails img')"


@pytest.fixture
def slow_worker(settings, request):
    """The live worker, with demo generations taking long enough to watch."""
    settings.DEMO_LATENCY_SECONDS = 1.5
    # Two at a time, so six items finish in three waves.
    Provider.objects.filter(slug="demo").update(concurrency_limit=2)
    return request.getfixturevalue("live_worker")


def log_in(page, base_url: str) -> None:
    User.objects.create_superuser("ada", "ada@example.com", "correct-horse-battery")
    page.goto(f"{base_url}/admin/")
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", "correct-horse-battery")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/admin/$"))


@pytest.mark.django_db(transaction=True)
def test_order_page_shows_progress_and_thumbnails_without_a_reload(
    page, live_server, catalog, slow_worker
):
    log_in(page, live_server.url)
    order = Order.objects.create(
        title="Lighthouse studies", machine=FactoryMachine.objects.get(slug="demo-image"),
        prompt="a lighthouse on a cliff at golden hour, {oil|ink|watercolour}",
        base_parameters={"width": 256, "height": 256}, runs=2,
        seed_strategy=SeedStrategy.INCREMENT, seed=7,
    )
    place_order(order)
    assert order.item_count == 6

    page.goto(f"{live_server.url}/admin/factory/order/{order.pk}/change/")
    page.evaluate("window.__marker = 1")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # The live worker may take a while to start on a busy machine.
    page.wait_for_function(f"() => {THUMBS}.length >= 1 && {PERCENT} !== '100 %'",
                           timeout=60_000)
    page.screenshot(path=str(SCREENSHOTS / "order-progress-running.png"))

    page.wait_for_function(f"() => {PERCENT} === '100 %'", timeout=60_000)
    page.wait_for_function(
        f"() => {THUMBS}.length === 6 && [...{THUMBS}]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    assert page.evaluate("window.__marker") == 1, "the page was reloaded"
    panel = page.locator("#order-progress")
    assert panel.get_attribute("hx-trigger") is None
    assert "6 of 6 items finished" in panel.inner_text()
    statuses = OrderItem.objects.filter(order=order).values_list("status", flat=True)
    assert set(statuses) == {"completed"}
    page.screenshot(path=str(SCREENSHOTS / "order-progress.png"))

    page.click("#order-products-link")
    page.wait_for_url(re.compile(rf".*item__order__id__exact={order.pk}"))
    assert page.locator("img[loading=lazy]").count() == 6


@pytest.mark.django_db(transaction=True)
def test_orders_list_and_dashboard_follow_an_order_to_its_end(
    page, live_server, catalog
):
    """Bars and states change in place as the database moves on."""
    order = build_order(title="Kites", completed=3, in_flight=2, pending=5)
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/admin/factory/order/")
    page.evaluate("window.__marker = 1")
    cell = page.locator(f"#order-progress-{order.pk}")
    assert "3 / 10" in cell.inner_text()
    status = page.locator("#result_list td.field-display_status").first

    order.items.filter(status=ItemStatus.PENDING).update(status=ItemStatus.SUBMITTED)
    order.items.filter(index__lt=8).update(status=ItemStatus.COMPLETED)
    page.wait_for_function(
        f"() => document.querySelector('#order-progress-{order.pk}')"
        ".textContent.includes('8 / 10')"
    )
    finish(order)
    page.wait_for_function(
        "() => document.querySelector('#result_list td.field-display_status')"
        ".textContent.trim() === 'Done'"
    )
    assert "10 / 10" in cell.inner_text() and status.text_content().strip() == "Done"
    poller = page.locator("#orders-progress-poller")
    assert poller.get_attribute("hx-trigger") is None
    assert page.evaluate("window.__marker") == 1, "the list was reloaded"

    second = build_order(title="Gulls", in_flight=4)
    page.goto(f"{live_server.url}/admin/")
    page.evaluate("window.__marker = 2")
    first_order = page.locator("#recent-orders li").first
    assert "Gulls" in first_order.inner_text()
    finish(second)
    page.wait_for_function(
        "() => document.querySelector('#dashboard-live').dataset.live === 'false'"
    )
    assert "4 / 4" in first_order.inner_text()
    assert page.locator("#dashboard-live").get_attribute("hx-trigger") is None
    assert page.evaluate("window.__marker") == 2, "the dashboard was reloaded"


def finish(order: Order) -> None:
    order.items.update(status=ItemStatus.COMPLETED, completed_at=timezone.now())
    Order.objects.filter(pk=order.pk).update(
        status=OrderStatus.DONE, finished_at=timezone.now()
    )

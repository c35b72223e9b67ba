"""Retry failed items from the Orders list: confirm count and cost, then spend.

The orders are produced for real by the live worker; some items are then
marked failed, as the foreman marks items a provider gave up on.
"""
import os
import re
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from factory.models import (
    FactoryMachine, ItemStatus, Order, OrderItem, OrderStatus, SeedStrategy,
)
from factory.ordering import place_order

from tests.conftest import ROOT

# `make screenshots` points this at docs/screenshots to refresh the docs' copies.
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", ROOT / "var" / "screenshots"))
# The demo machine is free; a price gives the confirmation page a cost to show.
PRICE = Decimal("0.0125")
ERROR = "demo: the GPU caught fire"


def produced_order(user, title: str, runs: int) -> Order:
    order = Order.objects.create(
        title=title, machine=FactoryMachine.objects.get(slug="demo-image"),
        prompt="a harbour crane at night", base_parameters={"width": 96, "height": 64},
        runs=runs, seed_strategy=SeedStrategy.INCREMENT, seed=1, created_by=user,
    )
    return place_order(order)


def wait_until_finished(*orders: Order, timeout: float = 90) -> None:
    """Let the live worker and foreman finish every item of ``orders``."""
    deadline = time.monotonic() + timeout
    items = OrderItem.objects.filter(order__in=orders)
    while items.exclude(status__in=[ItemStatus.COMPLETED, ItemStatus.FAILED]).exists():
        assert time.monotonic() < deadline, list(
            items.values_list("index", "status", "attempts", "last_error")
        )
        time.sleep(0.25)


def fail(order: Order, indexes: list[int]) -> None:
    OrderItem.objects.filter(order=order, index__in=indexes).update(
        status=ItemStatus.FAILED, last_error=ERROR, completed_at=timezone.now(),
    )
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.DONE_WITH_FAILURES)


def log_in(page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/admin/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/admin/$"))


def run_action(page, changelist_url: str, pk: int, action: str) -> None:
    """Tick one row of a changelist and run ``action`` on it."""
    page.goto(changelist_url)
    page.check(f"input[name=_selected_action][value='{pk}']")
    page.select_option("select[name=action]", label=action)
    page.click("button[name=index]")


@pytest.mark.django_db(transaction=True)
def test_retry_failed_items_asks_first_then_queues_linked_attempts(
    page, live_server, live_worker, lead, catalog
):
    FactoryMachine.objects.filter(slug="demo-image").update(price_amount=PRICE)
    order = produced_order(lead, "Harbour cranes", runs=3)
    other = produced_order(lead, "Harbour lights", runs=1)
    wait_until_finished(order, other)
    fail(order, [0, 2])
    fail(other, [0])
    log_in(page, live_server.url, "lead", "pw-lead")
    orders_url = f"{live_server.url}/admin/factory/order/"

    run_action(page, orders_url, order.pk, "Retry failed items")

    page.wait_for_selector("#retry-count")
    assert page.get_by_role("heading", name="Retry 2 failed items?").count() == 1
    assert page.locator("#retry-count").inner_text() == "2"
    assert page.locator("#retry-cost").inner_text() == "0.0250 USD"
    assert page.locator("#confirm-retry").inner_text() == "Retry 2 items"
    assert not OrderItem.objects.filter(retry_of__isnull=False).exists()
    assert Order.objects.get(pk=order.pk).status == OrderStatus.DONE_WITH_FAILURES
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "retry-failed.png"))

    page.click("#confirm-retry")
    page.wait_for_url(orders_url)
    assert page.get_by_text("2 failed items queued again.").count() == 1
    retries = OrderItem.objects.filter(retry_of__isnull=False)
    assert sorted(retries.values_list("order", "retry_of__index", "index")) == [
        (order.pk, 0, 3), (order.pk, 2, 4)]
    wait_until_finished(order)
    assert set(retries.values_list("status", flat=True)) == {ItemStatus.COMPLETED}
    assert other.items.get().status == ItemStatus.FAILED

    see_linked_attempts(page, live_server.url, order)


def see_linked_attempts(page, base_url: str, order: Order) -> None:
    """The items list shows the new attempts; each links back to its failure."""
    page.goto(f"{base_url}/admin/factory/orderitem/?q=Harbour+cranes")
    for index in (3, 4):
        row = page.locator("#result_list tbody tr", has_text=f"{order.pk}#{index}")
        assert row.get_by_text("Completed", exact=True).count() == 1
    page.get_by_role("link", name=f"{order.pk}#3", exact=True).click()
    page.wait_for_url(re.compile(r".*/change/(\?.*)?$"))
    retry_of = page.locator(".field-line", has=page.get_by_text("Retry of", exact=True))
    retry_of.get_by_role("link", name=f"{order.pk}#0", exact=True).click()
    page.wait_for_url(re.compile(r".*/change/$"))
    assert page.get_by_text(ERROR).count() >= 1

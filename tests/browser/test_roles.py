"""A viewer in a real browser: everything to look at, nothing that spends."""
import re
from decimal import Decimal

import pytest

from factory.models import (
    FactoryMachine, ItemStatus, Order, OrderItem, OrderStatus, Product,
)
from tests.browser.test_demo_order_flow import SCREENSHOTS
from tests.browser.test_product_grid import _log_in
from tests.gallery import produce

SPENDING_TEXT = re.compile(r"Place|Retry|Cancel|Order again|Vary seed|New order", re.I)
# Bulk actions that change or spend; exporting and downloading are a viewer's.
CHANGING_ACTION = re.compile(
    rf"{SPENDING_TEXT.pattern}|Delete|Tag|Archive|Restore|Move|favorite|Rate", re.I)


@pytest.fixture
def shop(catalog, lead):
    """Products, a draft and a finished order with failed items."""
    produce("demo-image", 6, user=lead)
    machine = FactoryMachine.objects.get(slug="demo-image")
    draft = Order.objects.create(
        title="Lighthouse draft", machine=machine, prompt="a lighthouse",
        base_parameters={"width": 192, "height": 128}, created_by=lead,
    )
    failed = Order.objects.create(
        title="Kites", machine=machine, prompt="a kite", created_by=lead, item_count=2,
        status=OrderStatus.DONE_WITH_FAILURES, estimated_cost=Decimal("0.008"),
    )
    for index in range(2):
        OrderItem.objects.create(
            order=failed, machine=machine, index=index, status=ItemStatus.FAILED,
            parameters={"prompt": "a kite", "seed": index}, seed=index,
            cost=Decimal("0.004"), last_error="GPU fire",
        )
    return {"draft": draft, "failed": failed}


def _links_and_buttons(page) -> list[str]:
    """The visible text of every link and button in the page's content."""
    return page.eval_on_selector_all(
        "#content a, #content button, #content [role=button], #content option",
        """els => els.filter(e => e.offsetParent !== null || e.tagName === 'OPTION')
            .map(e => { const copy = e.cloneNode(true);  // icon names are not labels
                copy.querySelectorAll('.material-symbols-outlined').forEach(i => i.remove());
                return (copy.textContent + ' ' + (e.title || '')).trim(); })
            .filter(Boolean)""",
    )


def _spending_actions(page) -> list[str]:
    """Bulk actions offered on the page that would spend or change work;
    a viewer may still export or download what it sees."""
    offered = page.locator("select[name=action] option").all_inner_texts()
    return [text for text in offered if CHANGING_ACTION.search(text)]


def _shoot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


@pytest.mark.django_db(transaction=True)
def test_a_viewer_finds_no_spending_action_anywhere(page, live_server, shop, viewer):
    _log_in(page, live_server, "viewer")
    _shoot(page, "roles-viewer-dashboard.png")

    page.goto(f"{live_server.url}/admin/factory/order/")
    assert page.locator("a[href$='/order/add/']").count() == 0
    assert not _spending_actions(page)
    assert not [t for t in _links_and_buttons(page) if SPENDING_TEXT.search(t)]
    _shoot(page, "roles-viewer-orders.png")

    draft = shop["draft"]
    page.goto(f"{live_server.url}/admin/factory/order/{draft.pk}/change/")
    page.wait_for_load_state("networkidle")
    assert page.locator("#place-from-form").count() == 0
    assert page.locator("button[name=_save], input[name=_save]").count() == 0
    assert not [t for t in _links_and_buttons(page) if SPENDING_TEXT.search(t)]
    _shoot(page, "roles-viewer-draft.png")

    failed = shop["failed"]
    page.goto(f"{live_server.url}/admin/factory/order/{failed.pk}/change/")
    assert not [t for t in _links_and_buttons(page) if SPENDING_TEXT.search(t)]

    page.goto(f"{live_server.url}/admin/factory/orderitem/")
    assert not _spending_actions(page)

    page.goto(f"{live_server.url}/admin/factory/product/")
    page.wait_for_selector("[data-card].is-focused")  # the newest starts focused
    assert page.locator("[data-favorite-toggle]").count() == 0
    assert page.locator("#af-view-only").is_visible()
    for key in ("f", "5", "ArrowRight", "3"):  # the curation shortcuts
        page.keyboard.press(key)
    page.wait_for_timeout(800)
    assert not Product.objects.filter(is_favorite=True).exists()
    assert not Product.objects.exclude(rating=None).exists()
    assert not _spending_actions(page)
    _shoot(page, "roles-viewer-products.png")

    product = Product.objects.first()
    page.goto(f"{live_server.url}/admin/factory/product/{product.pk}/change/")
    assert not [t for t in _links_and_buttons(page) if SPENDING_TEXT.search(t)]
    assert page.locator("img[src*='/media/']").count() >= 1  # downloads still work

    response = page.goto(f"{live_server.url}/admin/factory/order/add/")
    assert response.status == 403
    response = page.goto(f"{live_server.url}/admin/queues/")
    assert response.status == 403

    draft.refresh_from_db()
    failed.refresh_from_db()
    assert draft.status == OrderStatus.DRAFT
    assert failed.status == OrderStatus.DONE_WITH_FAILURES
    assert Order.objects.count() == 8  # six product orders, the draft, the kites


@pytest.mark.django_db(transaction=True)
def test_a_locked_out_viewer_sees_when_to_try_again(page, live_server, viewer, settings):
    settings.AXES_FAILURE_LIMIT = 2
    for password in ("wrong", "wrong", "pw-viewer"):
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("input[name=username]", "viewer")
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
    until = page.locator("#lockout-until")
    assert until.is_visible()
    assert re.fullmatch(r"\d\d:\d\d \S+", until.inner_text().strip())
    _shoot(page, "roles-lockout.png")

"""Vary seed from a product page: the dialog asks how many, the draft opens."""
import re

import pytest

from factory.models import FactoryMachine, Order, OrderStatus, Product, SeedStrategy
from factory.ordering import plan_order

from tests.browser.test_retry_flow import (
    SCREENSHOTS, log_in, produced_order, wait_until_finished,
)
from tests.conftest import ROOT

# Looked at while working on the page; not one of the docs' pictures.
LOCAL = ROOT / "var" / "screenshots"


@pytest.mark.django_db(transaction=True)
def test_vary_seed_from_a_product_page_lands_on_a_draft_of_three(
    page, live_server, live_worker, lead, catalog
):
    order = produced_order(lead, "Harbour cranes", runs=2)
    wait_until_finished(order)
    product = Product.objects.get(item__order=order, item__index=1)
    log_in(page, live_server.url, "lead", "pw-lead")
    page.goto(f"{live_server.url}/admin/factory/product/{product.pk}/change/")

    page.get_by_role("link", name=re.compile("Vary seed")).click()
    count = page.locator("#modal-content input[name=count]")
    count.wait_for()
    assert count.input_value() == "4"
    count.fill("3")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "vary-seed.png"))
    assert not Order.objects.filter(status=OrderStatus.DRAFT).exists()
    page.locator("#modal-content button[type=submit]").click()

    draft = Order.objects.filter(status=OrderStatus.DRAFT)
    page.wait_for_url(re.compile(r".*/admin/factory/order/\d+/change/$"))
    assert page.url.endswith(f"/order/{draft.get().pk}/change/")
    assert page.get_by_text("is a new draft of 3 variations").count() == 1
    draft = draft.get()
    assert (draft.runs, draft.seed_strategy, draft.source_order) == (
        3, SeedStrategy.RANDOM, order)
    assert len({item.seed for item in plan_order(draft).items}) == 3



@pytest.mark.django_db(transaction=True)
def test_order_on_another_machine_from_an_order_page(
    page, live_server, live_worker, lead, catalog
):
    order = produced_order(lead, "Harbour lights", runs=1)
    wait_until_finished(order)
    flux = FactoryMachine.objects.get(slug="fal-flux-dev")
    log_in(page, live_server.url, "lead", "pw-lead")
    page.emulate_media(color_scheme="dark")
    page.goto(f"{live_server.url}/admin/factory/order/{order.pk}/change/")

    page.get_by_role("link", name=re.compile("On another machine")).click()
    select = page.locator("#modal-content select[name=machine]")
    select.wait_for()
    assert select.locator("optgroup[label='fal.ai'] option").count() >= 4
    select.select_option(str(flux.pk))
    LOCAL.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(LOCAL / "other-machine-dark.png"))
    page.locator("#modal-content button[type=submit]").click()

    page.wait_for_url(lambda url: not url.endswith(f"/order/{order.pk}/change/"))
    draft = Order.objects.get(status=OrderStatus.DRAFT)
    assert page.url.endswith(f"/order/{draft.pk}/change/")
    assert (draft.machine, draft.source_order) == (flux, order)
    assert draft.base_parameters == {"image_size": {"width": 96, "height": 64}}
    assert page.get_by_text("Every parameter carried over.").count() == 1

"""The "Retry failed items" action asks first: count and cost, then spends."""
import re
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from factory.models import FactoryMachine, ItemStatus, Order, OrderItem, OrderStatus
from factory.production.queues import SUBMIT_QUEUE, live_item_ids

pytestmark = pytest.mark.django_db

ORDERS = reverse("admin:factory_order_changelist")
ITEMS = reverse("admin:factory_orderitem_changelist")


@pytest.fixture
def order(catalog, lead) -> Order:
    """A finished demo order: one item completed, two failed at 0.0040 each."""
    machine = FactoryMachine.objects.get(slug="demo-image")
    order = Order.objects.create(
        machine=machine, prompt="a kite", created_by=lead, item_count=3,
        status=OrderStatus.DONE_WITH_FAILURES, estimated_cost=Decimal("0.012"),
    )
    for index, status in enumerate(
        [ItemStatus.COMPLETED, ItemStatus.FAILED, ItemStatus.FAILED]
    ):
        OrderItem.objects.create(
            order=order, machine=machine, index=index, status=status,
            parameters={"prompt": "a kite", "seed": index}, seed=index,
            cost=Decimal("0.004"), last_error="" if index == 0 else "GPU fire",
            completed_at=timezone.now(),
        )
    return order


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def choose(client: Client, url: str, action: str, ids: list[int]):
    return client.post(url, {"action": action,
                             ACTION_CHECKBOX_NAME: [str(pk) for pk in ids]})


def confirm_form(response) -> dict[str, list[str]]:
    """The hidden fields the confirmation page posts back, as a browser would."""
    form = re.search(r'<form method="post".*?</form>', response.content.decode(), re.S)
    fields: dict[str, list[str]] = {}
    for name, value in re.findall(
        r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.group(0)
    ):
        fields.setdefault(name, []).append(value)
    return fields


def test_retrying_orders_shows_count_and_cost_and_spends_nothing(
    order, lead, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        response = choose(client_for(lead), ORDERS, "retry_failed_orders", [order.pk])

    assert response.status_code == 200
    assert [t.name for t in response.templates][0] == "admin_ext/retry_failed.html"
    html = response.content.decode()
    assert '<dd id="retry-count">2</dd>' in html
    assert "0.0080 USD" in html
    assert "Retry 2 items" in html
    assert f'href="{ORDERS}"' in html
    assert queued == []
    assert order.items.count() == 3
    order.refresh_from_db()
    assert order.status == OrderStatus.DONE_WITH_FAILURES


def test_confirming_retries_the_failed_items_once(
    order, lead, redis_db, django_capture_on_commit_callbacks
):
    client = client_for(lead)
    page = choose(client, ORDERS, "retry_failed_orders", [order.pk])
    fields = confirm_form(page)
    assert fields == {"csrfmiddlewaretoken": fields["csrfmiddlewaretoken"],
                      ACTION_CHECKBOX_NAME: [str(order.pk)],
                      "action": ["retry_failed_orders"], "confirm": ["yes"]}

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(ORDERS, fields, follow=True)

    assert "2 failed items queued again." in response.content.decode()
    retries = OrderItem.objects.filter(retry_of__order=order)
    assert sorted(retries.values_list("index", flat=True)) == [3, 4]
    assert live_item_ids(SUBMIT_QUEUE) == set(retries.values_list("pk", flat=True))
    order.refresh_from_db()
    assert (order.status, order.item_count) == (OrderStatus.RUNNING, 5)


def test_retrying_selected_items_counts_only_the_failed_ones(
    order, lead, django_capture_on_commit_callbacks
):
    client = client_for(lead)
    ids = list(order.items.values_list("pk", flat=True))

    page = choose(client, ITEMS, "retry_failed", ids)

    assert '<dd id="retry-count">2</dd>' in page.content.decode()
    fields = confirm_form(page)
    assert sorted(fields[ACTION_CHECKBOX_NAME]) == sorted(str(pk) for pk in ids)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client.post(ITEMS, fields, follow=True)
    assert "2 failed items queued again." in response.content.decode()
    assert len(queued) == 1
    assert order.items.count() == 5


def test_a_selection_with_nothing_to_retry_says_so_without_a_page(order, lead):
    completed = order.items.get(index=0)

    response = client_for(lead).post(
        ITEMS, {"action": "retry_failed", ACTION_CHECKBOX_NAME: [str(completed.pk)]},
        follow=True,
    )

    assert "None of the selected items can be retried" in response.content.decode()
    assert order.items.count() == 3


def test_a_viewer_posting_the_confirm_field_spends_nothing(order, viewer):
    response = client_for(viewer).post(ORDERS, {
        "action": "retry_failed_orders", ACTION_CHECKBOX_NAME: [str(order.pk)],
        "confirm": "yes",
    }, follow=True)

    assert "queued again" not in response.content.decode()
    assert order.items.count() == 3

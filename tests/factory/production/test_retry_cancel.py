"""Retrying failed items as linked attempts; cancelling orders and items."""
import json
from decimal import Decimal

import django_rq
import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rq import SimpleWorker

from factory.models import ItemStatus, Order, OrderItem, OrderStatus, Product
from factory.production import limits
from factory.production.cancel import cancel_items, cancel_order
from factory.production.queues import DEFAULT_QUEUE, SUBMIT_QUEUE, live_item_ids
from factory.production.retry import RetryPlan, plan_retry, retry_failed_items
from factory.production.submit import start_submission
from factory.providers.demo import KEY_PREFIX, DemoBackend
from tests.factory.production.test_foreman import drive, place_demo, submitted_item

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def quick(settings):
    settings.DEMO_LATENCY_SECONDS = 0.2
    settings.PRODUCTION_PENDING_GRACE_SECONDS = 0


def fail(item: OrderItem, message: str = "demo: the GPU caught fire") -> None:
    OrderItem.objects.filter(pk=item.pk).update(
        status=ItemStatus.FAILED, last_error=message, attempts=5,
        completed_at=timezone.now(),
    )


def finished_order_with_one_failure(lead) -> tuple[Order, OrderItem]:
    order = place_demo(lead, runs=3)
    drive()
    failed = order.items.get(index=1)
    fail(failed)
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.DONE_WITH_FAILURES)
    return order, failed


def test_retry_creates_a_linked_attempt_at_the_end_of_the_order(
    catalog, redis_db, lead, quick
):
    order, failed = finished_order_with_one_failure(lead)

    [retry] = retry_failed_items(order.items.all())

    assert retry.retry_of == failed
    assert retry.index == 3
    assert retry.status == ItemStatus.PENDING
    assert (retry.parameters, retry.field_values, retry.seed) == (
        failed.parameters, failed.field_values, failed.seed)
    assert live_item_ids(SUBMIT_QUEUE) == {retry.pk}
    failed.refresh_from_db()
    assert (failed.status, failed.last_error, failed.attempts) == (
        ItemStatus.FAILED, "demo: the GPU caught fire", 5)
    order.refresh_from_db()
    assert (order.status, order.item_count, order.finished_at) == (
        OrderStatus.RUNNING, 4, None)

    drive()

    retry.refresh_from_db()
    assert (retry.status, retry.attempts) == (ItemStatus.COMPLETED, 1)
    assert Product.objects.filter(item=retry).count() == 1


def test_retrying_twice_queues_one_attempt(catalog, redis_db, lead, quick):
    order, failed = finished_order_with_one_failure(lead)

    assert len(retry_failed_items([failed.pk])) == 1
    assert retry_failed_items([failed.pk]) == []
    assert order.items.count() == 4


def test_retrying_a_failed_retry_links_to_the_latest_attempt(
    catalog, redis_db, lead, quick
):
    order, failed = finished_order_with_one_failure(lead)
    [retry] = retry_failed_items([failed.pk])
    fail(retry)

    [again] = retry_failed_items(order.items.all())

    assert (again.retry_of, again.index) == (retry, 4)


def test_cancelling_an_order_means_its_queued_items_never_start(
    catalog, redis_db, lead, quick, monkeypatch
):
    order = place_demo(lead, runs=3)
    calls = []
    monkeypatch.setattr(DemoBackend, "submit", lambda *a, **k: calls.append(a))

    assert cancel_order(order) is True
    django_rq.get_worker(SUBMIT_QUEUE, worker_class=SimpleWorker).work(burst=True)

    assert calls == []
    assert order.status == OrderStatus.CANCELLED
    assert set(order.items.values_list("status", flat=True)) == {ItemStatus.CANCELLED}
    assert cancel_order(order) is False


def test_a_cancelled_item_leaves_its_waiting_line_for_the_next_one(
    catalog, redis_db, lead, quick
):
    from factory.models import Provider

    Provider.objects.filter(slug="demo").update(concurrency_limit=1)
    first, second, third = place_demo(lead, runs=3).items.order_by("index")
    redis_db.flushdb()
    for item in (first, second, third):
        start_submission(item.pk)
    assert limits.waiting_item_ids() == {second.pk, third.pk}

    cancel_items([second.pk])
    assert limits.waiting_item_ids() == {third.pk}

    cancel_items([first.pk])  # the running one gives its slot to the third
    assert limits.waiting_item_ids() == set()
    assert live_item_ids(SUBMIT_QUEUE) == {third.pk}


def test_cancelling_a_running_item_cancels_it_at_the_provider(
    catalog, redis_db, lead
):
    order = place_demo(lead, runs=2)
    item = submitted_item(order)
    assert limits.acquire(item)

    assert cancel_items([item.pk]) == 1
    django_rq.get_worker(DEFAULT_QUEUE, worker_class=SimpleWorker).work(burst=True)

    item.refresh_from_db()
    assert item.status == ItemStatus.CANCELLED
    record = json.loads(redis_db.get(KEY_PREFIX + item.request_id))
    assert record["cancelled"] is True
    assert ("provider:demo", 0, 8) in limits.usage()
    assert order.items.get(index=1).status == ItemStatus.PENDING


def test_a_cancel_during_the_submit_call_keeps_the_request_and_stops_it(
    catalog, redis_db, lead, monkeypatch
):
    order = place_demo(lead, runs=1)
    item = order.items.get()
    real_submit = DemoBackend.submit

    def submit_then_cancelled(self, machine, params, *, key=None):
        request_id = real_submit(self, machine, params, key=key)
        cancel_order(order)  # an operator clicks Cancel meanwhile
        return request_id

    monkeypatch.setattr(DemoBackend, "submit", submit_then_cancelled)
    start_submission(item.pk)
    django_rq.get_worker(DEFAULT_QUEUE, worker_class=SimpleWorker).work(burst=True)

    item.refresh_from_db()
    assert item.status == ItemStatus.CANCELLED
    assert item.request_id.startswith("demo-")
    record = json.loads(redis_db.get(KEY_PREFIX + item.request_id))
    assert record["cancelled"] is True


def _post_action(user, model: str, action: str, ids: list[int], **extra: str):
    client = Client()
    client.force_login(user)
    return client.post(
        reverse(f"admin:factory_{model}_changelist"),
        {"action": action, ACTION_CHECKBOX_NAME: [str(pk) for pk in ids], **extra},
        follow=True,
    )


def test_admin_retries_failed_items_of_selected_orders_once_confirmed(
    catalog, redis_db, lead, quick
):
    order, failed = finished_order_with_one_failure(lead)

    asked = _post_action(lead, "order", "retry_failed_orders", [order.pk])
    assert "Retry 1 item" in asked.content.decode()
    assert not OrderItem.objects.filter(retry_of=failed).exists()
    response = _post_action(lead, "order", "retry_failed_orders", [order.pk],
                            confirm="yes")

    assert "1 failed item queued again." in response.content.decode()
    assert OrderItem.objects.get(retry_of=failed).index == 3


def test_retry_plan_counts_and_prices_what_a_retry_would_queue(
    catalog, redis_db, lead, quick
):
    order, failed = finished_order_with_one_failure(lead)
    OrderItem.objects.filter(pk=failed.pk).update(cost=Decimal("0.25"))
    items = order.items.all()

    assert plan_retry(items) == RetryPlan(count=1, costs={"USD": Decimal("0.25")})
    retry_failed_items(items)
    assert plan_retry(items) == RetryPlan()


def test_admin_cancels_selected_orders(catalog, redis_db, lead):
    order = place_demo(lead, runs=2)

    asked = _post_action(lead, "order", "cancel_orders", [order.pk])
    assert "Cancel 1 order?" in asked.content.decode()
    order.refresh_from_db()
    assert order.status == OrderStatus.PLACED

    response = _post_action(lead, "order", "cancel_orders", [order.pk], confirm="yes")

    assert "1 order cancelled." in response.content.decode()
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED


def test_viewers_are_offered_no_retry_or_cancel(catalog, redis_db, lead, viewer):
    order = place_demo(lead, runs=1)

    response = _post_action(viewer, "order", "cancel_orders", [order.pk])

    order.refresh_from_db()
    assert order.status == OrderStatus.PLACED
    html = response.content.decode()
    assert "retry_failed_orders" not in html
    assert "cancel_orders" not in html

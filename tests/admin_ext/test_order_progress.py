"""Order page, orders list and dashboard update themselves by polling."""
import re

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from factory.models import Order, OrderStatus, Product

from tests.progress_data import FIRE, build_order

pytestmark = pytest.mark.django_db

ORDERS = reverse("admin:factory_order_changelist")
LIST_PROGRESS = reverse("admin:factory_order_progress_list")
DASHBOARD_PROGRESS = reverse("admin:factory_order_progress_dashboard")
POLL_QUERIES = 10
TRIGGER = "hx-trigger=\"every 2s [document.visibilityState==='visible']\""


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def progress_url(order: Order) -> str:
    return reverse("admin:factory_order_progress", args=[order.pk])


def test_running_order_panel_polls_and_shows_its_work(catalog, viewer):
    order = build_order(completed=4, failed=2, in_flight=1, pending=3, products=4)
    response = client_for(viewer).get(progress_url(order))
    html = response.content.decode()
    assert response.status_code == 200
    assert TRIGGER in html
    assert 'hx-swap="outerHTML" hx-select="#order-progress"' in html
    assert f'hx-get="{progress_url(order)}"' in html
    assert "6 of 10 items finished" in html
    assert "60 %" in html
    assert f"{FIRE}</span>" in html and "× 2" in html
    assert html.count('class="af-thumb"') == 4
    assert html.count('class="af-tile-waiting"') == 4
    assert f"?item__order__id__exact={order.pk}" in html
    assert "See all 4 products" in html
    assert f"?order__id__exact={order.pk}" in html
    assert "Open all 10 items" in html
    assert "a lighthouse, take 9" in html and "steps=22" in html


def test_finished_order_answers_without_a_trigger(catalog, viewer):
    order = build_order(completed=1, status=OrderStatus.DONE, products=1)
    html = client_for(viewer).get(progress_url(order)).content.decode()
    assert "hx-trigger" not in html
    assert "hx-get" not in html
    assert "100 %" in html
    assert "1 of 1 item finished" in html
    assert "See the product" in html and "Open the item" in html


def test_progress_needs_view_permission_and_a_placed_order(catalog, viewer):
    order = build_order(completed=1)
    stranger = User.objects.create_user("stranger", password="x", is_staff=True)
    assert client_for(stranger).get(progress_url(order)).status_code == 403
    assert Client().get(progress_url(order)).status_code == 302
    client = client_for(viewer)
    unknown = reverse("admin:factory_order_progress", args=[order.pk + 100])
    assert client.get(unknown).status_code == 404
    draft = build_order(status=OrderStatus.DRAFT)
    assert client.get(progress_url(draft)).status_code == 404


def test_each_poll_costs_the_same_queries_for_10_or_10000_items(
    catalog, viewer, django_assert_num_queries
):
    small = build_order(completed=5, failed=2, in_flight=1, pending=2, products=3)
    large = build_order(
        completed=6000, failed=1500, in_flight=500, pending=2000, products=300
    )
    client = client_for(viewer)
    with CaptureQueriesContext(connection) as first:
        assert client.get(progress_url(small)).status_code == 200
    # Session, user, two permission reads; the order; tally, failures,
    # product count, products, items.
    assert len(first) == POLL_QUERIES
    with django_assert_num_queries(POLL_QUERIES):
        html = client.get(progress_url(large)).content.decode()
    assert "7500 of 10000 items finished" in html
    assert html.count('class="af-thumb"') == 24
    assert html.count("<tr>") == 51  # header and the first 50 items


def test_change_page_includes_the_panel_for_placed_orders_only(catalog, lead):
    client = client_for(lead)
    order = build_order(completed=1, in_flight=1)
    html = client.get(reverse("admin:factory_order_change", args=[order.pk])).content.decode()
    assert 'id="order-progress"' in html and TRIGGER in html
    assert "admin_ext/progress.css" in html
    draft = build_order(status=OrderStatus.DRAFT)
    html = client.get(reverse("admin:factory_order_change", args=[draft.pk])).content.decode()
    assert 'id="order-progress"' not in html


def test_products_and_items_changelists_take_the_order_filter(catalog, viewer):
    order = build_order(completed=3, products=3)
    build_order(completed=2, products=2)
    client = client_for(viewer)
    products = client.get(
        reverse("admin:factory_product_changelist"),
        {"item__order__id__exact": order.pk},
    )
    assert products.status_code == 200
    assert sorted(p.pk for p in products.context["cl"].result_list) == sorted(
        Product.objects.filter(item__order=order).values_list("pk", flat=True)
    )
    items = client.get(
        reverse("admin:factory_orderitem_changelist"), {"order__id__exact": order.pk}
    )
    assert items.status_code == 200
    assert {i.order_id for i in items.context["cl"].result_list} == {order.pk}


def test_orders_list_reads_progress_for_its_page_only(
    catalog, viewer, django_assert_max_num_queries
):
    running = build_order(title="Running", completed=97, in_flight=20)
    done = build_order(title="Done", completed=5, status=OrderStatus.DONE)
    client = client_for(viewer)
    with django_assert_max_num_queries(14):
        html = client.get(ORDERS).content.decode()
    assert "97 / 117" in html and "5 / 5" in html
    assert f'id="order-progress-{running.pk}"' in html
    poller = re.search(r'<div id="orders-progress-poller"[^>]*>', html).group(0)
    assert f"?ids={running.pk}\"" in poller and TRIGGER in poller
    assert str(done.pk) not in poller.split("ids=")[1].split('"')[0].split(",")


def test_list_poller_swaps_cells_and_stops_when_all_are_closed(
    catalog, viewer, django_assert_num_queries
):
    running = build_order(completed=1, in_flight=1)
    done = build_order(completed=2, status=OrderStatus.DONE)
    client = client_for(viewer)
    # Session, user, two permission reads; the orders, their tallies.
    with django_assert_num_queries(6):
        html = client.get(LIST_PROGRESS, {"ids": f"{running.pk},{done.pk},x"}).content.decode()
    assert f'<div id="order-progress-{running.pk}" hx-swap-oob="true">' in html
    assert f'<div id="order-progress-{done.pk}" hx-swap-oob="true">' in html
    assert f"action-select[value='{done.pk}']" in html
    assert f"?ids={running.pk}\"" in html and TRIGGER in html
    Order.objects.filter(pk=running.pk).update(status=OrderStatus.DONE)
    html = client.get(LIST_PROGRESS, {"ids": f"{running.pk},{done.pk}"}).content.decode()
    assert "hx-trigger" not in html
    assert "Done" in html


def test_list_poller_needs_view_permission(catalog):
    stranger = User.objects.create_user("stranger", password="x", is_staff=True)
    assert client_for(stranger).get(LIST_PROGRESS, {"ids": "1"}).status_code == 403


def test_dashboard_lists_running_orders_first_and_polls_while_they_run(
    catalog, lead
):
    running = build_order(title="Old but running", in_flight=3, pending=2)
    for n in range(8):
        build_order(title=f"Newer {n}", completed=1, status=OrderStatus.DONE)
    client = client_for(lead)
    html = client.get(reverse("admin:index")).content.decode()
    orders = re.findall(r'href="/admin/factory/order/(\d+)/change/"', html)
    assert orders[0] == str(running.pk)
    assert len(orders) == 6
    assert TRIGGER in html and DASHBOARD_PROGRESS in html
    loads = re.search(r'<ul class="flex flex-col gap-2" id="provider-loads">.*?</ul>',
                      html, re.S).group(0)
    assert "Demo (offline)" in loads and "3 / " in loads and "2 waiting" in loads


def test_dashboard_poll_stops_once_nothing_runs(catalog, lead):
    order = build_order(in_flight=1)
    client = client_for(lead)
    assert TRIGGER in client.get(DASHBOARD_PROGRESS).content.decode()
    order.items.update(status="completed")
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.DONE)
    html = client.get(DASHBOARD_PROGRESS).content.decode()
    assert 'id="dashboard-live"' in html
    assert "hx-trigger" not in html


def test_dashboard_poll_costs_the_same_queries_at_any_size(
    catalog, lead, django_assert_num_queries
):
    build_order(completed=3, in_flight=2, products=2)
    client = client_for(lead)
    client.get(DASHBOARD_PROGRESS)
    with CaptureQueriesContext(connection) as small:
        client.get(DASHBOARD_PROGRESS)
    for _ in range(3):
        build_order(completed=3000, failed=20, in_flight=40, pending=500, products=50)
    with django_assert_num_queries(len(small)):
        response = client.get(DASHBOARD_PROGRESS)
    assert response.status_code == 200


def test_dashboard_figures_are_kept_a_few_seconds_per_process(
    catalog, lead, settings, django_assert_num_queries
):
    from admin_ext import dashboard

    settings.DASHBOARD_CACHE_SECONDS = 60
    dashboard._kept.clear()
    build_order(title="First", in_flight=1)
    client = client_for(lead)
    client.get(DASHBOARD_PROGRESS)  # session and permissions warmed, figures kept
    build_order(title="Second", in_flight=1)
    with CaptureQueriesContext(connection) as kept:
        html = client.get(DASHBOARD_PROGRESS).content.decode()
    assert "Second" not in html and "First" in html
    dashboard._kept["live"] = (0.0, dashboard._kept["live"][1])  # the time is up
    with CaptureQueriesContext(connection) as fresh:
        html = client.get(DASHBOARD_PROGRESS).content.decode()
    assert "Second" in html
    assert len(fresh) > len(kept)
    dashboard._kept.clear()

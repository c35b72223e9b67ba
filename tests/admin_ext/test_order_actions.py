"""Cancel, vary seed, other machine: each asks on GET and acts on POST."""
import re

import django_rq
import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client
from django.urls import reverse

from factory.models import (
    EventKind, FactoryMachine, ItemEvent, ItemStatus, Order, OrderItem, OrderStatus, Product, SeedStrategy,
)
from factory.ordering import plan_order
from factory.production.queues import DEFAULT_QUEUE

pytestmark = pytest.mark.django_db

ORDERS = reverse("admin:factory_order_changelist")
ITEMS = reverse("admin:factory_orderitem_changelist")
PRODUCTS = reverse("admin:factory_product_changelist")
DIALOG = {"_form_submitted": "True"}
HTMX = {"HTTP_HX_REQUEST": "true"}
# One item per state: four stop, one collecting finishes, three are done.
STATES = [
    ItemStatus.PENDING, ItemStatus.SUBMITTING, ItemStatus.SUBMITTED,
    ItemStatus.SUBMIT_UNKNOWN, ItemStatus.COLLECTING, ItemStatus.COMPLETED,
    ItemStatus.FAILED, ItemStatus.CANCELLED,
]


@pytest.fixture
def running(catalog, lead, redis_db) -> Order:
    machine = FactoryMachine.objects.get(slug="demo-image")
    order = Order.objects.create(
        title="Kites", machine=machine, prompt="a kite", created_by=lead,
        status=OrderStatus.RUNNING, item_count=len(STATES),
    )
    OrderItem.objects.bulk_create(
        OrderItem(order=order, machine=machine, index=index, status=status,
                  parameters={"prompt": "a kite"},
                  request_id="req-%d" % index if index else "")
        for index, status in enumerate(STATES)
    )
    return order


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def statuses(order: Order) -> list[str]:
    return list(order.items.order_by("index").values_list("status", flat=True))


def cancel_url(order: Order) -> str:
    return reverse("admin:factory_order_cancel_detail", args=[order.pk])


def test_cancel_dialog_counts_what_stops_and_changes_nothing(running, operator):
    response = client_for(operator).get(cancel_url(running), **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert '<dd id="cancel-stopping">4</dd>' in html
    assert '<dd id="cancel-finishing">1</dd>' in html
    assert "Stop order" in html
    assert statuses(running) == STATES
    running.refresh_from_db()
    assert running.status == OrderStatus.RUNNING


def test_cancel_dialog_post_cancels_and_redirects_to_the_order(
    running, operator, django_capture_on_commit_callbacks
):
    client = client_for(operator)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(cancel_url(running), DIALOG, **HTMX)

    change = reverse("admin:factory_order_change", args=[running.pk])
    assert response["HX-Redirect"] == change
    assert statuses(running) == [ItemStatus.CANCELLED] * 4 + STATES[4:]
    running.refresh_from_db()
    assert running.status == OrderStatus.CANCELLED
    # The two with a request id or an unknown submission are cancelled remotely.
    queued = {job.args[0] for job in django_rq.get_queue(DEFAULT_QUEUE).jobs}
    assert queued == set(
        running.items.filter(index__in=[2, 3]).values_list("pk", flat=True))
    page = client.get(change).content.decode()
    assert "Kites cancelled: 4 items stopped. 1 collecting item will finish." in page


def test_cancelling_a_finished_order_says_so(running, operator):
    Order.objects.filter(pk=running.pk).update(status=OrderStatus.DONE)
    client = client_for(operator)

    assert "nothing left to cancel" in client.get(cancel_url(running)).content.decode()
    response = client.post(cancel_url(running), DIALOG, follow=True)

    assert "Kites had already finished; nothing was cancelled." in (
        response.content.decode())
    assert statuses(running) == STATES


def test_viewer_cannot_cancel_an_order(running, viewer):
    client = client_for(viewer)
    assert client.get(cancel_url(running)).status_code == 403
    assert client.post(cancel_url(running), DIALOG).status_code == 403
    page = client.get(reverse("admin:factory_order_change", args=[running.pk]))
    assert cancel_url(running) not in page.content.decode()
    assert statuses(running) == STATES


def choose(client: Client, url: str, action: str, ids: list[int], **extra):
    return client.post(url, {"action": action,
                             ACTION_CHECKBOX_NAME: [str(pk) for pk in ids], **extra},
                       follow=True)


def test_cancel_orders_from_the_list_asks_first(running, operator):
    client = client_for(operator)
    done = Order.objects.create(machine=running.machine, status=OrderStatus.DONE)

    page = choose(client, ORDERS, "cancel_orders", [running.pk, done.pk])

    html = page.content.decode()
    assert [t.name for t in page.templates][0] == "admin_ext/orders/cancel_confirm.html"
    assert '<dd id="cancel-orders">1</dd>' in html
    assert '<dd id="cancel-stopping">4</dd>' in html
    assert "Cancel 1 order" in html
    assert statuses(running) == STATES

    response = choose(client, ORDERS, "cancel_orders", [running.pk, done.pk],
                      confirm="yes")

    assert "1 order cancelled." in response.content.decode()
    running.refresh_from_db()
    done.refresh_from_db()
    assert (running.status, done.status) == (OrderStatus.CANCELLED, OrderStatus.DONE)
    assert statuses(running) == [ItemStatus.CANCELLED] * 4 + STATES[4:]


def test_viewer_cannot_cancel_orders_from_the_list(running, viewer):
    response = choose(client_for(viewer), ORDERS, "cancel_orders", [running.pk],
                      confirm="yes")
    assert "order cancelled" not in response.content.decode()
    assert response.status_code == 403
    assert statuses(running) == STATES


def test_cancel_chosen_items_stops_only_unfinished_ones(running, operator):
    client = client_for(operator)
    chosen = list(running.items.filter(index__in=[0, 2, 4, 5]).values_list(
        "pk", flat=True))

    page = choose(client, ITEMS, "cancel_chosen_items", chosen)

    html = page.content.decode()
    assert "Cancel 2 items?" in html
    assert '<dd id="cancel-finishing">1</dd>' in html
    assert statuses(running) == STATES

    response = choose(client, ITEMS, "cancel_chosen_items", chosen, confirm="yes")

    assert "2 items stopped." in response.content.decode()
    expected = list(STATES)
    expected[0] = expected[2] = ItemStatus.CANCELLED
    assert statuses(running) == expected


def test_cancel_chosen_items_with_nothing_to_stop_says_so(running, operator):
    done = list(running.items.filter(index__gte=4).values_list("pk", flat=True))
    response = choose(client_for(operator), ITEMS, "cancel_chosen_items", done)
    assert "Nothing to cancel" in response.content.decode()


def test_viewer_cannot_cancel_items(running, viewer):
    ids = list(running.items.values_list("pk", flat=True))
    response = choose(client_for(viewer), ITEMS, "cancel_chosen_items", ids,
                      confirm="yes")
    assert "stopped" not in response.content.decode()
    assert response.status_code == 403
    assert statuses(running) == STATES


def product_of(order: Order, index: int = 1) -> Product:
    return Product.objects.select_related("item").get(item__order=order,
                                                      item__index=index)


def vary_url(product: Product) -> str:
    return reverse("admin:factory_product_vary_seed_detail", args=[product.pk])


def test_vary_seed_dialog_asks_how_many_and_writes_nothing(demo_order, operator):
    product = product_of(demo_order)
    response = client_for(operator).get(vary_url(product), **HTMX)

    html = response.content.decode()
    assert re.search(r'<input type="number" name="count" value="4"[^>]*min="1"'
                     r'[^>]*max="100"', html)
    assert "Create draft" in html
    assert Order.objects.count() == 1


def test_vary_seed_posts_one_draft_and_lands_on_it(demo_order, operator):
    product = product_of(demo_order)
    client = client_for(operator)

    response = client.post(vary_url(product), {**DIALOG, "count": "3"}, **HTMX)

    draft = Order.objects.get(status=OrderStatus.DRAFT)
    assert response["HX-Redirect"] == reverse(
        "admin:factory_order_change", args=[draft.pk])
    assert (draft.runs, draft.seed_strategy, draft.source_order) == (
        3, SeedStrategy.RANDOM, demo_order)
    assert len({item.seed for item in plan_order(draft).items}) == 3
    page = client.get(response["HX-Redirect"]).content.decode()
    assert "is a new draft of 3 variations; place it when ready." in page


def test_vary_seed_refuses_a_count_over_100(demo_order, operator):
    response = client_for(operator).post(
        vary_url(product_of(demo_order)), {**DIALOG, "count": "101"}, **HTMX)
    assert "less than or equal to 100" in response.content.decode()
    assert Order.objects.count() == 1


def test_viewer_cannot_vary_seed(demo_order, viewer):
    product = product_of(demo_order)
    client = client_for(viewer)
    assert client.post(vary_url(product), {**DIALOG, "count": "3"}).status_code == 403
    page = client.get(reverse("admin:factory_product_change", args=[product.pk]))
    assert vary_url(product) not in page.content.decode()
    assert Order.objects.count() == 1


def test_vary_seed_on_selected_products_writes_one_draft_each(demo_order, operator):
    client = client_for(operator)
    ids = list(Product.objects.values_list("pk", flat=True))

    page = choose(client, PRODUCTS, "vary_seed_selected", ids)

    assert "Create 2 drafts" in page.content.decode()
    assert Order.objects.count() == 1
    response = choose(client, PRODUCTS, "vary_seed_selected", ids, confirm="yes",
                      count="2")

    drafts = Order.objects.filter(status=OrderStatus.DRAFT)
    assert sorted(drafts.values_list("runs", flat=True)) == [2, 2]
    assert response.redirect_chain[-1][0] == ORDERS + "?status__exact=draft"
    assert "2 drafts of 2 variations each written" in response.content.decode()


def machine_url(name: str, obj) -> str:
    return reverse(f"admin:factory_{name}_other_machine_detail", args=[obj.pk])


def test_machine_dialog_groups_active_machines_and_marks_missing_keys(
    demo_order, operator, settings
):
    settings.FAL_KEY = ""
    FactoryMachine.objects.filter(slug="replicate-sdxl").update(is_active=False)
    response = client_for(operator).get(machine_url("order", demo_order), **HTMX)

    html = response.content.decode()
    assert '<optgroup label="fal.ai">' in html
    assert re.search(r"FLUX.1 \[dev\][^<]* · needs FAL_KEY", html)
    assert "Stable Audio" not in html  # another kind of output
    assert "SDXL (replicate)" not in html and "Stable Diffusion XL</option>" not in html
    assert ">Demo image" not in html  # the order's own machine
    assert Order.objects.count() == 1


def test_order_on_another_machine_lists_what_was_dropped(demo_order, operator):
    Order.objects.filter(pk=demo_order.pk).update(
        base_parameters={"width": 192, "height": 128, "negative_prompt": "fog"})
    flux = FactoryMachine.objects.get(slug="fal-flux-dev")
    client = client_for(operator)

    response = client.post(machine_url("order", demo_order),
                           {**DIALOG, "machine": str(flux.pk)}, follow=True)

    draft = Order.objects.get(status=OrderStatus.DRAFT)
    assert draft.machine == flux
    assert draft.base_parameters == {"image_size": {"width": 192, "height": 128}}
    assert response.redirect_chain[-1][0] == reverse(
        "admin:factory_order_change", args=[draft.pk])
    assert ("Dropped, as it cannot take them: negative_prompt."
            in response.content.decode())


def test_product_on_another_machine_from_its_page(demo_order, operator):
    product = product_of(demo_order)
    flux = FactoryMachine.objects.get(slug="fal-flux-dev")
    response = client_for(operator).post(
        machine_url("product", product), {**DIALOG, "machine": str(flux.pk)}, **HTMX)

    draft = Order.objects.get(status=OrderStatus.DRAFT)
    assert response["HX-Redirect"].endswith(f"/{draft.pk}/change/")
    assert draft.seed == product.seed
    assert plan_order(draft).items[0].parameters["image_size"] == {
        "width": 192, "height": 128}


def test_viewer_cannot_order_on_another_machine(demo_order, viewer):
    flux = FactoryMachine.objects.get(slug="fal-flux-dev")
    response = client_for(viewer).post(machine_url("order", demo_order),
                                       {**DIALOG, "machine": str(flux.pk)})
    assert response.status_code == 403
    assert Order.objects.count() == 1


def test_machine_dialog_queries_are_bounded(demo_order, operator,
                                            django_assert_max_num_queries):
    client = client_for(operator)
    with django_assert_max_num_queries(12):
        client.get(machine_url("order", demo_order), **HTMX)


def test_machine_dialog_without_a_choice_asks_again(demo_order, operator):
    response = client_for(operator).post(machine_url("order", demo_order), DIALOG,
                                         **HTMX)
    assert "This field is required." in response.content.decode()
    assert Order.objects.count() == 1


def test_an_items_page_shows_its_history_to_whoever_may_see_the_item(
    running, viewer
):
    item = running.items.get(status=ItemStatus.COMPLETED)
    ItemEvent.objects.record(item.pk, EventKind.RETRY,
                             "attempt 1: demo submit: HTTP 503; retry in 5s")
    ItemEvent.objects.record(item.pk, EventKind.RESENT, "sent again <b>now</b>")
    client = Client()
    client.force_login(viewer)

    page = client.get(reverse("admin:factory_orderitem_change", args=[item.pk]))

    assert page.status_code == 200
    html = page.content.decode()
    assert "History" in html
    assert "attempt 1: demo submit: HTTP 503; retry in 5s" in html
    assert "sent again &lt;b&gt;now&lt;/b&gt;" in html

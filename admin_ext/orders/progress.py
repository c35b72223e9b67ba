"""Live progress endpoints: htmx polls these partials every two seconds.

Each answer is the fragment to swap. A fragment without ``hx-trigger``
stops its poller, which is how a finished order stops costing requests.
"""
from functools import partial
from typing import Any

from django.contrib.admin import ModelAdmin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.http import urlencode

from admin_ext.dashboard import recent_dashboard_context
from factory.models import Order, OrderStatus
from factory.production.watching import watch_order

# A page of the orders list never holds more; longer lists are cut.
MAX_LIST_IDS = 500


def progress_urls(model_admin: ModelAdmin) -> list[URLPattern]:
    """The endpoints, to prepend to the orders admin's own URLs."""
    wrap = model_admin.admin_site.admin_view
    return [
        path("progress/list/", wrap(partial(list_progress, model_admin)),
             name="factory_order_progress_list"),
        path("progress/dashboard/", wrap(partial(dashboard_progress, model_admin)),
             name="factory_order_progress_dashboard"),
        path("<int:object_id>/progress/", wrap(partial(order_progress, model_admin)),
             name="factory_order_progress"),
    ]


def _check_view(model_admin: ModelAdmin, request: HttpRequest, obj=None) -> None:
    if not model_admin.has_view_permission(request, obj):
        raise PermissionDenied


def panel_context(order: Order) -> dict[str, Any]:
    """What the order page's live panel shows, read in a bounded number of queries."""
    snapshot = watch_order(order)
    by_order = urlencode({"order__id__exact": order.pk})
    items_url = reverse("admin:factory_orderitem_changelist")
    return {
        "snapshot": snapshot,
        "tally": snapshot.tally,
        "order": order,
        "poll_url": reverse("admin:factory_order_progress", args=[order.pk]),
        "items_url": f"{items_url}?{by_order}",
        "failed_items_url": f"{items_url}?{by_order}&status__exact=failed",
        "products_url": reverse("admin:factory_product_changelist") + "?"
        + urlencode({"item__order__id__exact": order.pk}),
        # Swept orders get the comparison grid; the first items tell.
        "compare_url": reverse("admin:factory_order_compare_detail", args=[order.pk])
        if any(item.field_values for item in snapshot.items) else "",
    }


def render_panel(order: Order) -> str:
    """The panel as first rendered inside the order's change page."""
    return render_to_string(
        "admin_ext/orders/_partials/progress.html", panel_context(order)
    )


def order_progress(
    model_admin: ModelAdmin, request: HttpRequest, object_id: int
) -> HttpResponse:
    """One order's live panel; drafts have none."""
    _check_view(model_admin, request)
    order = get_object_or_404(
        Order.objects.select_related("machine"), pk=object_id
    )
    _check_view(model_admin, request, order)
    if order.status == OrderStatus.DRAFT:
        raise Http404("A draft order has no progress yet.")
    return TemplateResponse(
        request, "admin_ext/orders/_partials/progress.html", panel_context(order)
    )


def _ids(request: HttpRequest) -> list[int]:
    raw = request.GET.get("ids", "")
    ids = {int(part) for part in raw.split(",") if part.strip().isdigit()}
    return sorted(ids)[:MAX_LIST_IDS]


def list_progress(model_admin: ModelAdmin, request: HttpRequest) -> HttpResponse:
    """Fresh bars and states for the orders on one page of the list.

    The poller comes back holding only the orders still open, and with no
    trigger at all once none is.
    """
    _check_view(model_admin, request)
    orders = list(Order.objects.filter(pk__in=_ids(request)).with_tallies())
    return TemplateResponse(
        request, "admin_ext/orders/_partials/list_progress.html",
        {"orders": orders},
    )


def dashboard_progress(model_admin: ModelAdmin, request: HttpRequest) -> HttpResponse:
    """The dashboard's numbers, products and orders, while anything runs."""
    _check_view(model_admin, request)
    return TemplateResponse(
        request, "admin_ext/dashboard/_partials/live.html",
        {**recent_dashboard_context(), "can_watch": True},
    )

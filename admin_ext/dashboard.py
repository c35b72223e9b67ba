"""The admin index: production at a glance, live while anything runs."""
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Exists, OuterRef, Sum
from django.http import HttpRequest
from django.utils import timezone

from admin_ext.paging import EstimatedCountPaginator
from factory.models import ItemStatus, Order, OrderItem, Product
from factory.production.watching import (
    CLOSED, ProviderLoad, load_by_provider, orders_to_watch,
)

RECENT_PRODUCTS = 12
RECENT_ORDERS = 6


def _kpis(loads: list[ProviderLoad]) -> list[dict[str, Any]]:
    since = timezone.now() - timedelta(days=30)
    # A failure that a later attempt replaced is no longer a failure.
    # NOT EXISTS probes the retry index per failed item; the outer join
    # this replaces hashed every item of every order.
    replaced = OrderItem.objects.filter(retry_of=OuterRef("pk"))
    failed = EstimatedCountPaginator(OrderItem.objects.filter(
        ~Exists(replaced), status=ItemStatus.FAILED
    ), per_page=1).count_text()
    committed = Order.objects.filter(placed_at__gte=since).aggregate(
        total=Sum("estimated_cost")
    )["total"] or Decimal(0)
    pending = sum(load.pending for load in loads)
    return [
        {"title": "Items in flight", "value": sum(load.in_flight for load in loads),
         "icon": "bolt", "note": f"{pending} waiting" if pending else ""},
        {"title": "Failed items", "value": failed, "icon": "error", "note": ""},
        {"title": "Products", "value": EstimatedCountPaginator(
            Product.objects.all(), per_page=1).count_text(),
         "icon": "photo_library", "note": ""},
        {"title": "Committed, 30 days", "value": f"${committed:.2f}",
         "icon": "payments", "note": ""},
    ]


def dashboard_context() -> dict[str, Any]:
    """Numbers, providers' load, newest products and the orders moving.

    Seven queries whatever the size of the tables' contents.
    """
    loads = load_by_provider()
    orders = orders_to_watch(RECENT_ORDERS)
    running = any(load.in_flight or load.pending for load in loads) or any(
        order.status not in CLOSED for order in orders
    )
    return {
        "kpis": _kpis(loads),
        "provider_loads": loads,
        "recent_products": list(Product.objects.for_grid()[:RECENT_PRODUCTS]),
        "recent_orders": orders,
        "live": running,
    }


def dashboard_callback(request: HttpRequest, context: dict[str, Any]) -> dict[str, Any]:
    """Fill the index template; its live part polls while anything runs.

    Someone without a role sees how to get one instead of the numbers.
    """
    context["can_watch"] = request.user.has_perm("factory.view_order")
    if context["can_watch"]:
        context.update(dashboard_context())
    return context

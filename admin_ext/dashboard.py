"""The admin index: production at a glance."""
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, Sum
from django.http import HttpRequest
from django.utils import timezone

from factory.models import FINISHED, ItemStatus, Order, OrderItem, OrderStatus, Product

RECENT_PRODUCTS = 12
RECENT_ORDERS = 6


def _kpis() -> list[dict[str, Any]]:
    since = timezone.now() - timedelta(days=30)
    items = OrderItem.objects.aggregate(
        in_flight=Count("id", filter=~Q(status__in=FINISHED)),
        failed=Count("id", filter=Q(status=ItemStatus.FAILED)),
    )
    committed = Order.objects.filter(placed_at__gte=since).aggregate(
        total=Sum("estimated_cost")
    )["total"] or Decimal(0)
    return [
        {"title": "Items in flight", "value": items["in_flight"], "icon": "bolt"},
        {"title": "Failed items", "value": items["failed"], "icon": "error"},
        {"title": "Products", "value": Product.objects.count(), "icon": "photo_library"},
        {"title": "Committed, 30 days", "value": f"${committed:.2f}", "icon": "payments"},
    ]


def dashboard_callback(request: HttpRequest, context: dict[str, Any]) -> dict[str, Any]:
    """Numbers, the newest products and the orders still moving."""
    orders = (
        Order.objects.exclude(status=OrderStatus.DRAFT)
        .select_related("machine")
        .annotate(
            n_done=Count("items", filter=Q(items__status=ItemStatus.COMPLETED)),
            n_failed=Count("items", filter=Q(items__status=ItemStatus.FAILED)),
        )[:RECENT_ORDERS]
    )
    context.update(
        kpis=_kpis(),
        recent_products=Product.objects.for_grid()[:RECENT_PRODUCTS],
        recent_orders=orders,
    )
    return context

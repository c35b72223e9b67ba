"""The admin index: production at a glance, live while anything runs.

Its figures are the same for everyone who may see them, and every
signed-in user opens the dashboard first and polls it while anything
runs: each web process keeps them for ``DASHBOARD_CACHE_SECONDS`` (a few
seconds; 0 reads them on every request), so fifty people watching cost
one set of reads a few seconds per process instead of fifty.
"""
import json
import threading
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Exists, F, OuterRef
from django.http import HttpRequest
from django.utils import timezone

from admin_ext.paging import EstimatedCountPaginator
from factory.models import ItemStatus, OrderItem, Product, Project, SpendEntry
from factory.production.watching import (
    CLOSED, ProviderLoad, load_by_provider, orders_to_watch,
)
from factory.spend_reports import spend_by_day
from factory.spending import BUDGET_CURRENCY, month_balance, with_balances

RECENT_PRODUCTS = 12
RECENT_ORDERS = 6
SPEND_DAYS = 30
REACHED_SHOWN = 5


def _kpis(loads: list[ProviderLoad]) -> list[dict[str, Any]]:
    since = timezone.now() - timedelta(days=30)
    # A failure that a later attempt replaced is no longer a failure.
    # NOT EXISTS probes the retry index per failed item; the outer join
    # this replaces hashed every item of every order.
    replaced = OrderItem.objects.filter(retry_of=OuterRef("pk"))
    failed = EstimatedCountPaginator(OrderItem.objects.filter(
        ~Exists(replaced), status=ItemStatus.FAILED
    ), per_page=1).count_text()
    spent = SpendEntry.objects.filter(
        created_at__gte=since, currency=BUDGET_CURRENCY).actual().total()
    pending = sum(load.pending for load in loads)
    return [
        {"title": "Items in flight", "value": sum(load.in_flight for load in loads),
         "icon": "bolt", "note": f"{pending} waiting" if pending else ""},
        {"title": "Failed items", "value": failed, "icon": "error", "note": ""},
        {"title": "Products", "value": EstimatedCountPaginator(
            Product.objects.all(), per_page=1).count_text(),
         "icon": "photo_library", "note": ""},
        {"title": "Spent, 30 days", "value": f"${spent:.2f}",
         "icon": "payments", "note": ""},
    ]


_kept: dict[str, tuple[float, dict[str, Any]]] = {}
_lock = threading.Lock()


def _recent(name: str, read: Any) -> dict[str, Any]:
    """``read()``, or its result of less than DASHBOARD_CACHE_SECONDS ago."""
    seconds = settings.DASHBOARD_CACHE_SECONDS
    if seconds <= 0:
        return read()
    now = time.monotonic()
    kept = _kept.get(name)
    if kept and kept[0] > now:
        return kept[1]
    with _lock:  # one thread reads; the others wait for its figures
        kept = _kept.get(name)
        if kept and kept[0] > time.monotonic():
            return kept[1]
        value = read()
        _kept[name] = (time.monotonic() + seconds, value)
        return value


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


def _chart(days: list) -> str:
    """The days' actual spend as data for unfold's bar chart component."""
    return json.dumps({
        "labels": [f"{day:%d %b}" for day, _ in days],
        "datasets": [{
            "label": f"Actual spend ({BUDGET_CURRENCY})",
            "data": [float(amount) for _, amount in days],
            "backgroundColor": "var(--color-primary-600)",
            "maxBarThickness": 14, "displayYAxis": True, "maxTicksXLimit": 10,
        }],
    })


def spend_context() -> dict[str, Any]:
    """Spend by day, this month against the cap, and budgets reached.

    Four queries whatever the size of the ledger.
    """
    month = month_balance()
    days = spend_by_day(SPEND_DAYS)
    reached = list(with_balances(Project.objects.filter(
        budget__isnull=False, is_archived=False)).filter(actual__gte=F("budget"))
        .order_by("name")[:REACHED_SHOWN])
    share = (min(month.actual / month.budget * 100, 100) if month.budget else 0)
    return {
        "month": month, "month_share": f"{share:.0f}",
        "spend_chart": _chart(days),
        "spend_30_days": sum(amount for _, amount in days),
        "reached_projects": reached,
    }


def recent_dashboard_context() -> dict[str, Any]:
    """``dashboard_context()``, kept DASHBOARD_CACHE_SECONDS per process."""
    return _recent("live", dashboard_context)


def dashboard_callback(request: HttpRequest, context: dict[str, Any]) -> dict[str, Any]:
    """Fill the index template; its live part polls while anything runs.

    Someone without a role sees how to get one instead of the numbers.
    """
    context["can_watch"] = request.user.has_perm("factory.view_order")
    if context["can_watch"]:
        context.update(recent_dashboard_context())
    context["can_see_spend"] = request.user.has_perm("factory.view_spendentry")
    if context["can_see_spend"]:
        context.update(_recent("spend", spend_context))
    return context

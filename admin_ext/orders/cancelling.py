"""Cancelling from the admin: say what stops and what finishes, then act.

Cancelling throws away queued work, so every door asks first: the order
page through an unfold dialog, the lists through a confirmation page that
posts back with its ``confirm`` field, as ``confirm_retry`` does.
"""
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.admin import ModelAdmin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import ngettext
from unfold.forms import BaseDialogForm

from admin_ext.actions import CONFIRM_FIELD, finish_dialog
from factory.models import Order, OrderItem
from factory.production.cancel import OPEN_ORDERS, cancel_order, plan_cancel


class CancelOrderForm(BaseDialogForm):
    """The order page's dialog: counts above, nothing to fill in."""

    form_before_template = "admin_ext/orders/cancel_summary.html"

    def get_before_template_context(
        self, request: HttpRequest, object_id: int | str | None = None
    ) -> dict[str, Any]:
        order = Order.objects.get(pk=object_id)
        return {"order": order, "is_open": order.status in OPEN_ORDERS,
                "plan": plan_cancel(order.items.all())}


def stopped_message(count: int) -> str:
    return ngettext("%d item stopped.", "%d items stopped.", count) % count


def run_cancel(
    model_admin: ModelAdmin, request: HttpRequest, object_id: str
) -> HttpResponse:
    """Cancel one order once its dialog posts back; say what happened."""
    order = get_object_or_404(Order, pk=object_id)
    plan = plan_cancel(order.items.all())
    if cancel_order(order):
        text = f"{order} cancelled: {stopped_message(plan.stopping)}"
        if plan.finishing:
            text += " " + ngettext(
                "%d collecting item will finish.",
                "%d collecting items will finish.", plan.finishing,
            ) % plan.finishing
        model_admin.message_user(request, text, messages.SUCCESS)
    else:
        model_admin.message_user(
            request, f"{order} had already finished; nothing was cancelled.",
            messages.WARNING,
        )
    return finish_dialog(
        request, reverse("admin:factory_order_change", args=[order.pk])
    )


def confirm_cancel(
    model_admin: ModelAdmin, request: HttpRequest, selected: QuerySet,
    items: QuerySet[OrderItem], action: str, run: Callable[[], str],
    orders: int | None = None,
) -> TemplateResponse | None:
    """Ask before cancelling ``items`` (drawn from the ``selected`` rows);
    ``run`` cancels and returns the message. ``orders`` counts the open
    orders that would close, when the rows are orders.

    None sends the browser back to the change list with a message.
    """
    if request.POST.get(CONFIRM_FIELD) == "yes":
        model_admin.message_user(request, run(), messages.SUCCESS)
        return None
    plan = plan_cancel(items)
    if not plan.stopping and not orders:
        model_admin.message_user(
            request, "Nothing to cancel: every selected item has finished "
            "or is collecting its result.", messages.WARNING)
        return None
    title = (ngettext("Cancel %d order?", "Cancel %d orders?", orders) % orders
             if orders else ngettext("Cancel %d item?", "Cancel %d items?",
                                     plan.stopping) % plan.stopping)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title, "plan": plan, "orders": orders,
        "selected": list(selected.values_list("pk", flat=True)),
        "action": action, "action_checkbox_name": ACTION_CHECKBOX_NAME,
        "confirm_field": CONFIRM_FIELD, "opts": model_admin.model._meta,
        "changelist_url": request.get_full_path(),
    }
    return TemplateResponse(request, "admin_ext/orders/cancel_confirm.html", context)

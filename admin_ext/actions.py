"""Shared admin actions: retrying failed items pays the provider again.

So the action first shows a confirmation page with the item count and the
estimated cost, as Django's ``delete_selected`` does, and spends only when
that page posts back with its ``confirm`` field. Unfold dialog actions
leave through ``finish_dialog``.
"""
from django.contrib import messages
from django.contrib.admin import ModelAdmin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.translation import ngettext

from factory.models import OrderItem
from factory.production.retry import plan_retry, retry_failed_items
from factory.spending import BudgetError

CONFIRM_FIELD = "confirm"


def confirm_retry(
    model_admin: ModelAdmin, request: HttpRequest, selected: QuerySet,
    items: QuerySet[OrderItem], action: str,
) -> TemplateResponse | None:
    """Ask before retrying ``items`` (drawn from the ``selected`` rows).

    None sends the browser back to the change list with a message.
    """
    if request.POST.get(CONFIRM_FIELD) == "yes":
        try:
            retries = retry_failed_items(items, user=request.user)
        except BudgetError as exc:
            model_admin.message_user(
                request, f"Nothing was retried: {exc}.", messages.ERROR)
            return None
        model_admin.message_user(request, ngettext(
            "%d failed item queued again.", "%d failed items queued again.",
            len(retries)) % len(retries), messages.SUCCESS)
        return None
    plan = plan_retry(items)
    if not plan.count:
        model_admin.message_user(
            request, "None of the selected items can be retried: only failed "
            "items not retried yet, outside cancelled orders.", messages.WARNING)
        return None
    context = {
        **model_admin.admin_site.each_context(request),
        "title": ngettext("Retry %d failed item?", "Retry %d failed items?",
                          plan.count) % plan.count,
        "plan": plan,
        "selected": list(selected.values_list("pk", flat=True)),
        "action": action,
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
        "confirm_field": CONFIRM_FIELD,
        "opts": model_admin.model._meta,
        "changelist_url": request.get_full_path(),
    }
    return TemplateResponse(request, "admin_ext/retry_failed.html", context)


def finish_dialog(request: HttpRequest, url: str) -> HttpResponse:
    """Leave an unfold dialog for ``url``: htmx follows ``HX-Redirect``, a
    plain form post (no JavaScript) a normal redirect."""
    if request.headers.get("HX-Request"):
        response = HttpResponse(status=200)
        response["HX-Redirect"] = url
        return response
    return HttpResponseRedirect(url)

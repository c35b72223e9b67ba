"""Writing an order: the machine's own form, a live preview, placing.

A mixin for the order admin, so the admin class stays declarations. The
preview and the machine switch bind the same form that saving binds and
never write; placing from the form saves the draft, then places it or, when
it costs more than ``ORDER_CONFIRM_ABOVE`` or its ceiling was raised, asks
on the confirmation page first.
"""
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import ngettext

from admin_ext.orders import parameters
from admin_ext.orders.forms import OrderForm, load_json
from admin_ext.orders.summary import preview_context
from admin_ext.permissions import PLACE as PLACE_PERMISSION
from factory.models import FactoryMachine, Order, OrderStatus
from factory.ordering import place_order
from factory.parameters.schema import ParameterError

PLACE = "_place"
DRAFT_FIELDSETS = [
    (None, {"fields": ["title", "machine", "project"]}),
    ("Prompt", {"fields": ["prompt", "prompt_mode", "prompt_samples", "tokens"]}),
    ("Parameters", {"fields": ["base_parameters"]}),
    ("Sweeps and seeds", {"fields": ["sweeps", "runs", "seed_strategy", "seed"]}),
    ("More", {"classes": ["collapse"], "fields": [
        "safety_checker", "required_parameters", "item_ceiling", "template",
        "source_order",
    ]}),
]
PLACED_FIELDSETS = [
    (None, {"fields": ["title", "machine", "project", "status"]}),
    ("Recipe", {"fields": [
        "prompt", "prompt_mode", "prompt_samples", "tokens", "base_parameters",
        "sweeps", "runs", "seed_strategy", "seed", "safety_checker",
        "required_parameters",
    ]}),
    ("State", {"fields": [
        "item_count", "estimated_cost", "item_ceiling", "template", "source_order",
        "created_by", "created_at", "placed_at", "finished_at",
    ]}),
]


def _as_id(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class DraftFormMixin:
    """The order admin's form, preview, machine switch and place button."""

    form = OrderForm
    change_form_after_template = "admin_ext/orders/change_form_after.html"

    # ------------------------------------------------------------ form
    def _form_machine(self, request: HttpRequest, obj: Order | None) -> FactoryMachine | None:
        source = request.POST if request.method == "POST" else request.GET
        pk = _as_id(source.get("machine"))
        if pk is None and obj is not None:
            pk = obj.machine_id
        if pk is None:
            return None
        return FactoryMachine.objects.select_related("provider").filter(pk=pk).first()

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        machine = self._form_machine(request, obj)
        return type(form.__name__, (form,), {"machine_for_parameters": machine})

    def get_fieldsets(self, request, obj=None):
        if obj is not None and obj.status != OrderStatus.DRAFT:
            return PLACED_FIELDSETS
        return DRAFT_FIELDSETS

    def has_place_permission(self, request, obj=None) -> bool:
        """Drafts only; unfold hands detail actions the object's id."""
        if not request.user.has_perm(PLACE_PERMISSION):
            return False
        if obj is not None and not isinstance(obj, Order):
            obj = Order.objects.filter(pk=_as_id(obj)).only("status").first()
        if obj is not None and obj.status != OrderStatus.DRAFT:
            return False
        return self.has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.status != OrderStatus.DRAFT:
            return False
        return super().has_delete_permission(request, obj)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        if obj is not None and obj.status != OrderStatus.DRAFT:
            extra_context = {
                **(extra_context or {}), "show_save": False,
                "show_save_and_continue": False, "show_save_and_add_another": False,
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change) -> None:
        plan = getattr(form, "plan", None)
        if plan is not None and obj.status == OrderStatus.DRAFT:
            obj.item_count, obj.estimated_cost = plan.count, plan.estimated_cost
        super().save_model(request, obj, form, change)

    # ------------------------------------------------------------ placing
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # Refused before the draft is saved, so a refusal changes nothing.
        if request.method == "POST" and PLACE in request.POST \
                and not self.has_place_permission(request):
            raise PermissionDenied
        return super().changeform_view(request, object_id, form_url, extra_context)

    def response_add(self, request, obj, post_url_continue=None):
        if PLACE in request.POST:
            return self._place_response(request, obj)
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        if PLACE in request.POST:
            return self._place_response(request, obj)
        return super().response_change(request, obj)

    def _place_response(self, request: HttpRequest, order: Order) -> HttpResponse:
        change_url = reverse("admin:factory_order_change", args=[order.pk])
        threshold = Decimal(str(settings.ORDER_CONFIRM_ABOVE))
        if order.estimated_cost > threshold or order.item_ceiling:
            return HttpResponseRedirect(
                reverse("admin:factory_order_place", args=[order.pk]))
        try:
            place_order(order, user=request.user)
        except ParameterError as exc:
            messages.error(request, f"{order} was saved but not placed: {exc}")
            return HttpResponseRedirect(change_url)
        messages.success(request, ngettext(
            "%(order)s placed: %(n)d item queued.", "%(order)s placed: %(n)d items queued.",
            order.item_count) % {"order": order, "n": order.item_count})
        return HttpResponseRedirect(change_url)

    # ------------------------------------------------------------ endpoints
    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("preview/", wrap(self.preview_view), name="factory_order_preview"),
            path("<int:object_id>/preview/", wrap(self.preview_view),
                 name="factory_order_preview_change"),
            path("switch-machine/", wrap(self.switch_machine_view),
                 name="factory_order_switch_machine"),
            path("<int:object_id>/switch-machine/", wrap(self.switch_machine_view),
                 name="factory_order_switch_machine_change"),
            *super().get_urls(),
        ]

    def _draft_for(self, request: HttpRequest, object_id: int | None) -> Order | None:
        """The draft being edited, after the permission the edit needs."""
        if request.method != "POST":
            raise _NotPost
        if object_id is None:
            if not self.has_add_permission(request):
                raise PermissionDenied
            return None
        obj = get_object_or_404(Order, pk=object_id)
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        if obj.status != OrderStatus.DRAFT:
            raise PermissionDenied
        return obj

    def preview_view(self, request: HttpRequest, object_id: int | None = None) -> HttpResponse:
        """Count, cost, first items and located errors of the form as typed."""
        try:
            obj = self._draft_for(request, object_id)
        except _NotPost:
            return HttpResponseNotAllowed(["POST"])
        form = self.get_form(request, obj, change=obj is not None)(
            request.POST, request.FILES, instance=obj)
        form.is_valid()
        return TemplateResponse(
            request, "admin_ext/orders/_partials/preview.html",
            {**preview_context(form), "may_place": self.has_place_permission(request)})

    def switch_machine_view(
        self, request: HttpRequest, object_id: int | None = None
    ) -> HttpResponse:
        """The parameter form of the newly chosen machine, values carried."""
        try:
            obj = self._draft_for(request, object_id)
        except _NotPost:
            return HttpResponseNotAllowed(["POST"])
        machine = self._form_machine(request, obj)
        old = FactoryMachine.objects.filter(
            pk=_as_id(request.POST.get("parameters_machine"))).first()
        try:
            values = load_json(request.POST.get("base_parameters") or "{}", "parameters")
        except Exception:  # unreadable values: start from the defaults
            values = {}
        dropped: list[str] = []
        if machine is not None and isinstance(values, dict) and old is not None:
            values, dropped = parameters.in_machine_terms(
                machine, parameters.changed_for_switch(old, values))
        form_class = type("SwitchedOrderForm", (self.get_form(request, obj),), {
            "machine_for_parameters": machine, "dropped_keys": dropped})
        form = form_class(instance=obj, initial={"base_parameters": values})
        if machine is not None:
            form.initial["base_parameters"] = {
                **parameters.machine_defaults(machine), **values}
        response = HttpResponse(str(form["base_parameters"]) + _sweeps_again(form, request))
        response["HX-Trigger-After-Settle"] = "order-changed"
        return response


def _sweeps_again(form, request: HttpRequest) -> str:
    """The sweep editor for the new machine, as an out-of-band swap, keeping
    the sweeps as typed; nothing when they cannot be read."""
    if "sweeps" not in form.fields:
        return ""
    try:
        sweeps = load_json(request.POST.get("sweeps") or "[]", "sweeps")
    except Exception:  # unreadable: leave the editor on the page alone
        return ""
    form.initial["sweeps"] = sweeps
    form.fields["sweeps"].widget.swap_oob = True
    return str(form["sweeps"])


class _NotPost(Exception):
    """The endpoint was asked with a method other than POST."""

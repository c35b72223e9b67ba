"""The prompt, tokens and sweep editors as the order admin builds them."""
from django.forms import Widget
from django.http import HttpRequest

from admin_ext.widgets import (
    PromptWidget, SweepsWidget, TokensWidget, sweepable_fields,
)
from factory.models import FactoryMachine, Order, Wildcard

EDITED_FIELDS = ("prompt", "tokens", "sweeps")


def editing_machine(request: HttpRequest) -> FactoryMachine | None:
    """The order's machine, else ``?machine=<pk>``, else the first active."""
    active = FactoryMachine.objects.active().select_related("provider")
    match = request.resolver_match
    object_id = match.kwargs.get("object_id") if match else None
    if object_id is not None:
        order = Order.objects.filter(pk=object_id).select_related(
            "machine__provider").first()
        if order is not None:
            return order.machine
    pk = request.GET.get("machine", "")
    chosen = active.filter(pk=pk).first() if pk.isdigit() else None
    return chosen or active.first()


def editor_widgets(request: HttpRequest) -> dict[str, Widget]:
    """Widgets by field name, built once per request."""
    cached = getattr(request, "_order_editor_widgets", None)
    if cached is not None:
        return cached
    machine = editing_machine(request)
    wildcards = list(Wildcard.objects.values_list("name", flat=True))
    fields = sweepable_fields(machine) if machine else []
    widgets = {
        "prompt": PromptWidget(
            wildcards, parameters=machine.accepted_keys if machine else ()),
        "tokens": TokensWidget(),
        "sweeps": SweepsWidget(fields),
    }
    request._order_editor_widgets = widgets
    return widgets

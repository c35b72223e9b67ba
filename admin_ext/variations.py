"""Dialogs that start a draft from a finished call: vary seed, other machine.

Shared by the order and product pages. The dialogs ask (GET) and the
admin methods act only when the dialog posts back; drafts are placed later
through the normal confirmation page.
"""
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.admin import ModelAdmin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ValidationError
from django.db.models import Model
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import ngettext
from unfold.forms import BaseDialogForm
from unfold.widgets import UnfoldAdminIntegerFieldWidget, UnfoldAdminSelectWidget

from admin_ext.actions import CONFIRM_FIELD, finish_dialog
from factory.models import FactoryMachine, Order, Product
from factory.recipes import MAX_AGAIN
from factory.variations import (
    MAX_VARIATIONS, order_on_machine, preview_switch, vary_seed,
)

DEFAULT_VARIATIONS = 4


class VarySeedCountForm(forms.Form):
    count = forms.IntegerField(
        label="Variations", initial=DEFAULT_VARIATIONS, min_value=1,
        max_value=MAX_VARIATIONS,
        help_text=f"One new random seed each, 1 to {MAX_VARIATIONS}.",
        widget=UnfoldAdminIntegerFieldWidget(attrs={"autofocus": True}),
    )


class VarySeedForm(BaseDialogForm, VarySeedCountForm):
    """The product page's dialog."""


def _label(machine: FactoryMachine, source: Order | Product) -> str:
    """A machine's name with what choosing it would cost the recipe."""
    parts = [machine.name]
    setting = machine.provider.missing_key
    if setting:
        parts.append(f"needs {setting}")
    try:
        dropped = preview_switch(source, machine)
    except ValidationError as exc:
        parts.append(" ".join(exc.messages))
    else:
        if dropped:
            parts.append("drops " + ", ".join(dropped))
    return " · ".join(parts)


def machine_choices(source: Order | Product) -> list[tuple[str, list]]:
    """Active machines of the source's kind, grouped by provider."""
    machine = source.machine
    groups: dict[str, list[tuple[int, str]]] = {}
    candidates = FactoryMachine.objects.active().filter(
        modality=machine.modality
    ).exclude(pk=machine.pk).select_related("provider")
    for candidate in candidates:
        groups.setdefault(candidate.provider.name, []).append(
            (candidate.pk, _label(candidate, source))
        )
    return list(groups.items())


class MachineForm(BaseDialogForm):
    """Pick the machine a new draft runs on; ``source_model`` says whose
    page the dialog opened from."""

    source_model: type[Model] = Order
    machine = forms.TypedChoiceField(
        label="Machine", coerce=int, widget=UnfoldAdminSelectWidget,
        help_text="Same kind of output; parameters are translated for it.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.source = get_object_or_404(
            _sources(self.source_model), pk=self.object_id
        )
        self.fields["machine"].choices = [
            ("", "Choose a machine…"), *machine_choices(self.source)
        ]

    def clean_machine(self) -> FactoryMachine:
        return FactoryMachine.objects.select_related("provider").get(
            pk=self.cleaned_data["machine"]
        )


class ProductMachineForm(MachineForm):
    source_model = Product


def _sources(model: type[Model]):
    if model is Product:
        return Product.objects.select_related(
            "machine__provider", "item__order", "project"
        )
    return Order.objects.select_related("machine__provider", "project")


def _draft_url(order: Order) -> str:
    return reverse("admin:factory_order_change", args=[order.pk])


def run_vary_seed(
    model_admin: ModelAdmin, request: HttpRequest, product: Product, count: int
) -> HttpResponse:
    """Write the draft, say so, and send the browser to it."""
    draft = vary_seed(product, count, request.user)
    seeds = "" if "seed" in product.machine.accepted_keys else (
        f" {product.machine.name} takes no seed, so the provider draws one per call."
    )
    model_admin.message_user(request, ngettext(
        "%(draft)s is a new draft of %(n)d variation; place it when ready.",
        "%(draft)s is a new draft of %(n)d variations; place it when ready.",
        count) % {"draft": draft, "n": count} + seeds, messages.SUCCESS)
    return finish_dialog(request, _draft_url(draft))


def switch_message(draft: Order, dropped: list[str], notes: list[str]) -> str:
    """What the user needs to know about a draft on another machine."""
    text = f"{draft} is a new draft on {draft.machine}."
    if dropped:
        text += " Dropped, as it cannot take them: " + ", ".join(dropped) + "."
    else:
        text += " Every parameter carried over."
    if notes:
        text += " " + " ".join(notes)
    setting = draft.machine.provider.missing_key
    if setting:
        text += f" It can be placed once {setting} is set."
    return text


def run_switch(
    model_admin: ModelAdmin, request: HttpRequest, form: MachineForm
) -> HttpResponse:
    """Write the draft on the chosen machine and send the browser to it."""
    try:
        draft, dropped, notes = order_on_machine(
            form.source, form.cleaned_data["machine"], request.user
        )
    except ValidationError as exc:
        model_admin.message_user(request, " ".join(exc.messages), messages.ERROR)
        opts = form.source._meta
        return finish_dialog(request, reverse(
            f"admin:{opts.app_label}_{opts.model_name}_change", args=[form.source.pk]
        ))
    level = messages.WARNING if dropped else messages.SUCCESS
    model_admin.message_user(request, switch_message(draft, dropped, notes), level)
    return finish_dialog(request, _draft_url(draft))


def confirm_vary_seed(
    model_admin: ModelAdmin, request: HttpRequest, queryset, action: str
) -> HttpResponse | TemplateResponse | None:
    """The bulk form: ask how many variations, then write one draft per
    selected product; a single draft opens, several list as drafts."""
    products = list(queryset.select_related(
        "media", "machine", "item__order", "project")[: MAX_AGAIN + 1])
    if len(products) > MAX_AGAIN:  # e.g. "select all matching" on many
        model_admin.message_user(request, f"Vary seed writes at most {MAX_AGAIN} "
                                 "drafts in one go; select fewer products.",
                                 messages.ERROR)
        return None
    form = VarySeedCountForm(request.POST if CONFIRM_FIELD in request.POST else None)
    if form.is_valid():
        count = form.cleaned_data["count"]
        drafts = [vary_seed(product, count, request.user) for product in products]
        model_admin.message_user(request, ngettext(
            "%(n)d draft of %(count)d variations written; place it when ready.",
            "%(n)d drafts of %(count)d variations each written; place them when "
            "ready.", len(drafts)) % {"n": len(drafts), "count": count},
            messages.SUCCESS)
        if len(drafts) == 1:
            return HttpResponseRedirect(_draft_url(drafts[0]))
        return HttpResponseRedirect(
            reverse("admin:factory_order_changelist") + "?status__exact=draft"
        )
    context = {
        **model_admin.admin_site.each_context(request),
        "title": ngettext("Vary the seed of %d product", "Vary the seed of %d "
                          "products", len(products)) % len(products),
        "form": form, "products": products, "action": action,
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
        "confirm_field": CONFIRM_FIELD, "opts": model_admin.model._meta,
        "changelist_url": request.get_full_path(),
    }
    return TemplateResponse(request, "admin_ext/inventory/vary_seed.html", context)

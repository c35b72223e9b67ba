"""Spend: the ledger (read-only, filtered, totalled, exported), the monthly
cap and the spend report."""
from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Q, Sum
from django.http import (
    HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import (
    ChoicesDropdownFilter, RangeDateFilter, RelatedDropdownFilter,
)
from unfold.decorators import display

from admin_ext.data.admin import DataAdminMixin
from admin_ext.data.resources import SpendEntryResource
from admin_ext.paging import EstimatedCountMixin
from factory import spend_reports
from factory.models import FactoryMachine, MonthlyCap, SpendEntry
from factory.models.spend import ACTUAL
from factory.spending import month_balance, month_start

# Report periods: query value -> (label, start of the period or None).
PERIODS = {
    "month": ("This month", lambda now: month_start(now)),
    "30d": ("Last 30 days", lambda now: now - timedelta(days=30)),
    "all": ("All time", lambda now: None),
}


def _nowrap(text: str) -> str:
    return format_html('<span class="whitespace-nowrap">{}</span>', text)


class MachineDropdownFilter(RelatedDropdownFilter):
    """Machines by name, read in one query (their labels name no provider)."""

    def field_choices(self, field, request, model_admin):
        return list(FactoryMachine.objects.order_by("name").values_list("pk", "name"))


def ledger_totals(queryset) -> list[dict[str, Any]]:
    """Committed, actual and held of the filtered entries, per currency."""
    rows = (queryset.order_by().values("currency")
            .annotate(committed=Sum("amount"),
                      actual=Sum("amount", filter=Q(source__in=ACTUAL)))
            .order_by("currency"))
    return [{**row, "actual": row["actual"] or 0,
             "held": row["committed"] - (row["actual"] or 0)} for row in rows]


@admin.register(SpendEntry)
class SpendEntryAdmin(EstimatedCountMixin, DataAdminMixin, ModelAdmin):
    """Every amount reserved, charged or released; nobody edits it."""

    resource_classes = [SpendEntryResource]
    list_display = [
        # The amount first after what it is: it must not scroll out of view.
        "time_label", "source_label", "amount_label", "project", "order_link", "item_link",
        "machine_label", "provider_label", "user", "request_id", "units_label",
        "unit_price_label",
    ]
    list_select_related = ["project", "order", "machine__provider", "provider", "user"]
    list_filter = [
        ("project", RelatedDropdownFilter), ("machine", MachineDropdownFilter),
        ("provider", RelatedDropdownFilter), ("user", RelatedDropdownFilter),
        ("source", ChoicesDropdownFilter), ("created_at", RangeDateFilter),
    ]
    list_filter_submit = True
    list_disable_select_all = True
    search_fields = ["request_id", "note"]
    list_per_page = 50
    list_before_template = "admin_ext/spend/list_before.html"
    readonly_fields = [
        "created_at", "source", "amount", "currency", "units", "unit", "unit_price",
        "project", "order", "item", "machine", "provider", "user", "request_id", "note",
    ]
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_import_permission(self, request: HttpRequest) -> bool:
        return False  # the ledger is written by spending only

    def get_urls(self):
        report = path("report/", self.admin_site.admin_view(self.report_view),
                      name="factory_spendentry_report")
        kept = [url for url in super().get_urls()
                if not (url.name or "").endswith(("_import", "_process_import"))]
        return [report, *kept]

    def changelist_view(self, request: HttpRequest, extra_context=None):
        response = super().changelist_view(request, extra_context)
        if isinstance(response, TemplateResponse) and response.context_data:
            cl = response.context_data.get("cl")
            if cl is not None:
                response.context_data["spend_totals"] = ledger_totals(cl.queryset)
                response.context_data["report_url"] = reverse(
                    "admin:factory_spendentry_report")
        return response

    @display(description="Time (UTC)", ordering="created_at")
    def time_label(self, obj: SpendEntry) -> str:
        return _nowrap(f"{timezone.localtime(obj.created_at):%Y-%m-%d %H:%M:%S}")

    @display(description="Machine", ordering="machine__name")
    def machine_label(self, obj: SpendEntry) -> str:
        return _nowrap(obj.machine.name) if obj.machine_id else "-"

    @display(description="Provider", ordering="provider__name")
    def provider_label(self, obj: SpendEntry) -> str:
        return _nowrap(obj.provider.name)

    @display(description="Unit price", ordering="unit_price")
    def unit_price_label(self, obj: SpendEntry) -> str:
        return _nowrap(f"{obj.unit_price.normalize():f} {obj.currency}") \
            if obj.unit_price else "-"

    @display(description="Source", ordering="source", label={
        "reservation": "info", "release": "info", "provider": "success",
        "estimate": "warning", "correction": "danger",
    })
    def source_label(self, obj: SpendEntry) -> tuple[str, str]:
        return obj.source, obj.get_source_display()

    @display(description="Order", ordering="order")
    def order_link(self, obj: SpendEntry) -> str:
        if obj.order_id is None:
            return "-"
        return format_html('<a href="{}">#{}</a>', reverse(
            "admin:factory_order_change", args=[obj.order_id]), obj.order_id)

    @display(description="Item", ordering="item")
    def item_link(self, obj: SpendEntry) -> str:
        if obj.item_id is None:
            return "-"
        return format_html('<a href="{}">#{}</a>', reverse(
            "admin:factory_orderitem_change", args=[obj.item_id]), obj.item_id)

    @display(description="Units", ordering="units")
    def units_label(self, obj: SpendEntry) -> str:
        return _nowrap(f"{obj.units.normalize():f} {obj.unit}".strip()) if obj.units else "-"

    @display(description="Amount", ordering="amount")
    def amount_label(self, obj: SpendEntry) -> str:
        return format_html(
            '<span class="af-num font-medium whitespace-nowrap">{} {}</span>',
            obj.amount, obj.currency)

    def report_view(self, request: HttpRequest) -> HttpResponse:
        """Spend by project, machine, provider and user; estimate versus actual."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        period = request.GET.get("period", "month")
        if period not in PERIODS:
            return HttpResponseBadRequest(
                f"Unknown period {period!r}; the periods are {', '.join(PERIODS)}.")
        label, start = PERIODS[period]
        since = start(timezone.now())
        context = {
            **self.admin_site.each_context(request),
            "title": "Spend report", "opts": self.model._meta,
            "period": period, "period_label": label, "since": since,
            "periods": [(key, name) for key, (name, _) in PERIODS.items()],
            "groups": [(dimension.capitalize(), spend_reports.spend_by(dimension, since))
                       for dimension in spend_reports.DIMENSIONS],
            "machines": spend_reports.estimate_vs_actual_by_machine(since),
            "ledger_url": reverse("admin:factory_spendentry_changelist"),
        }
        return TemplateResponse(request, "admin_ext/spend/report.html", context)


@admin.register(MonthlyCap)
class MonthlyCapAdmin(ModelAdmin):
    """The one optional cap on a month's spend; the lead's to set."""

    list_display = ["__str__", "spent_this_month", "updated_at"]
    fields = ["amount"]

    def add_view(self, request: HttpRequest, form_url="", extra_context=None):
        """One row at most: once it exists, adding opens it instead.

        Checked here rather than in ``has_add_permission``, which every
        admin page asks for its menus.
        """
        cap = MonthlyCap.objects.first()
        if cap is not None and self.has_add_permission(request):
            return HttpResponseRedirect(
                reverse("admin:factory_monthlycap_change", args=[cap.pk]))
        return super().add_view(request, form_url, extra_context)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # an empty amount means no cap

    @display(description="Actual spend this month")
    def spent_this_month(self, obj: MonthlyCap) -> str:
        balance = month_balance(obj.amount)
        return f"{balance.actual:.2f} USD"

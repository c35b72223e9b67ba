"""Production section: orders and their items."""
from django.contrib import admin, messages
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from unfold.admin import ModelAdmin
from unfold.decorators import action, display

from admin_ext.display import ITEM_COLOURS, ORDER_COLOURS, progress_html
from admin_ext.filters import MachineFilter
from factory.models import ItemStatus, Order, OrderItem, OrderStatus
from factory.ordering import place_order, plan_order
from factory.parameters.schema import ParameterError

PREVIEW_ITEMS = 5


@admin.register(Order)
class OrderAdmin(ModelAdmin):
    list_display = [
        "__str__", "machine", "project", "display_status", "display_progress",
        "item_count", "estimated_cost", "created_at",
    ]
    list_filter = [
        "status", "machine__provider", ("machine", MachineFilter), "project",
    ]
    list_select_related = ["machine__provider", "project"]
    search_fields = ["title", "prompt"]
    autocomplete_fields = ["project", "template", "source_order"]
    readonly_fields = [
        "status", "item_count", "estimated_cost", "created_by", "created_at",
        "placed_at", "finished_at",
    ]
    fieldsets = [
        (None, {"fields": ["title", "machine", "project", "prompt"]}),
        ("Parameters", {"fields": [
            "base_parameters", "sweeps", "runs", "seed_strategy", "seed",
            "safety_checker",
        ]}),
        ("Prompt and tokens", {"fields": [
            "prompt_mode", "prompt_samples", "tokens", "required_parameters",
        ]}),
        ("Limits and origin", {"fields": ["item_ceiling", "template", "source_order"]}),
        ("State", {"fields": readonly_fields}),
    ]
    actions_detail = ["place_detail"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            n_done=Count("items", filter=Q(items__status=ItemStatus.COMPLETED)),
            n_failed=Count("items", filter=Q(items__status=ItemStatus.FAILED)),
        )

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status != OrderStatus.DRAFT:
            return [f.name for f in self.model._meta.fields if f.name != "id"]
        return self.readonly_fields

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @display(description="Status", label=ORDER_COLOURS, ordering="status")
    def display_status(self, obj: Order) -> str:
        return obj.get_status_display()

    @display(description="Progress")
    def display_progress(self, obj: Order) -> str:
        return progress_html(obj.n_done, obj.n_failed, obj.item_count)

    @action(description="Place order", url_path="place", icon="rocket_launch",
            permissions=["change"])
    def place_detail(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return HttpResponseRedirect(
            reverse("admin:factory_order_place", args=[object_id])
        )

    def get_urls(self):
        view = self.admin_site.admin_view(self.place_view)
        return [
            path("<int:object_id>/place-confirm/", view, name="factory_order_place"),
            *super().get_urls(),
        ]

    def place_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """Show count, sample and cost; spend only on POST."""
        order = get_object_or_404(Order.objects.select_related("machine"), pk=object_id)
        change_url = reverse("admin:factory_order_change", args=[order.pk])
        if not self.has_change_permission(request, order):
            messages.error(request, "You may not place orders.")
            return HttpResponseRedirect(change_url)
        if order.status != OrderStatus.DRAFT:
            messages.warning(request, f"{order} has already been placed.")
            return HttpResponseRedirect(change_url)
        try:
            if request.method == "POST":
                place_order(order)
                messages.success(
                    request, f"{order} placed: {order.item_count} items queued."
                )
                return HttpResponseRedirect(change_url)
            plan = plan_order(order)
        except ParameterError as exc:
            messages.error(request, f"{order} cannot be placed: {exc}")
            return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Place {order}?",
            "order": order,
            "plan": plan,
            "sample": plan.items[:PREVIEW_ITEMS],
            "opts": self.model._meta,
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin_ext/place_order.html", context)


@admin.register(OrderItem)
class OrderItemAdmin(ModelAdmin):
    list_display = [
        "__str__", "order", "machine", "display_status", "attempts", "seed",
        "request_id", "short_error", "updated_at",
    ]
    list_filter = ["status", "machine__provider", ("machine", MachineFilter)]
    list_select_related = ["order", "machine__provider"]
    search_fields = ["request_id", "last_error", "order__title"]
    readonly_fields = [f.name for f in OrderItem._meta.fields]
    list_per_page = 100

    def has_add_permission(self, request) -> bool:
        return False

    @display(description="Status", label=ITEM_COLOURS, ordering="status")
    def display_status(self, obj: OrderItem) -> str:
        return obj.get_status_display()

    @display(description="Last error")
    def short_error(self, obj: OrderItem) -> str:
        return obj.last_error[:80]

"""Orders and order items: the admin classes of the production section."""
from functools import partial

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import ngettext
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import action, display

from admin_ext.actions import confirm_retry
from admin_ext.orders.comparison import compare_page, comparison_urls
from admin_ext.orders.cancelling import (
    CancelOrderForm, confirm_cancel, run_cancel, stopped_message,
)
from admin_ext.orders.drafting import DraftFormMixin
from admin_ext.permissions import CANCEL, RETRY, RefuseForbiddenActions
from admin_ext.variations import MachineForm, run_switch
from admin_ext.data.admin import DataAdminMixin
from admin_ext.data.resources import OrderResource
from admin_ext.display import ITEM_COLOURS, ORDER_COLOURS, progress_html
from admin_ext.filters import MachineFilter
from admin_ext.lean import LeanAdminMixin
from admin_ext.orders import picker
from admin_ext.orders.progress import progress_urls
from admin_ext.orders.summary import item_estimate
from admin_ext.paging import EstimatedCountMixin, is_changelist
from factory.models import ItemEvent, Order, OrderItem, OrderStatus
from factory.ordering import place_order, plan_order
from factory.parameters.schema import ParameterError
from factory.production.cancel import OPEN_ORDERS, cancel_items, cancel_order
from factory.recipes import diff_orders, order_again, save_as_template

PREVIEW_ITEMS = 5


@admin.register(Order)
class OrderAdmin(RefuseForbiddenActions, DataAdminMixin, EstimatedCountMixin,
                 DraftFormMixin, LeanAdminMixin, ModelAdmin):
    resource_classes = [OrderResource]
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
    actions_detail = [
        "place_detail", "order_again_detail", "other_machine_detail",
        "save_template_detail", "compare_detail", "cancel_detail",
    ]
    actions = ["retry_failed_orders", "cancel_orders"]

    list_before_template = "admin_ext/orders/list_before.html"
    change_form_before_template = "admin_ext/orders/change_form_before.html"

    def get_queryset(self, request):
        # The page's machine, provider and project come along on every view.
        queryset = super().get_queryset(request).select_related(
            "machine__provider", "project")
        if is_changelist(request):
            # Tallies are counted for the fetched page only, in one grouped
            # query; an order's own page reads its tally in its live panel.
            queryset = queryset.with_tallies()
        return queryset

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status != OrderStatus.DRAFT:
            return [f.name for f in self.model._meta.fields if f.name != "id"]
        if not request.user.has_perm("factory.raise_item_ceiling"):
            return [*self.readonly_fields, "item_ceiling"]
        return self.readonly_fields

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)  # the mixin notes count and cost

    def has_order_again_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.has_perm("factory.add_order")

    def has_save_template_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.has_perm("factory.add_template")

    def has_retry_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.has_perm(RETRY)

    def has_cancel_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.has_perm(CANCEL)

    @display(description="Status", label=ORDER_COLOURS, ordering="status")
    def display_status(self, obj: Order) -> str:
        return obj.get_status_display()

    @display(description="Progress")
    def display_progress(self, obj: Order) -> str:
        # The id is where the list's poller swaps in fresh bars.
        return format_html(
            '<div id="order-progress-{}">{}</div>',
            obj.pk, progress_html(getattr(obj, "tally", None)),
        )

    @action(description="Retry failed items", permissions=["retry"])
    def retry_failed_orders(
        self, request: HttpRequest, queryset: QuerySet[Order]
    ) -> HttpResponse | None:
        items = OrderItem.objects.filter(order__in=queryset.values("pk"))
        return confirm_retry(self, request, queryset, items, "retry_failed_orders")

    @action(description="Cancel", permissions=["cancel"])
    def cancel_orders(
        self, request: HttpRequest, queryset: QuerySet[Order]
    ) -> HttpResponse | None:
        """Ask first: how many orders close, items stop, items finish."""
        open_orders = queryset.filter(status__in=OPEN_ORDERS)

        def run() -> str:
            cancelled = sum(cancel_order(order) for order in open_orders)
            return ngettext("%d order cancelled.", "%d orders cancelled.",
                            cancelled) % cancelled

        items = OrderItem.objects.filter(order__in=open_orders.values("pk"))
        return confirm_cancel(self, request, queryset, items, "cancel_orders",
                              run, orders=open_orders.count())

    @action(description="Place order", url_path="place", icon="rocket_launch",
            permissions=["place"])
    def place_detail(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return HttpResponseRedirect(
            reverse("admin:factory_order_place", args=[object_id])
        )

    @action(description="Order again", url_path="order-again",
            icon="content_copy", permissions=["order_again"])
    def order_again_detail(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Copy the order as a new draft; placing it shows what changed."""
        copy = order_again(get_object_or_404(Order, pk=object_id), request.user)
        self.message_user(
            request, f"{copy} is a new draft; placing it lists what changed.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(
            reverse("admin:factory_order_change", args=[copy.pk])
        )

    @action(description="Save as template", url_path="save-as-template",
            icon="bookmark_add", permissions=["save_template"])
    def save_template_detail(
        self, request: HttpRequest, object_id: str
    ) -> HttpResponse:
        """Ask for a name; write the template on POST."""
        order = get_object_or_404(Order, pk=object_id)
        name = request.POST.get("name", str(order))
        error = ""
        if request.method == "POST":
            try:
                template = save_as_template(order, name, request.user)
            except ValidationError as exc:
                error = " ".join(exc.messages)
            else:
                self.message_user(
                    request, f"Template {template} saved.", messages.SUCCESS
                )
                return HttpResponseRedirect(
                    reverse("admin:factory_template_change", args=[template.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Save {order} as a template",
            "order": order, "name": name, "error": error,
            "opts": self.model._meta,
            "change_url": reverse("admin:factory_order_change", args=[order.pk]),
        }
        return TemplateResponse(request, "admin_ext/save_template.html", context)

    def add_view(self, request, form_url="", extra_context=None):
        """A bare "New order" first shows the machine picker."""
        if picker.wants_picker(request):
            if not self.has_add_permission(request):
                raise PermissionDenied
            return picker.picker_response(self, request)
        return super().add_view(request, form_url, extra_context)

    def get_urls(self):
        view = self.admin_site.admin_view(self.place_view)
        star = self.admin_site.admin_view(partial(picker.star_view, self))
        return [
            *progress_urls(self),
            *comparison_urls(self),
            path("star/<int:machine_id>/", star, name="factory_order_star"),
            path("<int:object_id>/place-confirm/", view, name="factory_order_place"),
            *super().get_urls(),
        ]

    def place_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """Show count, sample and cost; spend only on POST."""
        order = get_object_or_404(
            Order.objects.select_related(
                "machine", "project", "source_order__machine",
                "source_order__project",
            ),
            pk=object_id,
        )
        change_url = reverse("admin:factory_order_change", args=[order.pk])
        if not self.has_place_permission(request):
            raise PermissionDenied
        if order.status != OrderStatus.DRAFT:
            messages.warning(request, f"{order} has already been placed.")
            return HttpResponseRedirect(change_url)
        try:
            if request.method == "POST":
                place_order(order, user=request.user)
                messages.success(request, ngettext(
                    "%(order)s placed: %(n)d item queued.",
                    "%(order)s placed: %(n)d items queued.", order.item_count,
                ) % {"order": order, "n": order.item_count})
                return HttpResponseRedirect(change_url)
            plan = plan_order(order)
        except ParameterError as exc:
            messages.error(request, f"{order} cannot be placed: {exc}")
            return HttpResponseRedirect(change_url)
        source = order.source_order
        context = {
            **self.admin_site.each_context(request),
            "title": f"Place {order}?",
            "order": order,
            "plan": plan,
            "sample": plan.items[:PREVIEW_ITEMS],
            "opts": self.model._meta,
            "change_url": change_url,
            "source": source,
            "changes": diff_orders(source, order) if source else [],
            "estimate": item_estimate(order.machine, plan.items[0].parameters)
            if plan.items and order.machine.price_amount else None,
        }
        return TemplateResponse(request, "admin_ext/orders/place_order.html", context)

    @action(description="Compare", url_path="compare", icon="grid_view",
            permissions=["view"])
    def compare_detail(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The products pivoted by two swept fields, as an X/Y plot."""
        return compare_page(self, request, object_id)

    @action(description="Cancel order", url_path="cancel", icon="cancel",
            permissions=["cancel"], dialog={
                "title": "Stop this order?",
                "description": "Cancelling cannot be undone; the order can be "
                "ordered again as a new draft.",
                "form_class": CancelOrderForm, "form_submit_text": "Stop order",
            })
    def cancel_detail(
        self, request: HttpRequest, form: CancelOrderForm, object_id: str
    ) -> HttpResponse:
        """Close the order and stop its unfinished items, after the dialog."""
        return run_cancel(self, request, object_id)

    @action(description="On another machine", url_path="other-machine",
            icon="swap_horiz", permissions=["order_again"], dialog={
                "title": "Order on another machine",
                "description": "A new draft with this recipe on the machine you "
                "pick; parameters it cannot take are dropped and listed.",
                "form_class": MachineForm, "form_submit_text": "Create draft",
            })
    def other_machine_detail(
        self, request: HttpRequest, form: MachineForm, object_id: str
    ) -> HttpResponse:
        """Write the draft on the chosen machine and open it."""
        return run_switch(self, request, form)


class ItemEventInline(TabularInline):
    """The item's history: attempts, refusals, reconciliations, resends."""

    model = ItemEvent
    fields = ["at", "kind", "message"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name = "event"
    verbose_name_plural = "History"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        # Whoever may see the item may see its history.
        return request.user.has_perm("factory.view_orderitem")


@admin.register(OrderItem)
class OrderItemAdmin(RefuseForbiddenActions, EstimatedCountMixin, LeanAdminMixin, ModelAdmin):
    inlines = [ItemEventInline]
    list_display = [
        "__str__", "order", "machine", "display_status", "attempts", "seed",
        "request_id", "short_error", "updated_at",
    ]
    list_filter = ["status", "machine__provider", ("machine", MachineFilter)]
    list_select_related = ["order", "machine__provider"]
    search_fields = ["request_id", "last_error", "order__title"]
    readonly_fields = [f.name for f in OrderItem._meta.fields]
    list_per_page = 100
    actions = ["retry_failed", "cancel_chosen_items"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_retry_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.has_perm(RETRY)

    @action(description="Retry failed items", permissions=["retry"])
    def retry_failed(
        self, request: HttpRequest, queryset: QuerySet[OrderItem]
    ) -> HttpResponse | None:
        return confirm_retry(self, request, queryset, queryset, "retry_failed")

    @display(description="Status", label=ITEM_COLOURS, ordering="status")
    def display_status(self, obj: OrderItem) -> str:
        return obj.get_status_display()

    @display(description="Last error")
    def short_error(self, obj: OrderItem) -> str:
        return obj.last_error[:80]

    def has_cancel_items_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.has_perm(CANCEL)

    @action(description="Cancel items", permissions=["cancel_items"])
    def cancel_chosen_items(
        self, request: HttpRequest, queryset: QuerySet[OrderItem]
    ) -> HttpResponse | None:
        """Ask first; only unfinished items stop, collecting ones finish."""
        return confirm_cancel(
            self, request, queryset, queryset, "cancel_chosen_items",
            lambda: stopped_message(cancel_items(queryset)),
        )

"""Projects and tags."""
from django.contrib import admin
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from unfold.admin import ModelAdmin
from unfold.decorators import display

from admin_ext.data.admin import DataAdminMixin
from admin_ext.data.resources import ProjectResource, TagResource
from factory.models import Product, Project, Tag
from factory.spending import Balance, balance_of, project_balance, with_balances


@admin.register(Project)
class ProjectAdmin(DataAdminMixin, ModelAdmin):
    resource_classes = [ProjectResource]
    list_display = ["name", "budget", "committed_label", "actual_label", "left_label",
                    "product_count", "is_archived", "created_at"]
    list_filter = ["is_archived"]
    search_fields = ["name", "description"]
    change_form_before_template = "admin_ext/projects/change_form_before.html"

    def get_queryset(self, request):
        # Subqueries all, so the list's counts need none of them.
        products = (Product.objects.filter(project=OuterRef("pk")).order_by()
                    .values("project").annotate(n=Count("id")).values("n"))
        return with_balances(super().get_queryset(request)).annotate(
            n_products=Coalesce(Subquery(products), 0))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        project = self.get_object(request, object_id)
        if project is not None:
            extra_context = {**(extra_context or {}),
                             "balance": project_balance(project)}
        return super().change_view(request, object_id, form_url, extra_context)

    @display(description="Products", ordering="n_products")
    def product_count(self, obj: Project) -> int:
        return obj.n_products

    @display(description="Committed", ordering="committed")
    def committed_label(self, obj: Project) -> str:
        return f"{obj.committed:.2f}"

    @display(description="Actual", ordering="actual")
    def actual_label(self, obj: Project) -> str:
        return f"{obj.actual:.2f}"

    @display(description="Left", label={"reached": "danger", "open": "success"})
    def left_label(self, obj: Project) -> tuple[str, str] | str:
        balance: Balance = balance_of(obj)
        if balance.left is None:
            return "-"
        if balance.reached:
            return "reached", f"{balance.left:.2f} · reached"
        return "open", f"{balance.left:.2f}"


@admin.register(Tag)
class TagAdmin(DataAdminMixin, ModelAdmin):
    resource_classes = [TagResource]
    list_display = ["name", "product_count"]
    search_fields = ["name"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_products=Count("products"))

    @display(description="Products", ordering="n_products")
    def product_count(self, obj: Tag) -> int:
        return obj.n_products

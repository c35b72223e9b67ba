"""Projects and tags."""
from django.contrib import admin
from django.db.models import Count, OuterRef, Subquery, Sum
from unfold.admin import ModelAdmin
from unfold.decorators import display

from admin_ext.data.admin import DataAdminMixin
from admin_ext.data.resources import ProjectResource, TagResource
from factory.models import Order, OrderStatus, Project, Tag


def committed_cost() -> Subquery:
    """Estimated cost of a project's placed orders."""
    orders = (
        Order.objects.filter(project=OuterRef("pk"))
        .exclude(status=OrderStatus.DRAFT)
        .order_by()
        .values("project")
        .annotate(total=Sum("estimated_cost"))
        .values("total")
    )
    return Subquery(orders)


@admin.register(Project)
class ProjectAdmin(DataAdminMixin, ModelAdmin):
    resource_classes = [ProjectResource]
    list_display = ["name", "budget", "spent", "product_count", "is_archived", "created_at"]
    list_filter = ["is_archived"]
    search_fields = ["name", "description"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            n_products=Count("products"), committed=committed_cost(),
        )

    @display(description="Products", ordering="n_products")
    def product_count(self, obj: Project) -> int:
        return obj.n_products

    @display(description="Committed", ordering="committed")
    def spent(self, obj: Project) -> str:
        return f"{obj.committed or 0:.2f}"


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

"""Catalog section: providers, factory machines, templates and wildcards."""
from django.contrib import admin
from django.db.models import Count
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import display

from admin_ext.filters import MachineFilter
from factory.models import FactoryMachine, Provider, Template, Wildcard


class MachineInline(TabularInline):
    model = FactoryMachine
    fields = ["name", "slug", "endpoint_id", "modality", "is_active"]
    readonly_fields = fields
    extra = 0
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Provider)
class ProviderAdmin(ModelAdmin):
    list_display = ["name", "slug", "concurrency_limit", "machine_count", "is_active"]
    list_editable = ["concurrency_limit", "is_active"]
    search_fields = ["name", "slug"]
    inlines = [MachineInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_machines=Count("machines"))

    @display(description="Machines", ordering="n_machines")
    def machine_count(self, obj: Provider) -> int:
        return obj.n_machines


@admin.register(FactoryMachine)
class FactoryMachineAdmin(ModelAdmin):
    list_display = [
        "name", "provider", "endpoint_id", "display_modality", "display_price",
        "is_active",
    ]
    list_filter = ["provider", "modality", "is_active"]
    list_select_related = ["provider"]
    search_fields = ["name", "slug", "endpoint_id"]
    prepopulated_fields = {"slug": ["name"]}
    fieldsets = [
        (None, {"fields": [
            "name", "slug", "provider", "endpoint_id", "version", "modality",
            "is_active", "description",
        ]}),
        ("Price", {"fields": [
            "price_amount", "price_unit", "price_currency", "concurrency_limit",
        ]}),
        ("Model inputs", {"fields": [
            "input_schema", "defaults", "aliases", "safety", "output_key",
        ]}),
    ]

    @display(description="Modality", label=True, ordering="modality")
    def display_modality(self, obj: FactoryMachine) -> str:
        return obj.get_modality_display()

    @display(description="Price", ordering="price_amount")
    def display_price(self, obj: FactoryMachine) -> str:
        return f"{obj.price_amount.normalize()} {obj.price_currency} {obj.get_price_unit_display()}"


@admin.register(Template)
class TemplateAdmin(ModelAdmin):
    list_display = ["name", "machine", "runs", "seed_strategy", "created_at"]
    list_filter = ["machine__provider", ("machine", MachineFilter)]
    list_select_related = ["machine__provider"]
    search_fields = ["name", "prompt", "description"]
    autocomplete_fields = ["machine"]
    readonly_fields = ["created_by", "created_at"]

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(Wildcard)
class WildcardAdmin(ModelAdmin):
    list_display = ["name", "value_count", "updated_at"]
    search_fields = ["name", "description"]

    @display(description="Values")
    def value_count(self, obj: Wildcard) -> int:
        return len(obj.values) if isinstance(obj.values, list) else 0

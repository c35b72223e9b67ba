"""Catalog section: providers, factory machines, templates and wildcards."""
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import ngettext
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import action, display

from admin_ext.data.admin import DataAdminMixin
from admin_ext.data.resources import (
    MachineResource, ProviderResource, TemplateResource, WildcardResource,
)
from admin_ext.display import KEY_COLOURS, key_status, key_status_html
from admin_ext.filters import MachineFilter
from factory.models import FactoryMachine, Provider, Template, Wildcard
from factory.parameters.describe import describe_schema
from factory.recipes import ImportReport, import_wildcard_files, order_from_template

WILDCARD_FILE_BYTES = 5 * 1024 * 1024


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
class ProviderAdmin(DataAdminMixin, ModelAdmin):
    resource_classes = [ProviderResource]
    list_display = [
        "name", "slug", "display_key", "concurrency_limit", "machine_count",
        "is_active",
    ]
    list_editable = ["concurrency_limit", "is_active"]
    search_fields = ["name", "slug"]
    readonly_fields = ["key_help"]
    fields = ["name", "slug", "key_help", "concurrency_limit", "is_active", "description"]
    inlines = [MachineInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_machines=Count("machines"))

    @display(description="Machines", ordering="n_machines")
    def machine_count(self, obj: Provider) -> int:
        return obj.n_machines

    @display(description="Key", label=KEY_COLOURS)
    def display_key(self, obj: Provider) -> tuple[str, str]:
        return key_status(obj.missing_key)

    @display(description="Key")
    def key_help(self, obj: Provider | None) -> str:
        return key_status_html(obj.missing_key) if obj and obj.pk else "-"


@admin.register(FactoryMachine)
class FactoryMachineAdmin(DataAdminMixin, ModelAdmin):
    resource_classes = [MachineResource]
    list_display = [
        "name", "provider", "endpoint_id", "display_modality", "display_price",
        "is_active",
    ]
    list_filter = ["provider", "modality", "is_active"]
    list_select_related = ["provider"]
    search_fields = ["name", "slug", "endpoint_id"]
    prepopulated_fields = {"slug": ["name"]}
    change_form_outer_before_template = "admin_ext/catalog/machine_summary.html"
    fieldsets = [
        (None, {"fields": [
            "name", "slug", "provider", "endpoint_id", "version", "output_key",
            "modality", "is_active", "description",
        ]}),
        ("Price", {"fields": [
            "price_amount", "price_unit", "price_currency", "concurrency_limit",
        ]}),
        ("Raw model inputs", {"classes": ["collapse"], "fields": [
            "input_schema", "defaults", "aliases", "safety",
        ]}),
    ]

    def render_change_form(
        self, request, context, add=False, change=False, form_url="", obj=None
    ):
        # The page reads first: the inputs as a table above the raw JSON.
        if obj is not None:
            context["schema_rows"] = describe_schema(obj.input_schema, obj.defaults)
            context["machine"] = obj
        return super().render_change_form(request, context, add, change, form_url, obj)

    @display(description="Modality", label=True, ordering="modality")
    def display_modality(self, obj: FactoryMachine) -> str:
        return obj.get_modality_display()

    @display(description="Price", ordering="price_amount")
    def display_price(self, obj: FactoryMachine) -> str:
        return obj.price_label


@admin.register(Template)
class TemplateAdmin(DataAdminMixin, ModelAdmin):
    resource_classes = [TemplateResource]
    list_display = ["name", "machine", "runs", "seed_strategy", "created_at"]
    list_filter = ["machine__provider", ("machine", MachineFilter)]
    list_select_related = ["machine__provider"]
    search_fields = ["name", "prompt", "description"]
    autocomplete_fields = ["machine"]
    readonly_fields = ["created_by", "created_at"]
    actions_detail = ["new_order_detail"]

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def has_new_order_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.has_perm("factory.add_order")

    @action(description="New order from template", url_path="new-order",
            icon="add_shopping_cart", permissions=["new_order"])
    def new_order_detail(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Start a draft order from the template; placing it is separate."""
        order = order_from_template(
            get_object_or_404(Template, pk=object_id), request.user
        )
        self.message_user(request, f"{order} is a new draft.", messages.SUCCESS)
        return HttpResponseRedirect(
            reverse("admin:factory_order_change", args=[order.pk])
        )


def _uploads(files: list) -> list[tuple[str, bytes]]:
    """Name and bytes of each upload, refusing none or oversized ones."""
    if not files:
        raise ValidationError("Choose at least one .txt, .yaml or .json file.")
    for upload in files:
        if upload.size > WILDCARD_FILE_BYTES:
            raise ValidationError(
                f"{upload.name}: {upload.size:,} bytes is over the "
                f"{WILDCARD_FILE_BYTES:,}-byte limit for a wildcard file."
            )
    return [(upload.name, upload.read()) for upload in files]


def _report_message(report: ImportReport, files: int) -> str:
    found = ngettext(
        "%(n)d wildcard from %(files)d file", "%(n)d wildcards from %(files)d files",
        len(report.names),
    ) % {"n": len(report.names), "files": files}
    return (f"Imported {found}: {report.created} created, {report.updated} "
            f"updated, {report.unchanged} unchanged.")


@admin.register(Wildcard)
class WildcardAdmin(DataAdminMixin, ModelAdmin):
    resource_classes = [WildcardResource]
    list_display = ["name", "value_count", "updated_at"]
    search_fields = ["name", "description"]
    actions_list = ["import_list"]

    def has_upload_permission(self, request: HttpRequest) -> bool:
        return self.has_add_permission(request) and self.has_change_permission(request)

    # "import/" is the table import of admin_ext/data; these are dynamicprompts files.
    @action(description="Import wildcard files", url_path="import-files", icon="upload_file",
            permissions=["upload"])
    def import_list(self, request: HttpRequest) -> HttpResponse:
        """Ask for .txt, .yaml or .json files; import them all or none on POST."""
        files = request.FILES.getlist("files")
        error = ""
        if request.method == "POST":
            try:
                report = import_wildcard_files(_uploads(files))
            except ValidationError as exc:
                error = " ".join(exc.messages)
            else:
                self.message_user(
                    request, _report_message(report, len(files)), messages.SUCCESS
                )
                return HttpResponseRedirect(
                    reverse("admin:factory_wildcard_changelist")
                )
        context = {
            **self.admin_site.each_context(request),
            "title": "Import wildcards", "error": error,
            "opts": self.model._meta,
            "changelist_url": reverse("admin:factory_wildcard_changelist"),
        }
        return TemplateResponse(request, "admin_ext/import_wildcards.html", context)

    @display(description="Values")
    def value_count(self, obj: Wildcard) -> int:
        return len(obj.values) if isinstance(obj.values, list) else 0

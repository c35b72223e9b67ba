"""Import and export on the admin's change lists, through import-export.

``DataAdminMixin`` goes first in a ModelAdmin's bases and names its
resource. An upload is checked as a file first (size, encoding, structure,
columns) by ``DataImportForm``; its rows then run as a dry run that shows
each row as new, updated, skipped or invalid with the column and reason,
and writes nothing. Confirming imports every row in one transaction, or
none. Exports take the change list's filters (its query string) or the
rows selected for the "Export selected" action.
"""
from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from import_export.admin import ExportActionMixin, ImportMixin
from unfold.contrib.import_export.forms import ImportForm, SelectableFieldsExportForm

from admin_ext.data.formats import FORMATS
from factory.datafiles import MAX_FILE_BYTES, DataFileError


class DataImportForm(ImportForm):
    """The upload form; refuses a file that cannot be read as a table, or
    whose columns the resource does not take, before any row is tried."""

    def __init__(self, formats: list, resources: list, **kwargs: Any) -> None:
        super().__init__(formats, resources, **kwargs)
        self.formats, self.resources = formats, resources
        self.fields["import_file"].help_text = (
            f"CSV (UTF-8), XLSX or JSON, up to {MAX_FILE_BYTES // (1024 * 1024)} MB."
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        upload, chosen = data.get("import_file"), data.get("format")
        if upload is None or chosen in (None, ""):
            return data
        if upload.size > MAX_FILE_BYTES:
            raise forms.ValidationError(
                f"The file is {upload.size:,} bytes; the limit is {MAX_FILE_BYTES:,}."
            )
        content = upload.read()
        upload.seek(0)
        try:
            dataset = self.formats[int(chosen)]().create_dataset(content)
        except DataFileError as exc:
            self.add_error("import_file", str(exc))
            return data
        resource = self.resources[int(data.get("resource") or 0)]()
        problem = resource.header_problem(list(dataset.headers))
        if problem:
            self.add_error("import_file", problem)
        return data


class DataAdminMixin(ImportMixin, ExportActionMixin):
    """Import (dry run, then all or nothing) and export in CSV, XLSX and JSON."""

    formats = FORMATS
    import_form_class = DataImportForm
    export_form_class = SelectableFieldsExportForm
    import_export_change_list_template = "admin/import_export/change_list_import_export.html"
    change_form_template = None  # no export button on the change form
    show_change_form_export = False
    import_error_display = ("message",)

    def has_import_permission(self, request: HttpRequest) -> bool:
        """import-export's own check (change), plus add where rows are added."""
        creates = any(resource.creates_rows for resource in
                      self.get_import_resource_classes(request))
        return super().has_import_permission(request) and (
            not creates or self.has_add_permission(request)
        )

    def get_import_data_kwargs(self, **kwargs: Any) -> dict[str, Any]:
        """Roll back the confirmed import on any invalid row, not just errors."""
        return {**super().get_import_data_kwargs(**kwargs),
                "rollback_on_validation_errors": True}

    def add_data_read_fail_error_to_form(self, form: forms.Form, e: Exception) -> None:
        if isinstance(e, DataFileError):
            form.add_error("import_file", str(e))
        else:
            super().add_data_read_fail_error_to_form(form, e)

    def process_result(self, result, request: HttpRequest) -> HttpResponse:
        """A confirmed import that failed wrote nothing; show why instead of
        reporting success."""
        if not (result.has_errors() or result.has_validation_errors()):
            return super().process_result(result, request)
        messages.error(request, "Nothing was imported: some rows no longer pass "
                       "their checks. Fix them and upload the file again.")
        context = {
            **self.get_import_context_data(),
            **self.admin_site.each_context(request),
            "title": "Import", "opts": self.model._meta, "result": result,
            "form": self.get_import_form_class(request)(
                self.get_import_formats(), self.get_import_resource_classes(request)
            ),
            "import_error_display": self.import_error_display,
        }
        return TemplateResponse(request, [self.import_template_name], context)

    def get_data_for_export(self, request: HttpRequest, queryset: QuerySet, **kwargs: Any):
        """Native values for every format; the format writes them its way."""
        return super().get_data_for_export(
            request, queryset, **{**kwargs, "force_native_type": True}
        )

    def get_valid_export_item_pks(self, request: HttpRequest) -> list:
        """Only the posted ids still in the filtered list, not every id of
        the table (which import-export would load whole)."""
        posted = [pk for pk in request.POST.getlist("export_items") if pk.isdigit()]
        return list(self.get_export_queryset(request).filter(pk__in=posted)
                    .values_list("pk", flat=True))

    def get_export_filename(self, request: HttpRequest, queryset: QuerySet, file_format) -> str:
        name = self.model._meta.verbose_name_plural.replace(" ", "-")
        return f"{name}-{timezone.now():%Y-%m-%d}.{file_format.get_extension()}"

"""The products grid's side panel: one product's details beside the grid.

A card's click (or Enter) GETs the panel partial into the grid's aside.
Its curation sections (tags, project, notes) post to the edit endpoints
in ``curation.py``, which answer with the section re-rendered from here.
"""
import json
from collections.abc import Callable

from django.contrib.admin import ModelAdmin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse

from factory.models import Product, Project

PANEL_TEMPLATE = "admin_ext/inventory/_partials/panel.html"
SECTION_TEMPLATES = {
    "tags": "admin_ext/inventory/_partials/panel_tags.html",
    "project": "admin_ext/inventory/_partials/panel_project.html",
    "notes": "admin_ext/inventory/_partials/panel_notes.html",
}
Render = Callable[[ModelAdmin, HttpRequest, Product], HttpResponse]
# Sent parameters that the panel shows in rows of their own.
OWN_ROWS = ("prompt", "seed")


def parameter_rows(parameters: object) -> list[tuple[str, str]]:
    """The parameters as sent, as (key, value) text for a definition list.

    Text shows as it is; numbers, booleans, lists and objects as compact
    JSON, so ``true`` and ``"true"`` stay apart.
    """
    if not isinstance(parameters, dict):
        return [("(value)", json.dumps(parameters, ensure_ascii=False))]
    return [
        (key, value if isinstance(value, str)
         else json.dumps(value, ensure_ascii=False))
        for key, value in parameters.items() if key not in OWN_ROWS
    ]


def project_choices(product: Product) -> list[Project]:
    """Open projects to move to, plus the product's own if archived."""
    projects = list(Project.objects.open().only("pk", "name", "is_archived"))
    if product.project and product.project.is_archived:
        projects.append(product.project)
    return projects


def section_context(
    model_admin: ModelAdmin, request: HttpRequest, product: Product
) -> dict:
    """What the panel and its editable sections read."""
    can_curate = model_admin.has_change_permission(request, product)
    return {
        "opts": model_admin.model._meta,
        "product": product,
        "can_curate": can_curate,
        "projects": project_choices(product) if can_curate else [],
    }


def render_section(name: str) -> Render:
    """A renderer of one panel section, for an edit endpoint's answer."""
    def render(
        model_admin: ModelAdmin, request: HttpRequest, product: Product
    ) -> HttpResponse:
        return TemplateResponse(request, SECTION_TEMPLATES[name], {
            **section_context(model_admin, request, product), "saved": True,
        })
    return render


def panel_view(
    model_admin: ModelAdmin, request: HttpRequest, object_id: int
) -> HttpResponse:
    """The panel partial: preview, curation, generation and lineage."""
    product = get_object_or_404(
        model_admin.get_queryset(request).for_panel(), pk=object_id
    )
    item = product.item
    context = {
        **section_context(model_admin, request, product),
        "item": item,
        "order": item.order,
        "retries": list(item.retries.all()),
        "parameters": parameter_rows(product.parameters),
        "can_order_again": model_admin.has_order_again_permission(request),
    }
    return TemplateResponse(request, PANEL_TEMPLATE, context)

"""The sweep comparison page: an order's products on two chosen axes.

``?x=&y=&z=&page=`` name the axes by their first field; the PNG export
takes the same parameters. Both need the view permission on orders;
curating from the cells needs the change permission on products, checked
again by the curation endpoints the cards post to.
"""
import io
from collections import Counter
from dataclasses import dataclass, field
from functools import partial

from django.contrib import messages
from django.contrib.admin import ModelAdmin
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.http import urlencode
from django.utils.text import slugify

from factory.comparison import (
    Axis, Cell, Comparison, ComparisonError, Page, comparison_items, default_axes,
    find_axes, pick_axis, pivot,
)
from factory.media.contact_sheet import (
    SheetCell, SheetSpec, SheetTooLarge, plan_layout, render_contact_sheet,
)
from factory.models import Order, OrderItem, OrderStatus, Product

TEMPLATE = "admin_ext/orders/compare.html"
MAX_PAGE_CELLS = 1_000
NOTHING_TO_COMPARE = (
    "Nothing to compare: every item of this order was made with the same "
    "values. Sweep a field (or write prompt variants such as {fox|heron}) "
    "to get a grid."
)


@dataclass
class Selection:
    """The axes a request asked for, with what had to be corrected."""

    x: Axis | None
    y: Axis | None
    z: Axis | None
    page: int = 0
    problems: list[str] = field(default_factory=list)


def comparison_urls(model_admin: ModelAdmin) -> list[URLPattern]:
    """The PNG export, to put before the admin's own URLs."""
    wrap = model_admin.admin_site.admin_view
    return [
        path("<int:object_id>/compare/sheet/", wrap(partial(sheet_view, model_admin)),
             name="factory_order_compare_sheet"),
    ]


def _order(
    model_admin: ModelAdmin, request: HttpRequest, object_id: int | str
) -> Order:
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    if not str(object_id).isdigit():
        raise Http404("No such order.")
    order = get_object_or_404(Order.objects.select_related("machine"), pk=object_id)
    if not model_admin.has_view_permission(request, order):
        raise PermissionDenied
    return order


def select_axes(request: HttpRequest, axes: list[Axis]) -> Selection:
    """The axes named in the query string, defaults where none or a bad one."""
    params = request.GET
    problems = []

    def chosen(name: str) -> Axis | None:
        key = params.get(name, "")
        axis = pick_axis(axes, key)
        if key and axis is None:
            problems.append(f"This order has no swept field {key!r}; "
                            f"{name.upper()} was reset.")
        return axis

    x, y, z = chosen("x"), chosen("y"), chosen("z")
    if "x" not in params:
        x, y = default_axes(axes)
    if x is None:
        x = default_axes(axes)[0]
    taken = {x.key} if x else set()
    if y is not None and y.key in taken:
        problems.append("X and Y were the same field; Y was cleared.")
        y = None
    taken |= {y.key} if y else set()
    if z is not None and z.key in taken:
        problems.append("Z repeated X or Y; it was cleared.")
        z = None
    page = params.get("page", "1")
    index = int(page) - 1 if page.isdigit() else 0
    index = min(max(index, 0), len(z) - 1) if z else 0
    return Selection(x, y, z, index, problems)


def _query(selection: Selection, page: int | None = None) -> str:
    params = {
        name: axis.key for name, axis in
        (("x", selection.x), ("y", selection.y), ("z", selection.z)) if axis
    }
    if selection.z:
        params["page"] = (selection.page if page is None else page) + 1
    return urlencode(params)


def compare_page(
    model_admin: ModelAdmin, request: HttpRequest, object_id: int | str
) -> HttpResponse:
    """The grid page, or a clear sentence when there is nothing to pivot."""
    order = _order(model_admin, request, object_id)
    items = comparison_items(order)
    axes = find_axes(items)
    selection = select_axes(request, axes)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Compare {order}",
        "order": order,
        "opts": model_admin.model._meta,
        "product_opts": Product._meta,
        "change_url": reverse("admin:factory_order_change", args=[order.pk]),
        "axes": axes,
        "selection": selection,
        "item_count": len(items),
    }
    if order.status == OrderStatus.DRAFT:
        context["message"] = ("This order is a draft: place it, and its "
                              "products can be compared here.")
    elif selection.x is None:
        context["message"] = NOTHING_TO_COMPARE
    else:
        context.update(_grid_context(request, items, axes, selection, order))
    return TemplateResponse(request, TEMPLATE, context)


def _grid_context(
    request: HttpRequest, items: list[OrderItem], axes: list[Axis],
    selection: Selection, order: Order,
) -> dict:
    comparison = pivot(items, axes, selection.x, selection.y, selection.z)
    page = comparison.pages[selection.page]
    sheet_url = reverse("admin:factory_order_compare_sheet", args=[order.pk])
    context = {
        "comparison": comparison,
        "page": page,
        "tabs": [
            {"header": p.header, "url": "?" + _query(selection, n),
             "current": n == selection.page}
            for n, p in enumerate(comparison.pages)
        ] if selection.z else [],
        "sheet_url": f"{sheet_url}?{_query(selection)}",
        # The card endpoints check the same permission on every post.
        "can_curate": request.user.has_perm("factory.change_product"),
        "product_count": sum(len(c.products) for row in page.rows for c in row.cells),
        "sheet_problem": _sheet_problem(order, comparison, page),
    }
    if page.cell_count > MAX_PAGE_CELLS:
        context["page"] = None
        context["message"] = (
            f"{selection.x.label} × {selection.y.label if selection.y else '1'} "
            f"makes {page.cell_count:,} cells; the page shows at most "
            f"{MAX_PAGE_CELLS:,}. Choose a third axis to split it into pages."
        )
    return context


def _sheet_problem(order: Order, comparison: Comparison, page: Page) -> str:
    """Why this page cannot be exported, measured before any file is read."""
    try:
        plan_layout(sheet_spec(order, comparison, page))
    except SheetTooLarge as exc:
        return str(exc)
    return ""


def sheet_spec(order: Order, comparison: Comparison, page: Page) -> SheetSpec:
    """The page of the grid as the contact sheet draws it."""
    x, y, z = comparison.x, comparison.y, comparison.z
    subtitle = f"X: {x.label}" + (f"   ·   Y: {y.label}" if y else "")
    if z and page.header:
        subtitle += f"   ·   {z.label}: {page.header.title}"
    machines = "machine" in x.fields + (y.fields if y else ()) + (
        z.fields if z else ())
    return SheetSpec(
        title=str(order) if machines else f"{order} · {order.machine.name}",
        subtitle=subtitle,
        columns=[v.label for v in x.values],
        rows=[row.header.label if row.header else "" for row in page.rows],
        cells=[[_sheet_cell(cell) for cell in row.cells] for row in page.rows],
    )


def _sheet_cell(cell: Cell) -> SheetCell:
    """Its thumbnails; what its other items are doing, when they show none."""
    thumbnails = tuple(p.media.thumbnail.name for p in cell.products
                       if p.media.thumbnail)
    states = Counter(item.get_status_display().lower() for item in cell.waiting)
    return SheetCell(thumbnails, note=", ".join(
        f"{count} {state}" if thumbnails else state
        for state, count in sorted(states.items())))


def sheet_filename(order: Order, selection: Selection) -> str:
    """order-<id>-<x>-by-<y>.png, with the page of a third axis."""
    name = f"order-{order.pk}-{slugify(selection.x.label)}"
    if selection.y:
        name += f"-by-{slugify(selection.y.label)}"
    if selection.z:
        name += f"-{slugify(selection.z.label)}-{selection.page + 1}"
    return f"{name}.png"


def sheet_view(
    model_admin: ModelAdmin, request: HttpRequest, object_id: int
) -> HttpResponse:
    """The chosen page of the grid as one labelled PNG download."""
    order = _order(model_admin, request, object_id)
    items = comparison_items(order)
    axes = find_axes(items)
    selection = select_axes(request, axes)
    compare_url = reverse("admin:factory_order_compare_detail", args=[order.pk])
    try:
        if selection.x is None:
            raise ComparisonError(NOTHING_TO_COMPARE)
        comparison = pivot(items, axes, selection.x, selection.y, selection.z)
        page = comparison.pages[selection.page]
        png = render_contact_sheet(sheet_spec(order, comparison, page))
    except (ComparisonError, SheetTooLarge) as exc:
        messages.error(request, f"The sheet was not made. {exc}")
        return HttpResponseRedirect(f"{compare_url}?{_query(selection)}")
    return FileResponse(
        io.BytesIO(png), as_attachment=True, content_type="image/png",
        filename=sheet_filename(order, selection),
    )

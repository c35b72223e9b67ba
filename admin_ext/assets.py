"""Static files the admin loads on every page, named for UNFOLD's lists."""
from django.http import HttpRequest
from django.templatetags.static import static


def order_form_css(request: HttpRequest) -> str:
    """The order form's layout and the jsonform inputs under unfold."""
    return static("admin_ext/order_form.css")


def editors_css(request: HttpRequest) -> str:
    """The prompt, tokens and sweep editors."""
    return static("admin_ext/editors.css")


def editors_js(request: HttpRequest) -> str:
    """The editors' Alpine components, registered on alpine:init."""
    return static("admin_ext/editors.js")


def progress_css(request: HttpRequest) -> str:
    """Progress bars and the live order panel."""
    return static("admin_ext/progress.css")


def machines_css(request: HttpRequest) -> str:
    """The machine picker and the catalog's machine pages."""
    return static("admin_ext/machines.css")


def picker_js(request: HttpRequest) -> str:
    """The machine picker's instant search."""
    return static("admin_ext/picker.js")


def inventory_css(request: HttpRequest) -> str:
    """Cards, overlays and toolbar of the products grid."""
    return static("admin_ext/inventory.css")


def panel_css(request: HttpRequest) -> str:
    """The grid's side panel and full-screen lightbox."""
    return static("admin_ext/panel.css")


def curation_js(request: HttpRequest) -> str:
    """The grid's selection, keyboard curation and refused-edit messages."""
    return static("admin_ext/curation.js")


def compare_css(request: HttpRequest) -> str:
    """The sweep comparison page: axis pickers and the X/Y table."""
    return static("admin_ext/compare.css")


def panel_js(request: HttpRequest) -> str:
    """The grid's side panel, lightbox zoom and tag input."""
    return static("admin_ext/panel.js")


def spend_css(request: HttpRequest) -> str:
    """Budget banners and the spend figures on the dashboard and reports."""
    return static("admin_ext/spend.css")

"""Static files of the products grid, named for UNFOLD's lists."""
from django.http import HttpRequest
from django.templatetags.static import static


def inventory_css(request: HttpRequest) -> str:
    """Cards, overlays and toolbar of the products grid."""
    return static("admin_ext/inventory.css")


def curation_js(request: HttpRequest) -> str:
    """The grid's selection, keyboard curation and refused-edit messages."""
    return static("admin_ext/curation.js")

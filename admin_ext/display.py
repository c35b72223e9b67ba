"""Shared column renderers: thumbnails, state badges, progress bars."""
from django.template.loader import render_to_string
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from factory.models import ItemStatus, OrderStatus
from factory.production.watching import Tally

ORDER_COLOURS = {
    OrderStatus.DRAFT.label: "",
    OrderStatus.PLACED.label: "info",
    OrderStatus.RUNNING.label: "primary",
    OrderStatus.DONE.label: "success",
    OrderStatus.DONE_WITH_FAILURES.label: "warning",
    OrderStatus.CANCELLED.label: "",
}
ITEM_COLOURS = {
    ItemStatus.PENDING.label: "",
    ItemStatus.SUBMITTING.label: "info",
    ItemStatus.SUBMITTED.label: "primary",
    ItemStatus.COLLECTING.label: "primary",
    ItemStatus.COMPLETED.label: "success",
    ItemStatus.FAILED.label: "danger",
    ItemStatus.CANCELLED.label: "",
    ItemStatus.SUBMIT_UNKNOWN.label: "warning",
}

KEY_COLOURS = {"configured": "success", "missing": "warning"}


def key_status(missing_key: str | None) -> tuple[str, str]:
    """A provider's key state for ``@display(label=KEY_COLOURS)``."""
    if missing_key:
        return "missing", f"needs {missing_key}"
    return "configured", "configured"


def key_status_html(missing_key: str | None) -> str:
    """The key badge, with how to fix a missing key."""
    return render_to_string(
        "admin_ext/catalog/key_status.html", {"missing_key": missing_key}
    )


def thumbnail_html(url: str, alt: str, size: int = 96) -> str:
    """A lazily loaded square thumbnail that links to itself."""
    if not url:
        return "-"
    return format_html(
        '<img src="{}" alt="{}" loading="lazy" width="{}" height="{}" '
        'class="rounded-default object-cover bg-base-100" '
        'style="width:{}px;height:{}px">',
        url, alt, size, size, size, size,
    )


def progress_html(tally: Tally | None, large: bool = False) -> str:
    """A bar by state (completed, failed, cancelled, in flight, pending).

    Plain string formatting, not a template: the orders list shows a
    hundred of these a page (the numbers are integers, nothing to escape).
    """
    if tally is None or not tally.total:
        return "-"
    parts = [
        ("completed", tally.completed), ("failed", tally.failed),
        ("cancelled", tally.cancelled), ("in-flight", tally.in_flight),
    ]
    segments = "".join(
        f'<span class="af-seg-{kind}" style="width:{tally.share(n):.2f}%"></span>'
        for kind, n in parts if n
    )
    caption = "" if large else (
        f'<div class="af-caption af-num">{tally.finished} / {tally.total}'
        + (f' · <span class="text-red-600 dark:text-red-400">{tally.failed} failed</span>'
           if tally.failed else "")
        + "</div>"
    )
    return mark_safe(
        '<div class="af-progress" style="min-width:9rem" title="'
        f"{tally.completed} completed, {tally.failed} failed, {tally.cancelled} cancelled, "
        f'{tally.in_flight} in flight, {tally.pending} pending">'
        f'<div class="af-bar{" af-bar--lg" if large else ""}" role="progressbar" '
        'aria-label="Finished items" aria-valuemin="0" '
        f'aria-valuemax="{tally.total}" aria-valuenow="{tally.finished}">'
        f"{segments}</div>{caption}</div>"
    )

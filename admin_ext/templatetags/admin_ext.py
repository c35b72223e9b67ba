"""Template helpers for the dashboard, the orders list and the order page."""
from collections.abc import Iterable
from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.timesince import timesince

from admin_ext.cards import CardUrls, card_html, cards_html
from admin_ext.lean import cached_label as display_for_label
from admin_ext.display import ITEM_COLOURS, ORDER_COLOURS, progress_html
from factory.models import Order, OrderItem
from factory.production.watching import CLOSED, Tally

register = template.Library()


@register.simple_tag
def order_progress(order: Order) -> str:
    """The same progress bar as the orders list, from ``order.tally``."""
    return progress_html(getattr(order, "tally", None))


@register.simple_tag
def tally_bar(tally: Tally, large: bool = False) -> str:
    return progress_html(tally, large=large)


@register.simple_tag
def order_status_label(order: Order) -> SafeString:
    """The order's state as the same coloured label as the list column."""
    return display_for_label(order.get_status_display(), "-", ORDER_COLOURS)


@register.simple_tag
def item_status_label(item: OrderItem) -> SafeString:
    return display_for_label(item.get_status_display(), "-", ITEM_COLOURS)


@register.simple_tag
def open_order_ids(orders: Iterable[Order]) -> str:
    """Comma-separated ids of placed or running orders, for the list poller."""
    return ",".join(
        str(order.pk) for order in orders
        if order.status not in CLOSED and getattr(order, "tally", None)
        and order.tally.total
    )


@register.simple_tag
def order_progress_panel(order: Order) -> str:
    """The order page's live panel, rendered in place on first load."""
    # Tag libraries load while unfold's admin module is still importing,
    # so the admin package behind the view is imported on first use.
    from admin_ext.orders.progress import render_panel

    return mark_safe(render_panel(order))


@register.filter
def swept(field_values: dict) -> list[tuple[str, object]]:
    """Swept values but the prompt, which the items table shows already."""
    return [(k, v) for k, v in (field_values or {}).items() if k != "prompt"]


@register.filter
def times(count: int) -> range:
    return range(count or 0)


@register.filter
def duration(seconds: float | None) -> str:
    """Seconds as a short human duration: 45 s, 12 min, 2 h 5 min."""
    if seconds is None:
        return ""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


@register.filter
def ago(moment: datetime | None) -> str:
    """How long ago, short: just now, 40 s ago, 12 min ago, 3 h ago."""
    if moment is None:
        return ""
    seconds = (timezone.now() - moment).total_seconds()
    if seconds < 10:
        return "just now"
    if seconds < 86400:
        return f"{duration(seconds)} ago"
    return f"{timesince(moment)} ago"


@register.filter
def per_minute(rate: float | None) -> str:
    """Throughput with sensible precision: 0.4, 12.5, 240."""
    if rate is None:
        return ""
    return f"{rate:.1f}" if rate < 100 else f"{rate:.0f}"


@register.inclusion_tag("admin_ext/orders/_partials/spend.html")
def order_spend_panel(order: Order) -> dict:
    """Estimate versus actual for the order page, in one query."""
    from factory.spend_reports import order_spend

    return {"order": order, "spend": order_spend(order)}


@register.simple_tag
def product_cards(products: Iterable, opts, can_curate: bool) -> SafeString:
    """A page of the inventory grid: every card, the URLs reversed once."""
    return cards_html(products, opts, can_curate)


@register.simple_tag(takes_context=True)
def product_card(context, product, opts, can_curate: bool) -> SafeString:
    """One product's card, as the grid shows it; the URLs reversed once a page."""
    urls = context.render_context.get(CardUrls)
    if urls is None:
        urls = context.render_context[CardUrls] = CardUrls(opts)
    return card_html(product, urls, can_curate)

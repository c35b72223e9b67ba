"""Template helpers for the dashboard."""
from django import template

from admin_ext.display import progress_html
from factory.models import Order

register = template.Library()


@register.simple_tag
def order_progress(order: Order) -> str:
    """The same progress bar as the orders list."""
    return progress_html(order.n_done, order.n_failed, order.item_count)

"""The products list's active filters as chips."""
from django import template
from django.contrib.admin.views.main import ChangeList

from admin_ext.filter_chips import Chip, clear_all_url, filter_chips

register = template.Library()


@register.simple_tag
def product_filter_chips(changelist: ChangeList) -> dict[str, list[Chip] | str]:
    """The chips and the "Clear all" link for ``filter_chips.html``."""
    return {"chips": filter_chips(changelist), "clear_url": clear_all_url(changelist)}

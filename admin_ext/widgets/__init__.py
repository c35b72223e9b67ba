"""Visual editors for an order's prompt, tokens and sweeps."""
from admin_ext.widgets.editors import PromptWidget, SweepsWidget, TokensWidget
from admin_ext.widgets.fields import sweepable_fields

__all__ = ["PromptWidget", "SweepsWidget", "TokensWidget", "sweepable_fields"]

"""The prompt, tokens and sweep editors as the order form builds them."""
from django.forms import Widget

from admin_ext.widgets import (
    PromptWidget, SweepsWidget, TokensWidget, sweepable_fields,
)
from factory.models import FactoryMachine, Wildcard

EDITED_FIELDS = ("prompt", "tokens", "sweeps")


def editor_widgets(machine: FactoryMachine | None) -> dict[str, Widget]:
    """Widgets by field name for an order on ``machine``."""
    wildcards = list(Wildcard.objects.values_list("name", flat=True))
    return {
        "prompt": PromptWidget(
            wildcards, parameters=machine.accepted_keys if machine else ()),
        "tokens": TokensWidget(),
        "sweeps": SweepsWidget(sweepable_fields(machine) if machine else []),
    }

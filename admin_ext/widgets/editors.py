"""Form widgets that edit an order's prompt, tokens and sweeps visually.

Each one renders the field's own textarea (so the submitted value is the
engine's format and the server side is unchanged) inside an Alpine.js
component from ``static/admin_ext/editors.js``. Data reaches the script
through escaped ``data-*`` attributes, never through inline scripts. Every
edit writes the textarea and fires a bubbling ``input`` event on it, so a
surrounding form's htmx preview sees the change.
"""
import json
from collections.abc import Iterable
from typing import Any

from unfold.widgets import UnfoldAdminTextareaWidget

# The largest list a numeric range may expand to in the sweep editor.
RANGE_CAP = 1000


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class _EditorWidget(UnfoldAdminTextareaWidget):
    """A textarea wrapped in an editor; subclasses name their template.

    ``swap_oob`` renders the editor as an htmx out-of-band swap of the one
    already on the page (the order form re-draws it for a new machine).
    """

    swap_oob = False

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs={"rows": 6, **(attrs or {})})

    def editor_data(self) -> dict[str, str]:
        """``data-*`` attributes for the editor, values already JSON."""
        return {}

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None):
        context = super().get_context(name, value, attrs)
        context["editor_data"] = self.editor_data()
        context["swap_oob"] = self.swap_oob
        return context


class SweepsWidget(_EditorWidget):
    """The sweep editor for ``Order.sweeps``.

    ``fields`` lists what may be swept, each ``{"name", "label", "type",
    "enum", "minimum", "maximum"}`` as built by ``sweepable_fields``.
    ``runs_field`` names the form's runs input, read live for the total.
    """

    template_name = "admin_ext/widgets/sweeps.html"

    def __init__(self, fields: Iterable[dict[str, Any]] = (), *,
                 runs_field: str = "runs",
                 attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs)
        self.fields = list(fields)
        self.runs_field = runs_field

    def editor_data(self) -> dict[str, str]:
        return {"fields": _json(self.fields), "cap": str(RANGE_CAP),
                "runs-field": self.runs_field}


class PromptWidget(_EditorWidget):
    """The prompt template editor for ``Order.prompt``.

    ``wildcards`` are the names offered after ``__``; ``parameters`` are the
    machine's parameter names, which a ``${name}`` may also read;
    ``tokens_field`` names the form's tokens field, read live.
    """

    template_name = "admin_ext/widgets/prompt.html"

    def __init__(self, wildcards: Iterable[str] = (), *,
                 parameters: Iterable[str] = (), tokens_field: str = "tokens",
                 attrs: dict[str, Any] | None = None) -> None:
        super().__init__({"rows": 4, "spellcheck": "false", **(attrs or {})})
        self.wildcards = sorted(wildcards)
        self.parameters = list(parameters)
        self.tokens_field = tokens_field

    def editor_data(self) -> dict[str, str]:
        return {"wildcards": _json(self.wildcards),
                "parameters": _json(self.parameters),
                "tokens-field": self.tokens_field}


class TokensWidget(_EditorWidget):
    """Key/value rows for ``Order.tokens``, the values of ``${name}``."""

    template_name = "admin_ext/widgets/tokens.html"

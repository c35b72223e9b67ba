"""Admin lists without per-row template work.

unfold 0.91 renders a changelist row by row, and three things in it cost
a template render per row (or per cell) whose output hardly changes:

- ``items_for_result`` recomputes every column header for every row (the
  select-all checkbox widget rendered again each time) and translates each
  title again in every cell: the headers are the same for the whole list,
  so they are computed and translated once per list;
- each row's selection checkbox renders the checkbox widget's templates:
  ``LeanAdminMixin`` renders it once per language and fills in the id;
- each coloured label (``@display(label=...)``) renders
  ``unfold/helpers/display_label.html``: the few distinct labels of a list
  are rendered once each and kept (a label is its text and its colour).

- a read-only JSON field is highlighted by pygments, which builds two
  formatters and their style sheets for every field: an order page shows
  a dozen, mostly the same few values, so each distinct value is
  highlighted once and kept.

The markup is the same as unfold's: only the repetition goes.
"""
import json
from functools import lru_cache
from typing import Any, Iterator

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import Model
from django.utils.functional import Promise
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language

_VALUE = "af-list-checkbox-value"


@lru_cache(maxsize=32)
def _checkbox_parts(language: str | None) -> tuple[str, str]:
    from unfold.admin import checkbox

    head, _, tail = str(checkbox.render(ACTION_CHECKBOX_NAME, _VALUE)).partition(_VALUE)
    return head, tail


def checkbox_html(pk: Any) -> SafeString:
    """unfold's row selection checkbox for one object."""
    head, tail = _checkbox_parts(get_language())
    return mark_safe(f"{head}{escape(str(pk))}{tail}")


class LeanAdminMixin:
    """For an unfold ModelAdmin: the row checkbox without a template render,
    and the options unfold's templates ask for on every row or field.

    unfold 0.91's templates read ``list_sections`` (every list row) and
    ``conditional_fields`` (every form field) though its ModelAdmin does not
    define them; each miss makes the template engine list the admin's
    attributes (``dir()``) to tell a missing attribute from an index. Empty,
    they mean what their absence meant.
    """

    list_sections: tuple = ()
    conditional_fields: dict = {}

    def action_checkbox(self, obj: Model) -> str:
        return checkbox_html(obj.pk)


def _install_checkbox_description() -> None:
    from unfold.admin import ModelAdmin

    LeanAdminMixin.action_checkbox.short_description = (
        ModelAdmin.action_checkbox.short_description)


def _freeze(label: Any) -> Any:
    if isinstance(label, dict):
        return tuple(sorted((str(key), str(value)) for key, value in label.items()))
    return label


# (text, empty display, colours) -> the rendered label; a list shows few.
_LABELS: dict[tuple, SafeString] = {}
MAX_LABELS = 512


def cached_label(value: Any, empty_value_display: str, label: Any) -> SafeString:
    """``unfold.utils.display_for_label``, rendered once per distinct label."""
    from unfold import utils

    try:
        key = (value, str(empty_value_display), _freeze(label))
        html = _LABELS.get(key)
    except TypeError:  # a list of labels: not kept
        return utils.display_for_label(value, empty_value_display, label)
    if html is None:
        if len(_LABELS) >= MAX_LABELS:
            _LABELS.clear()
        html = _LABELS[key] = utils.display_for_label(value, empty_value_display, label)
    return html


# (JSON text, encoder) -> its highlighted display.
_PRETTY: dict[tuple, SafeString | None] = {}
MAX_PRETTY = 256


def cached_prettify_json(data: Any, encoder: Any) -> SafeString | None:
    """``unfold.utils.prettify_json``, highlighted once per distinct value."""
    from unfold import utils

    try:
        key = (json.dumps(data, sort_keys=True, cls=encoder), encoder)
    except (TypeError, ValueError):
        return utils.prettify_json(data, encoder)
    if key not in _PRETTY:
        if len(_PRETTY) >= MAX_PRETTY:
            _PRETTY.clear()
        _PRETTY[key] = utils.prettify_json(data, encoder)
    return _PRETTY[key]


def _translated(header: dict) -> dict:
    """A header whose lazy title is translated once, not once per row."""
    text = header.get("text")
    if isinstance(text, Promise):
        header = {**header, "text": str(text)}
    return header


def install() -> None:
    """Patch unfold's list rendering to reuse headers and labels (at app ready)."""
    from unfold import fields as unfold_fields
    from unfold.templatetags import unfold_list

    original = unfold_list.result_headers
    if getattr(original, "reuses_headers", False):
        return

    def result_headers(cl: Any) -> Iterator[dict]:
        headers = getattr(cl, "_af_headers", None)
        if headers is None:
            headers = cl._af_headers = [_translated(header) for header in original(cl)]
        return iter(headers)

    result_headers.reuses_headers = True
    unfold_list.result_headers = result_headers
    unfold_list.display_for_label = cached_label
    unfold_fields.prettify_json = cached_prettify_json
    _install_checkbox_description()

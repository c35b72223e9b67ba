"""Active list filters shown as chips, each removable on its own.

A filter names itself by having ``chips(changelist)`` return ``Chip``s;
this module gathers them and builds the links, and needs nothing but the
change list, so template tags can load it before the admin exists.
"""
from dataclasses import dataclass

from django.contrib.admin.views.main import SEARCH_VAR, ChangeList


@dataclass(frozen=True)
class Chip:
    """One active filter above the grid and the link that removes it."""

    label: str
    remove_url: str


def remove_params(changelist: ChangeList, *params: str) -> str:
    """The current query string without ``params`` (exact names)."""
    return changelist.get_query_string({param: None for param in params})


def filter_chips(changelist: ChangeList) -> list[Chip]:
    """Every active filter and the search, in the sidebar's order."""
    chips = [chip for spec in changelist.filter_specs
             for chip in getattr(spec, "chips", lambda cl: [])(changelist)]
    if changelist.query:
        chips.append(Chip(f"Search: “{changelist.query}”",
                          remove_params(changelist, SEARCH_VAR)))
    return chips


def clear_all_url(changelist: ChangeList) -> str:
    """Every filter and the search removed; the sort order kept."""
    params = [param for spec in changelist.filter_specs
              for param in spec.expected_parameters()]
    return remove_params(changelist, *params, SEARCH_VAR)

"""Lists that stay fast at any size: counts that never read the whole table.

An exact ``COUNT(*)`` reads every row it counts. At 100,000 products that
costs more than the page itself, so a list is counted one of two ways:

- unfiltered on PostgreSQL: the planner's estimate (``pg_class.reltuples``,
  kept by autovacuum), shown as "about 100,000"; below ``EXACT_BELOW`` rows
  the same query counts exactly instead;
- filtered, searched, or on another database: counted only up to a bound
  (``LIMIT n+1``) a few pages past the one asked for, shown as "1,320+"
  when there are more.

A page's rows are fetched through a subquery of their ids, so skipping to a
deep page walks an index of ids instead of joining every skipped row.
"""
from functools import cached_property
from typing import Any

from django.contrib.admin.views.main import PAGE_VAR
from django.core.paginator import Page, Paginator
from django.db import connections
from django.db.models import QuerySet
from django.db.models.sql import Query
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.formats import number_format

# Tables smaller than this are counted exactly: it is cheap and the estimate
# of a small, busy table can be far off.
EXACT_BELOW = 10_000
# A bounded count reaches this many pages past the page asked for.
PAGES_AHEAD = 10
# At least this many rows are counted before a count is called "n+".
MIN_BOUND = 1_000

ESTIMATE_SQL = (
    "SELECT CASE WHEN c.reltuples < %s THEN ({count}) ELSE c.reltuples::bigint END,"
    " c.reltuples >= %s FROM pg_class c WHERE c.oid = %s::regclass"
)


def table_estimate(queryset: QuerySet) -> tuple[int, bool]:
    """Rows in the queryset's whole table in one query; and whether estimated.

    Only for PostgreSQL. The exact count inside the CASE runs only when the
    planner's figure is small or unknown (-1 before the first ANALYZE).
    """
    table = queryset.model._meta.db_table
    connection = connections[queryset.db]
    quoted = connection.ops.quote_name(table)
    sql = ESTIMATE_SQL.format(count=f"SELECT COUNT(*) FROM {quoted}")
    with connection.cursor() as cursor:
        cursor.execute(sql, [EXACT_BELOW, EXACT_BELOW, quoted])
        total, estimated = cursor.fetchone()
    return int(total), bool(estimated)


def is_whole_table(queryset: QuerySet) -> bool:
    """True if the queryset has no WHERE, no DISTINCT and no slice."""
    query = queryset.query
    return not (query.where or query.distinct or query.is_sliced or query.combinator)


def rounded(number: int) -> int:
    """Two significant figures: an estimate should not look exact."""
    if number < 100:
        return number
    scale = 10 ** (len(str(number)) - 2)
    return round(number / scale) * scale


class EstimatedCountPaginator(Paginator):
    """A paginator whose count is estimated or bounded, never a full scan."""

    template_name = "admin_ext/paging/pagination.html"

    def __init__(self, object_list: QuerySet, per_page: int, orphans: int = 0,
                 allow_empty_first_page: bool = True, page_hint: int = 1) -> None:
        super().__init__(object_list, per_page, orphans, allow_empty_first_page)
        self.page_hint = max(page_hint, 1)
        self.estimated = False
        self.capped = False

    @property
    def bound(self) -> int:
        """How many rows a bounded count reads at most."""
        return max(MIN_BOUND, (self.page_hint + PAGES_AHEAD) * self.per_page)

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if connections[queryset.db].vendor == "postgresql" and is_whole_table(queryset):
            total, self.estimated = table_estimate(queryset)
            return total
        bound = self.bound
        total = queryset.order_by()[: bound + 1].count()
        self.capped = total > bound
        return total

    @property
    def exact(self) -> bool:
        return not (self.estimated or self.capped)

    def count_text(self) -> str:
        """"42", "about 100,000" or "1,320+": the count, saying how sure it is."""
        if self.estimated:
            return f"about {number_format(rounded(self.count), force_grouping=True)}"
        if self.capped:
            return f"{number_format(self.bound, force_grouping=True)}+"
        return number_format(self.count, force_grouping=True)

    def count_label(self) -> str:
        """"42 products", "about 100,000 products" or "1,320+ products"."""
        opts = self.object_list.model._meta
        noun = opts.verbose_name if self.count == 1 else opts.verbose_name_plural
        return f"{self.count_text()} {noun}"

    def page(self, number: Any) -> Page:
        """The page's rows, picked by id first so skipped rows are not joined.

        The ids come from the filtered, ordered list; the rows are then read
        by id alone, so neither the filter nor the joins run twice.
        """
        number = self.validate_number(number)
        bottom, top = (number - 1) * self.per_page, number * self.per_page
        queryset = self.object_list
        query = queryset.query
        if (query.annotations or query.distinct or query.extra or query.combinator
                or not connections[queryset.db].features.allow_sliced_subqueries_with_in):
            return self._get_page(queryset[bottom:top], number, self)
        ids = queryset.values("pk")[bottom:top]
        return self._get_page(unfiltered(queryset).filter(pk__in=ids), number, self)


def unfiltered(queryset: QuerySet) -> QuerySet:
    """The queryset's class, related rows, columns and order, with no WHERE."""
    old, fresh = queryset.query, Query(queryset.model)
    fresh.select_related = old.select_related
    fresh.deferred_loading = old.deferred_loading
    fresh.order_by = old.order_by
    fresh.extra_order_by = old.extra_order_by
    fresh.default_ordering = old.default_ordering
    fresh.standard_ordering = old.standard_ordering
    clone = queryset.all()
    clone.query = fresh
    return clone


def page_number(request: HttpRequest) -> int:
    """The page asked for in the admin's ``?p=``; 1 if absent or malformed."""
    try:
        return int(request.GET.get(PAGE_VAR, 1))
    except ValueError:
        return 1


def is_changelist(request: HttpRequest) -> bool:
    """True if the request is for a model's list page in the admin."""
    match = request.resolver_match
    return bool(match and match.url_name and match.url_name.endswith("_changelist"))


class EstimatedCountMixin:
    """For a ModelAdmin: count with ``EstimatedCountPaginator``, honestly shown."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False

    def get_paginator(self, request: HttpRequest, queryset: QuerySet, per_page: int,
                      orphans: int = 0, allow_empty_first_page: bool = True):
        return self.paginator(queryset, per_page, orphans, allow_empty_first_page,
                              page_hint=page_number(request))

    def changelist_view(self, request: HttpRequest, extra_context=None):
        """Say "All about 100,000 products selected", not a false exact count."""
        response = super().changelist_view(request, extra_context)
        if isinstance(response, TemplateResponse) and response.context_data:
            cl = response.context_data.get("cl")
            paginator = getattr(cl, "paginator", None)
            if isinstance(paginator, EstimatedCountPaginator) and not paginator.exact:
                response.context_data["selection_note_all"] = (
                    f"All {paginator.count_label()} selected"
                )
        return response

"""The products list's filters, each able to name itself as a chip.

Every filter here lives in the URL, so a filtered grid can be shared, and
has ``chips(changelist)``: the labels shown above the grid, each with the
query string that drops it and keeps the rest. Choice lists hold only
what has products, found with one index probe per machine, provider,
project or tag rather than a scan of the products table.
"""
import datetime
import re
from collections.abc import Iterator

from django import forms
from django.contrib import messages
from django.contrib.admin.views.main import ChangeList
from django.core.validators import EMPTY_VALUES
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from unfold.contrib.filters.admin import (
    BooleanRadioFilter, ChoicesCheckboxFilter, MultipleDropdownFilter,
    RadioFilter, RangeDateFilter, RelatedDropdownFilter, TextFilter,
)
from unfold.utils import parse_date_str
from unfold.widgets import UnfoldAdminTextInputWidget

from admin_ext.filter_chips import Chip, remove_params
from factory.inventory_query import (
    SEED_LIMIT, SEPARATOR, Condition, parameter_keys, parse_conditions,
    split_expressions,
)
from factory.models import FactoryMachine, Order, Product, Project, Provider, Tag

PARAMETER_TEMPLATE = "admin_ext/inventory/filters/parameter.html"
SUGGESTED_KEYS = 24
PARAMETER_HELP = (f"key=value, key>=3 (also <=, >, <) or key 20..40; "
                  f"join several with “{SEPARATOR}”.")


def _warn(request: HttpRequest, text: str) -> None:
    """Show ``text`` once on the page, as admin messages are shown."""
    shown = request.__dict__.setdefault("_af_filter_messages", set())
    if text not in shown:
        shown.add(text)
        messages.error(request, text)


def _with_products(queryset: QuerySet, **link: OuterRef) -> QuerySet:
    """Rows of ``queryset`` that some product points at via ``link``."""
    return queryset.filter(Exists(Product.objects.order_by().filter(**link)))


class RelatedChoiceFilter(RelatedDropdownFilter):
    """A dropdown of related rows that have products; chip "Title: name"."""

    def choice_queryset(self) -> QuerySet:
        raise NotImplementedError

    def field_choices(self, field, request, model_admin) -> list[tuple]:
        return [(row.pk, str(row)) for row in self.choice_queryset()]

    def chips(self, changelist: ChangeList) -> list[Chip]:
        value = self.value()
        if value in EMPTY_VALUES:
            return []
        names = dict((str(pk), name) for pk, name in self.lookup_choices)
        label = names.get(str(value), f"#{value}")
        return [Chip(f"{self.title.capitalize()}: {label}",
                     remove_params(changelist, self.lookup_kwarg))]


class ProductMachineFilter(RelatedChoiceFilter):
    """Machines that made something, labelled with their provider."""

    def choice_queryset(self) -> QuerySet:
        machines = FactoryMachine.objects.select_related("provider")
        return _with_products(machines, machine=OuterRef("pk"))


class ProviderFilter(RelatedChoiceFilter):
    """Providers whose machines made something."""

    def choice_queryset(self) -> QuerySet:
        machines = _with_products(
            FactoryMachine.objects.filter(provider=OuterRef("pk")),
            machine=OuterRef("pk"),
        )
        return Provider.objects.filter(Exists(machines))


class ProjectFilter(RelatedChoiceFilter):
    """Projects holding products, archived ones included."""

    def choice_queryset(self) -> QuerySet:
        return _with_products(Project.objects.all(), project=OuterRef("pk"))


class MediaTypeFilter(ChoicesCheckboxFilter):
    """Images, videos, audio: any of the ticked kinds."""

    def chips(self, changelist: ChangeList) -> list[Chip]:
        chosen = self.value() or []
        names = dict(self.field.flatchoices)
        if not chosen:
            return []
        label = ", ".join(str(names.get(value, value)) for value in chosen)
        return [Chip(f"Type: {label}", remove_params(changelist, self.lookup_kwarg))]


class Retitled:
    """A field filter titled ``short_title`` rather than the field's name."""

    short_title: str

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.title = self.short_title


class FavoriteFilter(Retitled, BooleanRadioFilter):
    """Favorites only, or everything but them."""

    short_title = "favorite"

    def chips(self, changelist: ChangeList) -> list[Chip]:
        value = self.value()
        if value not in ("0", "1"):
            return []
        label = "Favorite" if value == "1" else "Not favorite"
        return [Chip(label, remove_params(changelist, self.lookup_kwarg))]


class RatingFilter(RadioFilter):
    """Rated at least N stars, or not rated yet."""

    title = "rating"
    parameter_name = "min_rating"
    UNRATED = "none"

    def lookups(self, request, model_admin) -> list[tuple[str, str]]:
        return [*((str(n), "★" * n + (" or more" if n < 5 else ""))
                  for n in range(1, 6)), (self.UNRATED, "Not rated")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value in EMPTY_VALUES:
            return queryset
        if value == self.UNRATED:
            return queryset.filter(rating__isnull=True)
        if value not in {"1", "2", "3", "4", "5"}:
            _warn(request, "Rating at least: choose 1 to 5 stars.")
            return queryset
        return queryset.filter(rating__gte=int(value))

    def chips(self, changelist: ChangeList) -> list[Chip]:
        value = self.value()
        names = dict(self.lookup_choices)
        if value not in names:
            return []
        label = "Not rated" if value == self.UNRATED else f"Rating ≥ {value}"
        return [Chip(label, remove_params(changelist, self.parameter_name))]


class TagFilter(MultipleDropdownFilter):
    """Any of the chosen tags, among those some product carries.

    A list filter of its own rather than one on the ``tags`` field: a
    field filter makes the admin add DISTINCT over every grid column,
    while a subquery on the tag table finds the same products.
    """

    title = "tags"
    parameter_name = "tags__id__exact"

    def lookups(self, request: HttpRequest, model_admin) -> list[tuple[str, str]]:
        tags = Tag.objects.filter(Exists(
            Product.tags.through.objects.filter(tag=OuterRef("pk"))))
        return [(str(tag.pk), tag.name) for tag in tags]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        chosen = [value for value in self.value() or [] if value not in EMPTY_VALUES]
        if not chosen:
            return queryset
        if not all(value.isdigit() for value in chosen):
            _warn(request, "Tags: choose tags from the list.")
            return queryset.none()
        tagged = Product.tags.through.objects.filter(tag_id__in=[int(v) for v in chosen])
        return queryset.filter(pk__in=tagged.values("product_id"))

    def chips(self, changelist: ChangeList) -> list[Chip]:
        names = dict(self.lookup_choices)
        chosen = [names[value] for value in self.value() or [] if value in names]
        if not chosen:
            return []
        return [Chip(f"Tags: {', '.join(chosen)}",
                     remove_params(changelist, self.parameter_name))]


class CreatedFilter(Retitled, RangeDateFilter):
    """Made between two days, both included, in the admin's time zone."""

    short_title = "created"

    def _day(self, request: HttpRequest, end: str) -> datetime.date | None:
        text = self.used_parameters.get(f"{self.parameter_name}_{end}")
        if text in EMPTY_VALUES:
            return None
        day = parse_date_str(str(text))
        if day is None:
            _warn(request, f"“{text}” is not a date; write it as YYYY-MM-DD.")
        return day

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        zone = timezone.get_current_timezone()
        field = self.field_path
        for end, lookup, shift in (("from", "gte", 0), ("to", "lt", 1)):
            day = self._day(request, end)
            if day is not None:
                moment = datetime.datetime.combine(
                    day + datetime.timedelta(days=shift), datetime.time.min, zone)
                queryset = queryset.filter(**{f"{field}__{lookup}": moment})
        return queryset

    def chips(self, changelist: ChangeList) -> list[Chip]:
        start = self.used_parameters.get(f"{self.parameter_name}_from")
        end = self.used_parameters.get(f"{self.parameter_name}_to")
        if not start and not end:
            return []
        if start and end:
            label = f"Created {start} – {end}"
        else:
            label = f"Created from {start}" if start else f"Created until {end}"
        return [Chip(label, remove_params(changelist, *self.expected_parameters()))]


class OrderFilter(TextFilter):
    """The products of one order, by its number; order pages link here."""

    title = "order"
    parameter_name = "item__order__id__exact"

    def number(self) -> int | None:
        value = (self.value() or "").strip().lstrip("#")
        return int(value) if value.isdigit() and int(value) < SEED_LIMIT else None

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if (self.value() or "").strip() == "":
            return queryset
        number = self.number()
        if number is None:
            _warn(request, f"Order: “{self.value()}” is not an order number such as 12.")
            return queryset
        return queryset.filter(item__order_id=number)

    def chips(self, changelist: ChangeList) -> list[Chip]:
        number = self.number()
        if number is None:
            return []
        order = Order.objects.filter(pk=number).only("title").first()
        name = f"{order} (#{number})" if order and order.title else f"#{number}"
        return [Chip(f"Order: {name}", remove_params(changelist, self.parameter_name))]


class PromptFilter(TextFilter):
    """Prompts containing a piece of text, in any case."""

    title = "prompt"
    parameter_name = "prompt"

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        text = (self.value() or "").strip()
        return queryset.filter(prompt__icontains=text) if text else queryset

    def chips(self, changelist: ChangeList) -> list[Chip]:
        text = (self.value() or "").strip()
        if not text:
            return []
        return [Chip(f"Prompt: “{text}”", remove_params(changelist, self.parameter_name))]


class ParameterForm(forms.Form):
    """The expression box, offering the keys seen in the current results."""

    def __init__(self, name: str, label: str, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields[name] = forms.CharField(
            label=label, required=False,
            help_text=PARAMETER_HELP,
            widget=UnfoldAdminTextInputWidget(attrs={
                "list": "af-parameter-keys", "autocomplete": "off",
                "spellcheck": "false", "placeholder": "seed=42; steps 20..40",
                "x-ref": "expression",
            }),
        )


class ParameterFilter(TextFilter):
    """Any parameter as sent: ``key=value``, comparisons and ranges.

    ``seed`` compares the seed column. Keys are suggested from the
    products on the current page (the newest of the filtered set), which
    the page has already read, so suggesting costs no query.
    """

    title = "parameter"
    parameter_name = "param"
    template = PARAMETER_TEMPLATE
    form_class = ParameterForm

    def conditions(self) -> tuple[list[Condition], list[str]]:
        return parse_conditions(self.value() or "")

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        conditions, errors = self.conditions()
        for error in errors:
            _warn(request, error)
        for condition in conditions:
            queryset = condition.apply(queryset)
        return queryset

    def choices(self, changelist: ChangeList) -> Iterator[dict]:
        for choice in super().choices(changelist):
            keys = parameter_keys(
                [product.parameters for product in changelist.result_list],
                SUGGESTED_KEYS,
            )
            yield {**choice, "keys": keys}

    def chips(self, changelist: ChangeList) -> list[Chip]:
        parts = split_expressions(self.value() or "")
        conditions, _ = self.conditions()
        labels = {condition.text: condition.label for condition in conditions}
        chips = []
        for index, part in enumerate(parts):
            rest = SEPARATOR.join(parts[:index] + parts[index + 1:]) or None
            label = labels.get(part, f"Not understood: {part}")
            chips.append(Chip(label, changelist.get_query_string(
                {self.parameter_name: rest})))
        return chips


def search_with_seed(queryset: QuerySet, found: QuerySet, term: str) -> QuerySet:
    """The search results plus the products whose seed is ``term``.

    Searching "11" finds seed 11 even when no prompt holds the number.
    """
    term = term.strip()
    if not re.fullmatch(r"-?\d{1,19}", term) or abs(int(term)) >= SEED_LIMIT:
        return found
    return found | queryset.filter(seed=int(term))

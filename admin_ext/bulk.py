"""Bulk curation of products: on a selection or on all the filter matches.

Each action first shows a page saying how many products it will touch
(counted once, from the same filtered queryset it will act on) and what
it will do, asks for what it needs (tags, a project), and acts only when
that page posts back with its ``confirm`` field. With "select all N
matching" the page posts ``select_across`` again instead of a list of
ids, so the filter in the URL decides, as in Django's own actions.
"""
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import ModelAdmin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import (
    HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import ngettext
from unfold.decorators import action
from unfold.widgets import (
    UnfoldAdminCheckboxSelectMultipleWidget, UnfoldAdminSelectWidget,
    UnfoldAdminTextInputWidget,
)

from admin_ext.actions import CONFIRM_FIELD
from factory.exporting import plan_zip, stream_zip
from factory.models import Project, Tag
from factory.models.inventory import tags_named
from factory.recipes import MAX_AGAIN, order_again_from_products

TEMPLATE = "admin_ext/inventory/bulk_confirm.html"
TRUE_WORDS = ("1", "true", "True", "on")

Run = Callable[[QuerySet, dict[str, Any]], "str | HttpResponseBase"]


class ArchivedFilter(admin.SimpleListFilter):
    """Archived: no (the default view), yes, or all products."""

    title = "archived"
    parameter_name = "archived"
    DEFAULT = "no"

    def lookups(self, request, model_admin):
        return [("no", "No"), ("yes", "Yes"), ("all", "All")]

    def queryset(self, request, queryset):
        chosen = self.value() or self.DEFAULT
        if chosen == "yes":
            return queryset.archived()
        return queryset if chosen == "all" else queryset.active()

    def choices(self, changelist):
        """No "All" link of its own: leaving the filter means "no"."""
        chosen = self.value() or self.DEFAULT
        for value, label in self.lookup_choices:
            yield {
                "selected": chosen == value,
                "query_string": changelist.get_query_string(
                    remove=[self.parameter_name]
                ) if value == self.DEFAULT else changelist.get_query_string(
                    {self.parameter_name: value}
                ),
                "display": label,
            }


def selects_across(request: HttpRequest) -> bool:
    """True when the action runs on everything the filter matches."""
    return request.POST.get("select_across", "0") in TRUE_WORDS


def selection_context(
    request: HttpRequest, queryset: QuerySet, action: str,
    count: int | None = None,
) -> dict[str, Any]:
    """What a confirmation page needs to post the same selection back.

    ``count``, unless given, is counted once from the queryset the action
    acts on, so it is the number the action will touch.
    """
    return {
        "count": queryset.count() if count is None else count,
        "across": selects_across(request),
        "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
        "action": action,
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
        "confirm_field": CONFIRM_FIELD,
    }


@dataclass(frozen=True)
class Step:
    """One bulk action's confirmation page and what it does on confirm.

    ``title`` and ``button`` take ``%(n)d``, the product count.
    """

    title: tuple[str, str]
    intro: str
    button: str
    run: Run
    form_class: type[forms.Form] | None = None


def confirm(
    model_admin: ModelAdmin, request: HttpRequest, queryset: QuerySet,
    action: str, step: Step, count: int | None = None, refusal: str = "",
    **extra: Any,
) -> HttpResponseBase | None:
    """Show the count and ask; on confirm run ``step`` on ``queryset``.

    A ``refusal`` is shown instead of the button, and holds on confirm too.
    None sends the browser back to the change list with a message.
    """
    confirmed = request.POST.get(CONFIRM_FIELD) == "yes"
    form = step.form_class and step.form_class(
        request.POST if confirmed else None, products=queryset
    )
    if confirmed and not refusal and (form is None or form.is_valid()):
        try:
            outcome = step.run(queryset, form.cleaned_data if form else {})
        except ValidationError as exc:
            model_admin.message_user(request, " ".join(exc.messages), messages.ERROR)
            return None
        if isinstance(outcome, HttpResponseBase):
            return outcome
        model_admin.message_user(request, outcome, messages.SUCCESS)
        return None
    context = selection_context(request, queryset, action, count)
    count = context["count"]
    context.update({
        **model_admin.admin_site.each_context(request),
        "title": ngettext(*step.title, count) % {"n": count},
        "intro": step.intro, "button": step.button % {"n": count},
        "form": form, "opts": model_admin.model._meta,
        "changelist_url": request.get_full_path(), "refusal": refusal, **extra,
    })
    return TemplateResponse(request, TEMPLATE, context)


class ProductsForm(forms.Form):
    """A bulk form that may look at the products it acts on."""

    def __init__(self, *args: Any, products: QuerySet, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.products = products


class TagForm(ProductsForm):
    tags = forms.ModelMultipleChoiceField(
        Tag.objects.all(), required=False, label="Tags",
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
    )
    new = forms.CharField(
        required=False, label="New tags", widget=UnfoldAdminTextInputWidget,
        help_text="Comma-separated; a name not used yet becomes a new tag.",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        typed = tags_named(data.get("new", ""))
        chosen = list({tag.pk: tag for tag in [*data.get("tags", []), *typed]}.values())
        if not chosen:
            raise ValidationError("Pick a tag or type a new one.")
        data["tags"] = chosen
        return data


class UntagForm(ProductsForm):
    tags = forms.ModelMultipleChoiceField(
        Tag.objects.none(), label="Tags to remove",
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
        error_messages={"required": "Pick at least one tag to remove."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only the tags these products carry, found by one query.
        self.fields["tags"].queryset = Tag.objects.filter(
            products__in=self.products.order_by().values("pk")
        ).distinct().order_by("name")


class MoveForm(ProductsForm):
    project = forms.ModelChoiceField(
        Project.objects.open(), required=False, empty_label="No project",
        label="Project", widget=UnfoldAdminSelectWidget,
        help_text="“No project” takes the products out of theirs.",
    )


def _tag(products: QuerySet, data: dict[str, Any]) -> str:
    count = products.add_tags(data["tags"])
    names = ", ".join(tag.name for tag in data["tags"])
    return ngettext("%(n)d product tagged %(tags)s.",
                    "%(n)d products tagged %(tags)s.", count) % {
        "n": count, "tags": names}


def _untag(products: QuerySet, data: dict[str, Any]) -> str:
    removed = products.remove_tags(data["tags"])
    names = ", ".join(tag.name for tag in data["tags"])
    return ngettext("%(n)d tag removed (%(tags)s).",
                    "%(n)d tags removed (%(tags)s).", removed) % {
        "n": removed, "tags": names}


def _move(products: QuerySet, data: dict[str, Any]) -> str:
    project = data["project"]
    count = products.move_to(project)
    where = f"moved to {project}" if project else "taken out of their project"
    return ngettext("%(n)d product %(where)s.", "%(n)d products %(where)s.",
                    count) % {"n": count, "where": where}


def _archive(products: QuerySet, data: dict[str, Any]) -> str:
    count = products.archive()
    return ngettext("%d product archived; “Archived: yes” shows it.",
                    "%d products archived; “Archived: yes” shows them.",
                    count) % count


def _restore(products: QuerySet, data: dict[str, Any]) -> str:
    count = products.restore()
    return ngettext("%d product restored.", "%d products restored.",
                    count) % count


def _zip(products: QuerySet, data: dict[str, Any]) -> StreamingHttpResponse:
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
    response = StreamingHttpResponse(
        stream_zip(products), content_type="application/zip"
    )
    response["Content-Disposition"] = f'attachment; filename="products-{stamp}.zip"'
    return response


TAG = Step(("Tag %(n)d product", "Tag %(n)d products"),
           "Every product gets each tag chosen or typed here; tags it has "
           "already stay.", "Tag %(n)d", _tag, TagForm)
UNTAG = Step(("Untag %(n)d product", "Untag %(n)d products"),
             "The tags chosen here are taken off every product that has them.",
             "Remove tags", _untag, UntagForm)
MOVE = Step(("Move %(n)d product", "Move %(n)d products"),
            "Every product goes to the project chosen here.",
            "Move %(n)d", _move, MoveForm)
ARCHIVE = Step(("Archive %(n)d product", "Archive %(n)d products"),
               "Archived products leave the default view; their files are "
               "kept, and “Restore” brings them back.", "Archive %(n)d",
               _archive)
RESTORE = Step(("Restore %(n)d product", "Restore %(n)d products"),
               "Archived products among these come back to the default view.",
               "Restore %(n)d", _restore)
ZIP = Step(("Download %(n)d product", "Download %(n)d products"),
           "One zip: each media file as it is stored, beside a .json sidecar "
           "with its prompt, parameters, seed, machine, order and curation.",
           "Download the zip", _zip)


def favorite(
    model_admin: ModelAdmin, request: HttpRequest, queryset: QuerySet,
    action: str, on: bool,
) -> HttpResponseBase | None:
    """Mark or unmark at once on a page's selection; on everything the
    filter matches, only after the count has been shown."""
    def run(products: QuerySet, data: dict[str, Any]) -> str:
        count = products.set_favorite(on)
        return (ngettext("%d product marked as favorite.",
                         "%d products marked as favorite.", count) if on else
                ngettext("%d product removed from favorites.",
                         "%d products removed from favorites.", count)) % count

    if not selects_across(request):
        model_admin.message_user(request, run(queryset, {}), messages.SUCCESS)
        return None
    step = Step(
        ("Favorite %(n)d product", "Favorite %(n)d products") if on else
        ("Unfavorite %(n)d product", "Unfavorite %(n)d products"),
        "Every product is marked as favorite." if on else
        "Every product is taken out of the favorites.",
        "Favorite %(n)d" if on else "Unfavorite %(n)d", run,
    )
    return confirm(model_admin, request, queryset, action, step)


@action(description="Tag…", permissions=["change"])
def tag_selected(
    model_admin: ModelAdmin, request: HttpRequest, queryset: QuerySet
) -> HttpResponseBase | None:
    """Ask for tags to pick or type, then add them to every product."""
    return confirm(model_admin, request, queryset, "tag_selected", TAG)


@action(description="Untag…", permissions=["change"])
def untag_selected(
    model_admin: ModelAdmin, request: HttpRequest, queryset: QuerySet
) -> HttpResponseBase | None:
    """Ask which of their tags to take off, then remove them."""
    return confirm(model_admin, request, queryset, "untag_selected", UNTAG)


@action(description="Move to project…", permissions=["change"])
def move_selected(
    model_admin: ModelAdmin, request: HttpRequest, queryset: QuerySet
) -> HttpResponseBase | None:
    """Ask for a project (or none), then move every product there."""
    return confirm(model_admin, request, queryset, "move_selected", MOVE)


@action(description="Archive", permissions=["change"])
def archive_selected(
    model_admin: ModelAdmin, request: HttpRequest, queryset: QuerySet
) -> HttpResponseBase | None:
    return confirm(model_admin, request, queryset, "archive_selected", ARCHIVE)


@action(description="Restore from archive", permissions=["change"])
def restore_selected(
    model_admin: ModelAdmin, request: HttpRequest, queryset: QuerySet
) -> HttpResponseBase | None:
    return confirm(model_admin, request, queryset, "restore_selected", RESTORE)


@action(description="Order again (one draft each)", permissions=["order_again"])
def order_again_selected(
    model_admin: ModelAdmin, request: HttpRequest, queryset: QuerySet
) -> HttpResponseBase | None:
    """Write one draft per product repeating its call; places nothing."""
    def run(products: QuerySet, data: dict[str, Any]) -> HttpResponse:
        drafts = order_again_from_products(
            products.select_related("machine", "item__order", "project"),
            request.user,
        )
        model_admin.message_user(request, ngettext(
            "%d draft written; place it when ready.",
            "%d drafts written; place them when ready.", len(drafts),
        ) % len(drafts), messages.SUCCESS)
        if len(drafts) == 1:
            url = reverse("admin:factory_order_change", args=[drafts[0].pk])
        else:
            url = reverse("admin:factory_order_changelist") + "?status__exact=draft"
        return HttpResponseRedirect(url)

    step = Step(("Order %(n)d product again", "Order %(n)d products again"),
                "Each product gets a one-item draft repeating its exact call "
                "(prompt, parameters, seed, machine, project). Nothing is "
                "spent until a draft is placed.", "Order again", run)
    count = queryset.count()
    refusal = "" if count <= MAX_AGAIN else (
        f"{count} products are selected; one go writes at most {MAX_AGAIN} "
        "drafts. Select fewer or narrow the filter.")
    return confirm(model_admin, request, queryset, "order_again_selected", step,
                   count=count, refusal=refusal)


@action(description="Download as zip", permissions=["view"])
def download_zip(
    model_admin: ModelAdmin, request: HttpRequest, queryset: QuerySet
) -> HttpResponseBase | None:
    """Show the file count and total size, then stream the zip."""
    plan = plan_zip(queryset)
    return confirm(
        model_admin, request, queryset, "download_zip", ZIP, count=plan.count,
        refusal=plan.refusal, size=filesizeformat(plan.total_bytes),
        zip_limit=settings.ZIP_MAX_PRODUCTS,
    )


ACTIONS = [
    tag_selected, untag_selected, move_selected, archive_selected,
    restore_selected, order_again_selected, download_zip,
]

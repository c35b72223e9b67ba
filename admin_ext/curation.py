"""Curating products from the grid: one-field edits and the bulk rating.

The grid's favorite star and rating stars post to small endpoints that
answer with the card to swap in; the side panel's tags, project and
notes post to endpoints answering with that panel section. A refused
edit answers 400 (bad value) or 403 (no permission) with a sentence to
show; htmx leaves the page as it was, so it never shows a state the
database does not hold.
"""
from collections.abc import Callable

from django import forms
from django.contrib import messages
from django.contrib.admin import ModelAdmin
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from admin_ext.bulk import selection_context
from admin_ext.cards import CardUrls, card_html
from admin_ext.panel import Render, panel_view, render_section
from factory.models import Product, Tag
from factory.models.inventory import RATING_MESSAGE, clean_rating

RATE_TEMPLATE = "admin_ext/inventory/rate_selected.html"
VIEW_SESSION_KEY = "products_view"
VIEWS = ("grid", "table")
CONFIRM_FIELD = "confirm"

Edit = Callable[[Product, QueryDict], None]


def remember_view(request: HttpRequest) -> str:
    """The products list's layout: ?view=grid|table, kept in the session.

    The parameter is taken out of ``request.GET`` because the change list
    would read it as a filter on a field that does not exist.
    """
    chosen = request.GET.get("view")
    if "view" in request.GET:
        request.GET = request.GET.copy()
        del request.GET["view"]
    if chosen in VIEWS:
        if request.session.get(VIEW_SESSION_KEY) != chosen:  # no write when unchanged
            request.session[VIEW_SESSION_KEY] = chosen
        return chosen
    return request.session.get(VIEW_SESSION_KEY, VIEWS[0])


def edit_favorite(product: Product, data: QueryDict) -> None:
    """Set the flag the card asked for, or flip it when none was sent.

    Cards send the state they want, so a second person's click on a card
    showing an old state still lands where that person meant.
    """
    if "favorite" in data:
        product.set_favorite(data["favorite"])
    else:
        product.toggle_favorite()


def edit_rating(product: Product, data: QueryDict) -> None:
    """Rate from ``rating``: 1 to 5, blank for no rating."""
    if "rating" not in data:
        raise ValidationError(RATING_MESSAGE)
    product.set_rating(data["rating"])


def edit_tags(product: Product, data: QueryDict) -> None:
    """Add the ``add`` names and take off the ``remove`` ones.

    Operations rather than the whole list: two people tagging one product
    from pages loaded earlier both keep their tags.
    """
    added, removed = data.getlist("add"), data.getlist("remove")
    if not added and not removed:
        raise ValidationError("Name a tag to add or remove.")
    if added:
        product.add_tags(added)
    if removed:
        product.remove_tags(removed)


def edit_project(product: Product, data: QueryDict) -> None:
    """Move to the ``project`` primary key, or out of any when blank."""
    product.set_project(data.get("project", ""))


def edit_notes(product: Product, data: QueryDict) -> None:
    """Replace the notes with ``notes``."""
    if "notes" not in data:
        raise ValidationError("Send the notes to save.")
    product.set_notes(data["notes"])


def render_card(
    model_admin: ModelAdmin, request: HttpRequest, product: Product
) -> HttpResponse:
    """The product's card, which the grid swaps in after an edit."""
    return HttpResponse(card_html(
        product, CardUrls(model_admin.model._meta),
        model_admin.has_change_permission(request),
    ))


def curation_urls(model_admin: ModelAdmin) -> list[URLPattern]:
    """The grid's endpoints, to put before the admin's own URLs."""
    def endpoint(edit: Edit, render: Render) -> Callable[..., HttpResponse]:
        @require_POST
        def view(request: HttpRequest, object_id: int) -> HttpResponse:
            return edit_product(model_admin, request, object_id, edit, render)
        return model_admin.admin_site.admin_view(view)

    @require_GET
    def panel(request: HttpRequest, object_id: int) -> HttpResponse:
        if not model_admin.has_view_permission(request):
            return _refusal("You may not view products.", 403)
        return panel_view(model_admin, request, object_id)

    @require_GET
    def suggestions(request: HttpRequest) -> HttpResponse:
        return tag_suggestions(model_admin, request)

    site = model_admin.admin_site
    return [
        path("<int:object_id>/favorite/", endpoint(edit_favorite, render_card),
             name="factory_product_favorite"),
        path("<int:object_id>/rating/", endpoint(edit_rating, render_card),
             name="factory_product_rating"),
        path("<int:object_id>/tags/",
             endpoint(edit_tags, render_section("tags")),
             name="factory_product_tags"),
        path("<int:object_id>/project/",
             endpoint(edit_project, render_section("project")),
             name="factory_product_project"),
        path("<int:object_id>/notes/",
             endpoint(edit_notes, render_section("notes")),
             name="factory_product_notes"),
        path("<int:object_id>/panel/", site.admin_view(panel),
             name="factory_product_panel"),
        path("tag-suggestions/", site.admin_view(suggestions),
             name="factory_product_tag_suggestions"),
    ]


def edit_product(
    model_admin: ModelAdmin, request: HttpRequest, object_id: int, edit: Edit,
    render: Render,
) -> HttpResponse:
    """Apply one edit to one product and answer with what shows it.

    A refused edit writes nothing, even one that did part of its work.
    """
    product = get_object_or_404(model_admin.get_queryset(request), pk=object_id)
    if not model_admin.has_change_permission(request, product):
        return _refusal("You may not change products.", 403)
    try:
        with transaction.atomic():
            edit(product, request.POST)
    except ValidationError as exc:
        return _refusal(" ".join(exc.messages), 400)
    return render(model_admin, request, product)


def tag_suggestions(model_admin: ModelAdmin, request: HttpRequest) -> HttpResponse:
    """Existing tag names matching ``?q=``, for the panel's tag input."""
    if not model_admin.has_change_permission(request):
        return _refusal("You may not change products.", 403)
    tags = Tag.objects.suggest(request.GET.get("q", ""))
    return JsonResponse({"tags": list(tags.values_list("name", flat=True))})


def _refusal(message: str, status: int) -> HttpResponse:
    """Plain text, which the grid's script shows as it is."""
    return HttpResponse(message, status=status, content_type="text/plain")


class RatingForm(forms.Form):
    """The rating a bulk action gives every selected product."""

    rating = forms.TypedChoiceField(
        choices=[("", "No rating")] + [(str(n), "★" * n) for n in range(1, 6)],
        coerce=clean_rating, empty_value=None, required=False,
        widget=forms.RadioSelect,
    )


def confirm_rating(
    model_admin: ModelAdmin, request: HttpRequest, queryset: QuerySet[Product],
    action: str,
) -> TemplateResponse | None:
    """Ask for the rating, then give it to ``queryset``.

    None sends the browser back to the change list with a message.
    """
    confirmed = request.POST.get(CONFIRM_FIELD) == "yes"
    form = RatingForm(request.POST if confirmed else None)
    if confirmed and form.is_valid():
        rating = form.cleaned_data["rating"]
        count = queryset.rate(rating)
        if rating is None:
            text = ngettext("Rating cleared on %(n)d product.",
                            "Rating cleared on %(n)d products.", count)
        else:
            text = ngettext("%(n)d product rated %(r)d.",
                            "%(n)d products rated %(r)d.", count)
        model_admin.message_user(
            request, text % {"n": count, "r": rating or 0}, messages.SUCCESS
        )
        return None
    context = selection_context(request, queryset, action)
    context.update({
        **model_admin.admin_site.each_context(request),
        "title": ngettext("Rate %d product", "Rate %d products",
                          context["count"]) % context["count"],
        "form": form,
        "opts": model_admin.model._meta,
        "changelist_url": request.get_full_path(),
    })
    return TemplateResponse(request, RATE_TEMPLATE, context)

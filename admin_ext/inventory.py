"""Inventory section: products and the media files behind them."""
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, reverse
from django.utils.html import format_html
from unfold.admin import ModelAdmin
from unfold.decorators import action, display

from admin_ext.bulk import ACTIONS as BULK_ACTIONS, ArchivedFilter, favorite
from admin_ext.curation import confirm_rating, curation_urls, remember_view
from admin_ext.data.admin import DataAdminMixin
from admin_ext.data.resources import ProductResource
from admin_ext.display import thumbnail_html
from admin_ext.lean import LeanAdminMixin
from admin_ext.product_filters import (
    CreatedFilter, FavoriteFilter, MediaTypeFilter, OrderFilter, ParameterFilter,
    ProductMachineFilter, ProjectFilter, PromptFilter, ProviderFilter, RatingFilter,
    TagFilter, search_with_seed,
)
from admin_ext.permissions import RefuseForbiddenActions
from admin_ext.variations import (
    ProductMachineForm, VarySeedForm, confirm_vary_seed, run_switch, run_vary_seed,
)
from admin_ext.paging import EstimatedCountMixin
from factory.models import MediaFile, Product
from factory.recipes import order_again_from_product
from factory.search import search_products


@admin.register(Product)
class ProductAdmin(RefuseForbiddenActions, DataAdminMixin, EstimatedCountMixin,
                   LeanAdminMixin, ModelAdmin):
    resource_classes = [ProductResource]
    list_display = [
        "display_thumbnail", "__str__", "machine", "project", "display_media_type",
        "display_size", "is_favorite", "rating", "created_at",
    ]
    list_display_links = ["display_thumbnail", "__str__"]
    list_filter = [
        ParameterFilter, PromptFilter, ("machine", ProductMachineFilter),
        ("machine__provider", ProviderFilter), ("project", ProjectFilter),
        ("media_type", MediaTypeFilter), RatingFilter, ("is_favorite", FavoriteFilter),
        TagFilter, ("created_at", CreatedFilter), OrderFilter, ArchivedFilter,
    ]
    list_filter_submit = True
    show_facets = admin.ShowFacets.NEVER  # counts would read every product
    search_fields = ["prompt", "notes", "tags__name"]
    list_per_page = 120
    change_list_template = "admin_ext/inventory/change_list.html"
    autocomplete_fields = ["project", "tags"]
    readonly_fields = [
        "display_preview", "item", "output_index", "media", "machine", "media_type",
        "prompt", "parameters", "seed", "cost", "created_at",
    ]
    fieldsets = [
        (None, {"fields": ["display_preview", "is_favorite", "rating", "tags",
                           "project", "notes"]}),
        ("Generation", {"fields": [
            "prompt", "parameters", "seed", "machine", "item", "output_index",
            "media", "media_type", "cost", "created_at",
        ]}),
    ]
    actions = ["mark_favorite", "unmark_favorite", "rate_selected", "vary_seed_selected",
               *BULK_ACTIONS]
    actions_detail = ["vary_seed_detail", "order_again_detail", "other_machine_detail"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Product]:
        return super().get_queryset(request).for_grid()

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Product],
                           search_term: str) -> tuple[QuerySet[Product], bool]:
        """Through the search indexes, tags in a subquery (so never
        duplicates), and a seed too when the term is a number."""
        found = search_products(queryset, search_term)
        return search_with_seed(queryset, found, search_term), False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def lookup_allowed(self, lookup: str, value: str, request=None) -> bool:
        # An order's page links to its products through this lookup.
        if lookup == "item__order__id__exact":
            return True
        return super().lookup_allowed(lookup, value, request)

    def has_order_again_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.has_perm("factory.add_order")

    @display(description="Preview")
    def display_thumbnail(self, obj: Product) -> str:
        thumb = obj.media.thumbnail
        return thumbnail_html(thumb.url if thumb else "", f"Product {obj.pk}")

    @display(description="Preview")
    def display_preview(self, obj: Product) -> str:
        url = obj.media.file.url
        if obj.media_type == "video":
            return format_html('<video src="{}" controls style="max-width:640px">', url)
        if obj.media_type == "audio":
            return format_html(
                '<img src="{}" style="max-width:640px"><br><audio src="{}" controls>',
                obj.media.thumbnail.url, url,
            )
        return format_html('<img src="{}" style="max-width:640px">', url)

    @display(description="Type", label=True, ordering="media_type")
    def display_media_type(self, obj: Product) -> str:
        return obj.get_media_type_display()

    @display(description="Size")
    def display_size(self, obj: Product) -> str:
        media = obj.media
        if media.duration:
            return f"{media.duration:.1f} s"
        return f"{media.width}×{media.height}" if media.width else "-"

    @action(description="Mark as favorite", permissions=["change"])
    def mark_favorite(self, request: HttpRequest, queryset: QuerySet[Product]):
        return favorite(self, request, queryset, "mark_favorite", on=True)

    @action(description="Order again", url_path="order-again",
            icon="content_copy", permissions=["order_again"])
    def order_again_detail(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Start a one-item draft repeating this product's exact call."""
        product = get_object_or_404(
            Product.objects.select_related("item__order"), pk=object_id
        )
        order = order_again_from_product(product, request.user)
        self.message_user(request, f"{order} is a new draft.", messages.SUCCESS)
        return HttpResponseRedirect(
            reverse("admin:factory_order_change", args=[order.pk])
        )

    @action(description="Vary seed", url_path="vary-seed", icon="casino",
            permissions=["order_again"], dialog={
                "title": "Vary seed",
                "description": "One new draft repeating this call with new "
                "random seeds; nothing is spent until it is placed.",
                "form_class": VarySeedForm, "form_submit_text": "Create draft",
            })
    def vary_seed_detail(
        self, request: HttpRequest, form: VarySeedForm, object_id: str
    ) -> HttpResponse:
        """Write one draft of new-seed variations and open it."""
        product = get_object_or_404(
            Product.objects.select_related("machine", "item__order"), pk=object_id
        )
        return run_vary_seed(self, request, product, form.cleaned_data["count"])

    @action(description="Vary seed", permissions=["order_again"])
    def vary_seed_selected(
        self, request: HttpRequest, queryset: QuerySet[Product]
    ) -> HttpResponse:
        """Ask how many variations, then write one draft per product."""
        return confirm_vary_seed(self, request, queryset, "vary_seed_selected")

    @action(description="On another machine", url_path="other-machine",
            icon="swap_horiz", permissions=["order_again"], dialog={
                "title": "Order on another machine",
                "description": "A new one-item draft with this prompt and seed on "
                "the machine you pick; parameters it cannot take are dropped "
                "and listed.",
                "form_class": ProductMachineForm, "form_submit_text": "Create draft",
            })
    def other_machine_detail(
        self, request: HttpRequest, form: ProductMachineForm, object_id: str
    ) -> HttpResponse:
        """Write the draft on the chosen machine and open it."""
        return run_switch(self, request, form)

    def get_urls(self) -> list[URLPattern]:
        return [*curation_urls(self), *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context=None):
        """The grid unless ``?view=table`` was chosen; the choice sticks."""
        context = {
            **(extra_context or {}),
            "product_view": remember_view(request),
            "can_curate": self.has_change_permission(request),
        }
        return super().changelist_view(request, context)

    @action(description="Remove from favorites", permissions=["change"])
    def unmark_favorite(self, request: HttpRequest, queryset: QuerySet[Product]):
        return favorite(self, request, queryset, "unmark_favorite", on=False)

    @action(description="Rate…", permissions=["change"])
    def rate_selected(
        self, request: HttpRequest, queryset: QuerySet[Product]
    ) -> TemplateResponse | None:
        """Ask for one rating, then give it to every selected product."""
        return confirm_rating(self, request, queryset, "rate_selected")


@admin.register(MediaFile)
class MediaFileAdmin(ModelAdmin):
    list_display = [
        "display_thumbnail", "content_hash", "media_type", "content_type", "size",
        "width", "height", "created_at",
    ]
    list_filter = ["media_type", "content_type"]
    search_fields = ["content_hash"]
    readonly_fields = [f.name for f in MediaFile._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @display(description="Preview")
    def display_thumbnail(self, obj: MediaFile) -> str:
        return thumbnail_html(obj.thumbnail.url if obj.thumbnail else "", obj.content_hash, 64)

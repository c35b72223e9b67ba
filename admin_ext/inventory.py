"""Inventory section: products and the media files behind them."""
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from unfold.admin import ModelAdmin
from unfold.decorators import action, display

from admin_ext.display import thumbnail_html
from admin_ext.filters import MachineFilter
from factory.models import MediaFile, Product


@admin.register(Product)
class ProductAdmin(ModelAdmin):
    list_display = [
        "display_thumbnail", "__str__", "machine", "project", "display_media_type",
        "display_size", "is_favorite", "rating", "created_at",
    ]
    list_display_links = ["display_thumbnail", "__str__"]
    list_filter = [
        "media_type", "is_favorite", "rating", ("machine", MachineFilter),
        "project", "tags",
    ]
    search_fields = ["prompt", "notes", "tags__name"]
    list_per_page = 60
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
    actions = ["mark_favorite"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Product]:
        return super().get_queryset(request).for_grid()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

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
    def mark_favorite(self, request: HttpRequest, queryset: QuerySet[Product]) -> None:
        count = queryset.update(is_favorite=True)
        self.message_user(request, f"{count} products marked as favorite.")


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

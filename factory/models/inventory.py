"""The inventory: stored media files and the products that show them."""
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from factory.models.catalog import FactoryMachine, Modality
from factory.models.orders import OrderItem
from factory.models.projects import Project, Tag


class MediaFile(models.Model):
    """One stored file, kept once per content hash whatever produced it."""

    content_hash = models.CharField(max_length=64, unique=True)
    file = models.FileField(max_length=255)
    thumbnail = models.FileField(max_length=255, blank=True)
    media_type = models.CharField(max_length=10, choices=Modality.choices)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    duration = models.FloatField(null=True, blank=True, help_text="Seconds.")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.file.name


RATING_MESSAGE = "A rating is a whole number from 1 to 5."
FAVORITE_MESSAGE = "Favorite is either on or off."
FAVORITE_WORDS = {"1": True, "on": True, "true": True,
                  "0": False, "off": False, "false": False}


def clean_rating(value: object) -> int | None:
    """A rating from user input: 1 to 5, or None for blank (no rating).

    Raises ValidationError with a message fit to show as it is.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValidationError(RATING_MESSAGE, code="invalid_rating")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValidationError(RATING_MESSAGE, code="invalid_rating") from None
    if not 1 <= number <= 5:
        raise ValidationError(RATING_MESSAGE, code="invalid_rating")
    return number


def clean_favorite(value: object) -> bool:
    """A favorite flag from user input such as "on", "off", "1" or "0"."""
    if isinstance(value, bool):
        return value
    flag = FAVORITE_WORDS.get(str(value).strip().lower())
    if flag is None:
        raise ValidationError(FAVORITE_MESSAGE, code="invalid_favorite")
    return flag


class ProductQuerySet(models.QuerySet):
    def for_grid(self) -> "ProductQuerySet":
        """What the inventory grid reads, in one query."""
        return self.select_related("media", "machine__provider", "project")

    def rate(self, value: object) -> int:
        """Give every product the same rating (blank clears); returns the count."""
        return self.update(rating=clean_rating(value))

    def set_favorite(self, value: object) -> int:
        """Mark or unmark every product as favorite; returns the count."""
        return self.update(is_favorite=clean_favorite(value))


class Product(models.Model):
    """One produced output of one order item, with its metadata."""

    item = models.ForeignKey(
        OrderItem, on_delete=models.PROTECT, related_name="products"
    )
    output_index = models.PositiveIntegerField(default=0)
    media = models.ForeignKey(
        MediaFile, on_delete=models.PROTECT, related_name="products"
    )
    machine = models.ForeignKey(
        FactoryMachine, on_delete=models.PROTECT, related_name="products"
    )
    project = models.ForeignKey(
        Project, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="products",
    )
    media_type = models.CharField(max_length=10, choices=Modality.choices)
    prompt = models.TextField(blank=True)
    parameters = models.JSONField(help_text="Parameters as sent.")
    seed = models.BigIntegerField(null=True, blank=True)
    cost = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    is_favorite = models.BooleanField(default=False)
    rating = models.PositiveSmallIntegerField(null=True, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="products")
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ProductQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["item", "output_index"], name="product_unique_output"
            ),
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | Q(rating__gte=1, rating__lte=5),
                name="product_rating_1_to_5",
            ),
        ]
        indexes = [
            models.Index(fields=["project", "-created_at"]),
            models.Index(fields=["machine", "-created_at"]),
            models.Index(fields=["-created_at", "-id"]),
            models.Index(fields=["is_favorite", "-created_at"]),
            models.Index(fields=["rating"]),
            models.Index(fields=["media_type", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"Product #{self.pk}"

    def set_rating(self, value: object) -> None:
        """Rate 1 to 5, or clear with None or blank; saves only the rating."""
        self.rating = clean_rating(value)
        self.save(update_fields=["rating"])

    def set_favorite(self, value: object) -> None:
        """Mark or unmark as favorite; saves only that flag."""
        self.is_favorite = clean_favorite(value)
        self.save(update_fields=["is_favorite"])

    def toggle_favorite(self) -> bool:
        """Flip the favorite flag, save it and return the new state."""
        self.set_favorite(not self.is_favorite)
        return self.is_favorite

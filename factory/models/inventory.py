"""The inventory: stored media files and the products that show them."""
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from factory.models.catalog import FactoryMachine, Modality
from factory.models.orders import OrderItem
from factory.models.projects import Project, Tag, clean_tag_name
from factory.parameters.schema import ParameterError, check_text


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


TAG_BATCH = 1000
RATING_MESSAGE = "A rating is a whole number from 1 to 5."
FAVORITE_MESSAGE = "Favorite is either on or off."
PROJECT_MESSAGE = "Choose one of the open projects, or none."
NOTES_MAX_LENGTH = 10_000
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


def tags_named(text: str) -> list[Tag]:
    """The tags a comma-separated ``text`` names, creating missing ones.

    Each name is cleaned and matched as ``TagQuerySet.named`` does, so
    "Sky" finds "sky"; a bad name raises ValidationError before any tag
    is created.
    """
    names = [part for part in text.split(",") if part.strip()]
    for name in names:
        clean_tag_name(name)  # all refused before any is made
    return Tag.objects.named(names)


def clean_project(value: object) -> Project | None:
    """An open project from a primary key; blank means no project."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        pk = int(str(value).strip())
    except ValueError:
        raise ValidationError(PROJECT_MESSAGE, code="invalid_project") from None
    project = Project.objects.filter(pk=pk).first()
    if project is None:
        raise ValidationError(PROJECT_MESSAGE, code="invalid_project")
    if project.is_archived:
        raise ValidationError(
            f"{project} is archived; products cannot move into it.",
            code="archived_project",
        )
    return project


def clean_notes(value: object) -> str:
    """Notes from user input: line ends made \\n, at most NOTES_MAX_LENGTH."""
    text = str(value or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    try:
        check_text(text, "The notes")
    except ParameterError as exc:
        raise ValidationError(f"{exc}.", code="invalid_notes") from None
    if len(text) > NOTES_MAX_LENGTH:
        raise ValidationError(
            f"Notes are at most {NOTES_MAX_LENGTH:,} characters; these have "
            f"{len(text):,}.", code="notes_too_long",
        )
    return text


class ProductQuerySet(models.QuerySet):
    def for_grid(self) -> "ProductQuerySet":
        """What the inventory grid reads, in one query."""
        return self.select_related("media", "machine__provider", "project")

    def for_panel(self) -> "ProductQuerySet":
        """What the side panel reads besides the card: lineage and tags."""
        return self.select_related(
            "media", "machine__provider", "project", "item__order__project",
            "item__retry_of",
        ).prefetch_related("tags", "item__retries")

    def rate(self, value: object) -> int:
        """Give every product the same rating (blank clears); returns the count."""
        return self.update(rating=clean_rating(value))

    def set_favorite(self, value: object) -> int:
        """Mark or unmark every product as favorite; returns the count."""
        return self.update(is_favorite=clean_favorite(value))

    def active(self) -> "ProductQuerySet":
        """Products not archived: what the inventory shows by default."""
        return self.filter(archived_at__isnull=True)

    def archived(self) -> "ProductQuerySet":
        return self.filter(archived_at__isnull=False)

    def archive(self) -> int:
        """Archive the active ones (their files stay); returns how many."""
        return self.active().update(archived_at=timezone.now())

    def restore(self) -> int:
        """Bring archived ones back to the default view; returns how many."""
        return self.archived().update(archived_at=None)

    def move_to(self, project: Project | None) -> int:
        """Put every product in ``project`` (None: in none); returns the count."""
        return self.update(project=project)

    def add_tags(self, tags: Iterable[Tag]) -> int:
        """Give every product each of ``tags``; returns the product count.

        Links already there are kept, so a rerun changes nothing. The
        product ids are read in chunks, never all at once.
        """
        link = Product.tags.through
        tag_ids = [tag.pk for tag in tags]
        count, rows = 0, []
        pks = self.order_by().values_list("pk", flat=True)
        for product_id in pks.iterator(chunk_size=TAG_BATCH):
            count += 1
            rows += [link(product_id=product_id, tag_id=tag) for tag in tag_ids]
            if len(rows) >= TAG_BATCH:
                link.objects.bulk_create(rows, ignore_conflicts=True)
                rows = []
        link.objects.bulk_create(rows, ignore_conflicts=True)
        return count

    def remove_tags(self, tags: Iterable[Tag]) -> int:
        """Take ``tags`` off every product; returns how many links went."""
        link = Product.tags.through
        deleted, _ = link.objects.filter(
            product__in=self.order_by().values("pk"), tag__in=list(tags)
        ).delete()
        return deleted


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
    archived_at = models.DateTimeField(
        null=True, blank=True, db_index=True,
        help_text="Set: out of the default view; its files are kept.",
    )

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

    def add_tags(self, names: list[str]) -> None:
        """Add tags by name, making new ones; the other tags stay.

        Adding to the set (never replacing it) keeps what someone else
        added meanwhile.
        """
        self.tags.add(*Tag.objects.named(names))

    def remove_tags(self, names: list[str]) -> None:
        """Take the named tags off this product; unknown names are ignored."""
        cleaned = [clean_tag_name(name) for name in names]
        self.tags.remove(*self.tags.filter(name__in=cleaned))

    def set_project(self, value: object) -> None:
        """File under an open project (a primary key), or none when blank."""
        self.project = clean_project(value)
        self.save(update_fields=["project"])

    def set_notes(self, value: object) -> None:
        """Replace the notes; saves only them."""
        self.notes = clean_notes(value)
        self.save(update_fields=["notes"])

    def toggle_favorite(self) -> bool:
        """Flip the favorite flag, save it and return the new state."""
        self.set_favorite(not self.is_favorite)
        return self.is_favorite

"""Projects and tags that organise orders and products."""
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Case, IntegerField, Value, When
from django.db.models.functions import Lower

from factory.parameters.schema import ParameterError, check_text

TAG_MAX_LENGTH = 64
TAG_SUGGESTIONS = 8


def clean_tag_name(value: object) -> str:
    """A tag name from user input, with runs of blanks made one space.

    Raises ValidationError with a message fit to show as it is.
    """
    text = str(value or "")
    try:
        check_text(text, "A tag")
    except ParameterError as exc:
        raise ValidationError(f"{exc}.", code="invalid_tag") from None
    name = " ".join(text.split())
    if not name:
        raise ValidationError("A tag needs a name.", code="invalid_tag")
    if len(name) > TAG_MAX_LENGTH:
        raise ValidationError(
            f"A tag is at most {TAG_MAX_LENGTH} characters; "
            f"\"{name[:20]}…\" has {len(name)}.", code="invalid_tag",
        )
    return name


class ProjectQuerySet(models.QuerySet):
    def open(self) -> "ProjectQuerySet":
        return self.filter(is_archived=False)


class Project(models.Model):
    """A body of work grouping orders and products; archived, never deleted."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    budget = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True,
        help_text="Spending cap in USD; empty means no cap.",
    )
    is_archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ProjectQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TagQuerySet(models.QuerySet):
    def named(self, names: list[str]) -> list["Tag"]:
        """The tags with these names, made when missing.

        An existing tag is matched whatever its case, so "Sky" and "sky"
        stay one tag. Names are cleaned first (see ``clean_tag_name``).
        """
        tags = []
        for name in dict.fromkeys(clean_tag_name(n) for n in names):
            tag = self.filter(name__iexact=name).first()
            tags.append(tag or self.get_or_create(name=name)[0])
        return tags

    def suggest(self, text: str) -> "TagQuerySet":
        """Tags containing ``text``, those starting with it first."""
        try:
            text = clean_tag_name(text)
        except ValidationError:  # nothing could match, NUL included
            return self.none()
        starts = Case(When(name__istartswith=text, then=Value(0)),
                      default=Value(1), output_field=IntegerField())
        return (self.filter(name__icontains=text).annotate(starts=starts)
                .order_by("starts", Lower("name"), "name")[:TAG_SUGGESTIONS])


class Tag(models.Model):
    name = models.CharField(max_length=TAG_MAX_LENGTH, unique=True)

    objects = TagQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

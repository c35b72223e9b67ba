"""Projects and tags that organise orders and products."""
from django.db import models


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


class Tag(models.Model):
    name = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

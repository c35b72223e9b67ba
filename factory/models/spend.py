"""The spend ledger: every amount reserved, charged or released, append-only.

A project's committed spend is the sum of its entries: an item's
reservation (its estimate, written when it is placed or retried) stands
until the item finishes, when the actual charge is written and the
reservation released by an entry of the opposite sign. Corrections are new
entries too; no entry is ever changed or deleted.
"""
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q, Sum


class SpendSource(models.TextChoices):
    RESERVATION = "reservation", "Reservation"
    RELEASE = "release", "Release"
    PROVIDER = "provider", "Provider-reported"
    ESTIMATE = "estimate", "Estimate (nothing reported)"
    CORRECTION = "correction", "Correction"


# Entries that are money the providers took, as opposed to money held.
ACTUAL = (SpendSource.PROVIDER, SpendSource.ESTIMATE, SpendSource.CORRECTION)
# An item has at most one of each of these.
ONCE_PER_ITEM = (SpendSource.RESERVATION, SpendSource.RELEASE, SpendSource.PROVIDER,
                 SpendSource.ESTIMATE)


class AppendOnlyError(Exception):
    """Raised on any attempt to change or delete a ledger entry."""


class SpendQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("spend entries are never changed; add a correction")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("spend entries are never deleted; add a correction")

    def actual(self) -> "SpendQuerySet":
        return self.filter(source__in=ACTUAL)

    def total(self) -> Decimal:
        return self.aggregate(total=Sum("amount"))["total"] or Decimal(0)


class SpendEntry(models.Model):
    """One amount of money in one currency, for one item (or none)."""

    item = models.ForeignKey(
        "factory.OrderItem", on_delete=models.PROTECT, null=True, blank=True,
        related_name="spend_entries",
    )
    order = models.ForeignKey(
        "factory.Order", on_delete=models.PROTECT, null=True, blank=True,
        related_name="spend_entries",
    )
    project = models.ForeignKey(
        "factory.Project", on_delete=models.PROTECT, null=True, blank=True,
        related_name="spend_entries",
    )
    provider = models.ForeignKey(
        "factory.Provider", on_delete=models.PROTECT, related_name="spend_entries",
    )
    machine = models.ForeignKey(
        "factory.FactoryMachine", on_delete=models.PROTECT, null=True, blank=True,
        related_name="spend_entries",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="spend_entries",
    )
    request_id = models.CharField(max_length=255, blank=True, db_index=True)
    source = models.CharField(max_length=20, choices=SpendSource.choices)
    units = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    unit = models.CharField(max_length=20, blank=True)
    unit_price = models.DecimalField(max_digits=18, decimal_places=8, default=0)
    amount = models.DecimalField(max_digits=14, decimal_places=4)
    currency = models.CharField(max_length=10, default="USD")
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = SpendQuerySet.as_manager()

    class Meta:
        verbose_name = "spend entry"
        verbose_name_plural = "spend ledger"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["project", "source"]),
            models.Index(fields=["provider", "created_at"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["item", "source"], condition=Q(source__in=ONCE_PER_ITEM),
                name="spend_once_per_item_and_source",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()} {self.amount} {self.currency}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise AppendOnlyError("spend entries are never changed; add a correction")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("spend entries are never deleted; add a correction")


class MonthlyCap(models.Model):
    """The optional cap on actual spend across all projects in a calendar month.

    One row at most; its lock serialises placements while a cap is set.
    """

    amount = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True,
        help_text="Most that may be committed in one calendar month (UTC), in USD; "
        "empty means no cap.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "monthly spending cap"
        verbose_name_plural = "monthly spending cap"

    def __str__(self) -> str:
        return f"{self.amount} USD a month" if self.amount is not None else "no monthly cap"

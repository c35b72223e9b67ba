"""Orders and the items they expand to: one item is one provider call."""
import secrets
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Count
from django.db.models.query import ModelIterable
from django.utils import timezone

from factory.models.catalog import FactoryMachine
from factory.models.lifecycle import FINISHED, ItemLifecycleQuerySet, ItemStatus
from factory.parameters.items import SEED_LIMIT
from factory.models.projects import Project


class OrderStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PLACED = "placed", "Placed"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    DONE_WITH_FAILURES = "done_with_failures", "Done with failures"
    CANCELLED = "cancelled", "Cancelled"


class PromptMode(models.TextChoices):
    COMBINATORIAL = "combinatorial", "Every combination"
    RANDOM = "random", "Random samples"


class SeedStrategy(models.TextChoices):
    FIXED = "fixed", "Fixed"
    RANDOM = "random", "Random per item"
    INCREMENT = "increment", "Counting up"


def draw_seed_base() -> int:
    """A fresh root for an order's random seeds, drawn once per order."""
    return secrets.randbelow(SEED_LIMIT)


class OrderQuerySet(models.QuerySet):
    """Orders; ``with_tallies()`` adds item counts read after the page."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._with_tallies = False

    def with_tallies(self) -> "OrderQuerySet":
        """Give each fetched order a ``tally`` from one grouped query.

        The counts are read for the fetched rows only, after any LIMIT, so
        a page of 100 orders never counts the items of all the others.
        """
        clone = self._chain()
        clone._with_tallies = True
        return clone

    def _clone(self) -> "OrderQuerySet":
        clone = super()._clone()
        clone._with_tallies = self._with_tallies
        return clone

    def _fetch_all(self) -> None:
        fresh = self._result_cache is None
        super()._fetch_all()
        if fresh and self._with_tallies and self._iterable_class is ModelIterable:
            from factory.production.watching import attach_tallies

            attach_tallies(self._result_cache)


class Order(models.Model):
    """A request for a batch of generations on one or more machines."""

    title = models.CharField(max_length=200, blank=True)
    machine = models.ForeignKey(
        FactoryMachine, on_delete=models.PROTECT, related_name="orders"
    )
    project = models.ForeignKey(
        Project, on_delete=models.PROTECT, null=True, blank=True,
        related_name="orders",
    )
    template = models.ForeignKey(
        "factory.Template", on_delete=models.SET_NULL, null=True, blank=True,
        related_name="orders",
    )
    source_order = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True,
        related_name="reorders", help_text="The order this one was copied from.",
    )
    prompt = models.TextField(
        blank=True,
        help_text="Prompt template: {a|b} variants, __wildcards__, ${token}.",
    )
    prompt_mode = models.CharField(
        max_length=15, choices=PromptMode.choices, default=PromptMode.COMBINATORIAL
    )
    prompt_samples = models.PositiveIntegerField(
        default=1, help_text="Prompts drawn in random mode."
    )
    tokens = models.JSONField(
        default=dict, blank=True, help_text="Values for ${name} in any text parameter."
    )
    base_parameters = models.JSONField(default=dict, blank=True)
    required_parameters = models.JSONField(
        default=list, blank=True,
        help_text="Parameters every machine must take; otherwise they may be "
        "dropped with a warning on machines that lack them.",
    )
    sweeps = models.JSONField(
        default=list, blank=True,
        help_text="Groups of value lists: zipped inside a group, multiplied across.",
    )
    runs = models.PositiveIntegerField(default=1)
    seed_strategy = models.CharField(
        max_length=10, choices=SeedStrategy.choices, default=SeedStrategy.RANDOM
    )
    seed = models.BigIntegerField(null=True, blank=True)
    seed_base = models.BigIntegerField(
        default=draw_seed_base, editable=False,
        help_text="Root of the random seeds: drawn once, so the preview's "
        "seeds are the placed ones.",
    )
    safety_checker = models.BooleanField(
        default=False, help_text="Turn the model's NSFW checker on."
    )
    item_ceiling = models.PositiveIntegerField(
        null=True, blank=True, help_text="Raise the item ceiling for this order."
    )
    status = models.CharField(
        max_length=20, choices=OrderStatus.choices, default=OrderStatus.DRAFT
    )
    item_count = models.PositiveIntegerField(default=0)
    estimated_cost = models.DecimalField(max_digits=12, decimal_places=4, default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    placed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = OrderQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "-created_at"])]
        permissions = [
            ("raise_item_ceiling", "Can raise an order's item ceiling"),
            ("place_order", "Can place orders, which spends"),
            ("cancel_order", "Can cancel orders and their items"),
        ]

    def __str__(self) -> str:
        return self.title or f"Order #{self.pk}"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from factory.parameters.schema import (
            ParameterError, check_plain_json, check_text,
        )
        from factory.parameters.sweeps import check_sweeps

        errors = {}
        for name in ("title", "prompt"):
            try:
                check_text(getattr(self, name), name)
            except ParameterError as exc:
                errors[name] = str(exc)
        for name in ("base_parameters", "sweeps", "tokens", "required_parameters"):
            try:
                check_plain_json(getattr(self, name), name)
            except ParameterError as exc:
                errors[name] = str(exc)
        if "sweeps" not in errors:
            try:
                check_sweeps(self.sweeps)
            except ParameterError as exc:
                errors["sweeps"] = str(exc)
        if errors:
            raise ValidationError(errors)


class OrderItemQuerySet(ItemLifecycleQuerySet):
    def unfinished(self) -> "OrderItemQuerySet":
        """Items that a worker, the foreman or the sweeper still has to drive."""
        return self.exclude(status__in=FINISHED)

    def progress(self) -> dict[str, int]:
        """Item counts by state, for one order or many."""
        counts = dict(
            self.order_by().values_list("status").annotate(n=Count("id"))
        )
        return {status: counts.get(status, 0) for status in ItemStatus.values}


class OrderItem(models.Model):
    """One fully resolved parameter set: one provider call."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    machine = models.ForeignKey(
        FactoryMachine, on_delete=models.PROTECT, related_name="items"
    )
    index = models.PositiveIntegerField()
    status = models.CharField(
        max_length=20, choices=ItemStatus.choices, default=ItemStatus.PENDING
    )
    field_values = models.JSONField(
        default=dict, blank=True, help_text="What the sweep chose for this item."
    )
    parameters = models.JSONField(help_text="Exactly what is sent to the provider.")
    seed = models.BigIntegerField(null=True, blank=True)
    request_id = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    lease_owner = models.CharField(max_length=120, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When a pending item waiting out a retry delay or a provider's "
        "pause falls due; the foreman queues its submit then.",
    )
    last_error = models.TextField(blank=True)
    cost = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    retry_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True,
        related_name="retries",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = OrderItemQuerySet.as_manager()

    class Meta:
        ordering = ["order", "index"]
        permissions = [("retry_item", "Can retry failed items, which spends")]
        constraints = [
            models.UniqueConstraint(fields=["order", "index"], name="item_unique_index")
        ]
        indexes = [
            models.Index(fields=["status", "lease_until"]),
            models.Index(fields=["status", "due_at"]),
            models.Index(fields=["order", "status"]),
        ]

    def __str__(self) -> str:
        return f"{self.order_id}#{self.index}"

    @property
    def provider_key(self) -> str:
        """A key unique to this item, even across a database reset: the
        idempotency key of its submission and what finds it again."""
        return f"item-{self.pk}-{int(self.created_at.timestamp())}"


class EventKind(models.TextChoices):
    RETRY = "retry", "Retry later"
    RATE_LIMITED = "rate_limited", "Rate limited"
    UNKNOWN = "unknown", "Outcome unknown"
    RECONCILED = "reconciled", "Found at the provider"
    RESENT = "resent", "Sent again"
    READ = "read", "Status or result not read"
    CANCEL = "cancel", "Cancel at the provider failed"
    FAILED = "failed", "Failed"
    STOPPED = "stopped", "Stopped by a spending cap"


EVENT_MESSAGE_CHARS = 4000


class ItemEventQuerySet(models.QuerySet):
    def record(self, item_id: int, kind: str, message: str) -> "ItemEvent":
        """Append one event to an item's history; events are never edited."""
        return self.create(item_id=item_id, kind=kind,
                           message=message[:EVENT_MESSAGE_CHARS])


class ItemEvent(models.Model):
    """One thing that happened to an item on its way: its history.

    ``OrderItem.last_error`` says only what is wrong now; attempts,
    refusals, reconciliations and resends stay here, shown on the item's
    page, so a completed item does not read like a failure.
    """

    item = models.ForeignKey(OrderItem, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=20, choices=EventKind.choices)
    message = models.TextField(blank=True)

    objects = ItemEventQuerySet.as_manager()

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["item", "at"])]

    def __str__(self) -> str:
        return f"{self.item_id} {self.kind} at {self.at:%Y-%m-%d %H:%M:%S}"

"""The catalog: providers and the factory machines they run."""
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


class Modality(models.TextChoices):
    IMAGE = "image", "Image"
    VIDEO = "video", "Video"
    AUDIO = "audio", "Audio"


class PriceUnit(models.TextChoices):
    REQUEST = "request", "per request"
    OUTPUT = "output", "per output"
    MEGAPIXEL = "megapixel", "per megapixel"
    SECOND = "second", "per second of output"
    COMPUTE_SECOND = "compute_second", "per compute second"


class Provider(models.Model):
    """A hosted AI service; keys come from the environment, never the DB."""

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=100)
    concurrency_limit = models.PositiveIntegerField(
        default=4, help_text="Generations in flight at once, across all workers."
    )
    is_active = models.BooleanField(default=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def missing_key(self) -> str | None:
        """The setting to set before this provider can take orders, if any."""
        from factory.providers import missing_key

        return missing_key(self.slug)


class FactoryMachineQuerySet(models.QuerySet):
    def active(self) -> "FactoryMachineQuerySet":
        """Machines that may take new orders."""
        return self.filter(is_active=True, provider__is_active=True)


class FactoryMachine(models.Model):
    """One provider + one model endpoint, described entirely by catalog data."""

    provider = models.ForeignKey(
        Provider, on_delete=models.PROTECT, related_name="machines"
    )
    slug = models.SlugField(max_length=120, unique=True)
    name = models.CharField(max_length=200)
    endpoint_id = models.CharField(
        max_length=255, help_text="Provider model id, e.g. fal-ai/flux/dev."
    )
    version = models.CharField(max_length=100, blank=True)
    modality = models.CharField(max_length=10, choices=Modality.choices)
    input_schema = models.JSONField(help_text="JSON Schema of the model's inputs.")
    defaults = models.JSONField(default=dict, blank=True)
    aliases = models.JSONField(
        default=dict,
        blank=True,
        help_text="Common parameter name → this model's key, e.g. "
        '{"steps": "num_inference_steps"}.',
    )
    safety = models.JSONField(
        default=dict,
        blank=True,
        help_text='NSFW switch: {"key": …, "off": …, "on": …}; empty if none.',
    )
    output_key = models.CharField(
        max_length=100, blank=True, help_text="Where outputs sit in the result."
    )
    price_amount = models.DecimalField(
        max_digits=12, decimal_places=6, default=Decimal("0")
    )
    price_unit = models.CharField(
        max_length=20, choices=PriceUnit.choices, default=PriceUnit.OUTPUT
    )
    price_currency = models.CharField(max_length=10, default="USD")
    price_source = models.CharField(
        max_length=300, blank=True,
        help_text="Where the price comes from: the provider's pricing page or API.",
    )
    typical_run_seconds = models.DecimalField(
        max_digits=8, decimal_places=2, null=True, blank=True,
        help_text="Typical compute seconds of one call, for machines priced per "
        "compute second; refined from the machine's measured runs.",
    )
    concurrency_limit = models.PositiveIntegerField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    description = models.TextField(blank=True)
    starred_by = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="starred_machines",
        help_text="Users who pinned this machine to the top of the picker.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = FactoryMachineQuerySet.as_manager()

    class Meta:
        ordering = ["provider__name", "name"]
        indexes = [models.Index(fields=["modality", "is_active"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.provider.slug})"

    @property
    def price_label(self) -> str:
        """The price as people read it: ``0.025 USD per megapixel``."""
        if not self.price_amount:
            return "Free"
        amount = f"{self.price_amount.normalize():f}"
        return f"{amount} {self.price_currency} {self.get_price_unit_display()}"

    @property
    def accepted_keys(self) -> list[str]:
        """Input keys the model accepts, in schema order."""
        return list(self.input_schema.get("properties", {}))

    def clean(self) -> None:
        from factory.parameters.schema import check_machine_schema

        try:
            check_machine_schema(self.input_schema, self.defaults)
        except ValueError as exc:
            raise ValidationError({"input_schema": str(exc)}) from exc

    def safety_parameters(self, enabled: bool) -> dict[str, Any]:
        """The parameter that turns the model's NSFW checker on or off."""
        if not self.safety:
            return {}
        return {self.safety["key"]: self.safety["on" if enabled else "off"]}

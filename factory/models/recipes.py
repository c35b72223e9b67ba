"""Reusable recipes: saved order templates and prompt wildcards."""
from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from factory.models.catalog import FactoryMachine
from factory.models.orders import PromptMode, SeedStrategy


class Template(models.Model):
    """A saved order recipe: machine, parameters, prompt and sweeps."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    machine = models.ForeignKey(
        FactoryMachine, on_delete=models.PROTECT, related_name="templates"
    )
    prompt = models.TextField(blank=True)
    prompt_mode = models.CharField(
        max_length=15, choices=PromptMode.choices, default=PromptMode.COMBINATORIAL
    )
    prompt_samples = models.PositiveIntegerField(default=1)
    tokens = models.JSONField(default=dict, blank=True)
    base_parameters = models.JSONField(default=dict, blank=True)
    required_parameters = models.JSONField(default=list, blank=True)
    sweeps = models.JSONField(default=list, blank=True)
    runs = models.PositiveIntegerField(default=1)
    seed_strategy = models.CharField(
        max_length=10, choices=SeedStrategy.choices, default=SeedStrategy.RANDOM
    )
    seed = models.BigIntegerField(null=True, blank=True)
    safety_checker = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


wildcard_name = RegexValidator(
    r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*$",
    "Use letters, digits, - and _, with / for nesting (colors/warm).",
)


class Wildcard(models.Model):
    """A named list of prompt fragments, used as __name__ in prompts."""

    name = models.CharField(max_length=200, unique=True, validators=[wildcard_name])
    values = models.JSONField(default=list, help_text="One fragment per entry.")
    description = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

"""Load the catalog of providers and machines from the seed JSON files.

``factory.seed_files`` reads and checks every file first; this module only
writes the rows it returns and counts what changed, for the console.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import Exists, OuterRef, Q

from factory.models import FactoryMachine, Provider
from factory.seed_files import SeedError, read_catalog

__all__ = ["LoadReport", "SeedError", "default_seed_dir", "load_catalog",
           "read_catalog"]


@dataclass
class LoadReport:
    """What a load did, counted in provider and machine rows."""

    providers: int = 0
    machines: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    kept: int = 0
    kept_slugs: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the console."""
        line = (
            f"Catalog: {self.providers} providers, {self.machines} machines; "
            f"{self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.removed} removed, "
            f"{self.kept} kept"
        )
        if self.kept_slugs:
            line += f" (in use: {', '.join(self.kept_slugs)})"
        return line


def default_seed_dir() -> Path:
    return Path(settings.BASE_DIR) / "seeds"


def load_catalog(seed_dir: Path, reset: bool = False) -> LoadReport:
    """Create or update every seeded provider and machine; safe to rerun.

    All files are read and checked before anything is written; the rows are
    then written in one transaction keyed by slug, so a failed load changes
    nothing and a rerun updates rows instead of duplicating them. With
    ``reset``, machines the seeds no longer list are deleted unless an order,
    item, template or product refers to them; those are kept and reported.
    """
    catalog = read_catalog(seed_dir)
    report = LoadReport(len(catalog.providers), len(catalog.machines))
    with transaction.atomic():
        provider_ids = {
            slug: _upsert(Provider, slug, fields, report).pk
            for slug, fields in catalog.providers.items()
        }
        for slug, fields in catalog.machines.items():
            fields = {**fields, "provider_id": provider_ids[fields["provider"]]}
            del fields["provider"]
            _upsert(FactoryMachine, slug, fields, report)
        if reset:
            _remove_unlisted(set(catalog.machines), report)
    return report


def _upsert(
    model: type[models.Model], slug: str, fields: dict[str, Any],
    report: LoadReport,
) -> models.Model:
    """Create or update the row with ``slug``; left alone when nothing differs."""
    current = model.objects.filter(slug=slug).first()
    if current is not None and all(
        getattr(current, name) == value for name, value in fields.items()
    ):
        report.unchanged += 1
        return current
    row, created = model.objects.update_or_create(slug=slug, defaults=fields)
    if created:
        report.created += 1
    else:
        report.updated += 1
    return row


def _remove_unlisted(seeded: set[str], report: LoadReport) -> None:
    """Delete machines the seeds no longer list, keeping those in use."""
    unlisted = FactoryMachine.objects.exclude(slug__in=seeded)
    kept = sorted(unlisted.filter(_in_use()).values_list("slug", flat=True))
    try:
        _, deleted = unlisted.exclude(slug__in=kept).delete()
    except models.ProtectedError as exc:
        # An order arrived between the check and the delete.
        raise SeedError(f"a machine came into use during the reset: {exc}") from exc
    report.removed = deleted.get(FactoryMachine._meta.label, 0)
    report.kept, report.kept_slugs = len(kept), kept


def _in_use() -> Q:
    """Some other row (an order, item, template, product…) points at it."""
    checks = [
        Exists(
            rel.related_model._base_manager.filter(**{rel.field.name: OuterRef("pk")})
        )
        for rel in FactoryMachine._meta.related_objects
    ]
    # No relations at all gives an empty Q, which keeps every machine.
    return Q(*checks, _connector=Q.OR)

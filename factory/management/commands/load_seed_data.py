"""Load the provider and machine catalog from the seed JSON files."""
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from factory.seeding import SeedError, default_seed_dir, load_catalog


class Command(BaseCommand):
    help = (
        "Create or update providers and machines from seeds/; safe to rerun. "
        "Nothing is written unless every file is valid."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reset", action="store_true",
            help="Also delete machines the seeds no longer list, unless an "
            "order, item, template or product uses them.",
        )
        parser.add_argument(
            "--seed-dir", type=Path, default=None,
            help="Directory holding providers.json and machines/ "
            "(default: seeds/ in the project).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        seed_dir = options["seed_dir"] or default_seed_dir()
        try:
            report = load_catalog(seed_dir, reset=options["reset"])
        except SeedError as exc:
            raise CommandError(str(exc)) from exc
        if options["verbosity"] > 0:
            self.stdout.write(self.style.SUCCESS(report.summary()))

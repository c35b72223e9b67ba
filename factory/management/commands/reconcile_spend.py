"""Compare the spend ledger with the providers' billing records.

Exit status: 0 when nothing differs (or every difference was just
recorded as a correction), 1 when differences were found and not
recorded, 2 when a provider could not be read or an argument is wrong.
"""
import sys
from datetime import date, datetime, time, timezone as tz
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from factory.models import Provider
from factory.providers import BACKENDS
from factory.providers.base import ProviderError
from factory import reconciliation
from factory.reconciliation import Difference, Report
from factory.spending import month_start


def parse_since(text: str) -> datetime:
    """``2026-12-01`` (midnight UTC) or an ISO 8601 moment; naive is UTC."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = datetime.combine(date.fromisoformat(text), time())
        except ValueError:
            raise CommandError(
                f"--since {text!r}: not a date; use YYYY-MM-DD or an ISO 8601 "
                "time such as 2026-12-01T08:00:00Z", returncode=2) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz.utc)
    if moment > timezone.now():
        raise CommandError(f"--since {text!r} is in the future", returncode=2)
    return moment


class Command(BaseCommand):
    help = (
        "Compare the ledger's actual charges per request with what each provider's "
        "own records billed, and list the differences. Writes nothing unless "
        "--record-corrections. Exit 1 when differences remain, 2 on errors."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--provider", help="Only this provider (slug).")
        parser.add_argument("--since", help="From this date or time (UTC); default: "
                            "the start of this month.")
        parser.add_argument("--record-corrections", action="store_true",
                            help="Append a correction entry per difference.")

    def handle(self, *args: Any, provider: str | None, since: str | None,
               record_corrections: bool, **options: Any) -> None:
        start = parse_since(since) if since else month_start()
        slugs = [provider] if provider else sorted(
            Provider.objects.filter(slug__in=BACKENDS).values_list("slug", flat=True))
        remaining = 0
        for slug in slugs:
            report = self._reconcile(slug, start)
            self._print(report)
            if report.differences and record_corrections:
                written = len(reconciliation.record_corrections(report))
                self.stdout.write(f"  recorded {written} correction(s)")
            elif report.differences:
                remaining += len(report.differences)
        if remaining:
            self.stderr.write(f"{remaining} difference(s) not recorded; rerun with "
                              "--record-corrections to append corrections")
            sys.exit(1)

    def _reconcile(self, slug: str, start: datetime) -> Report:
        try:
            return reconciliation.reconcile(slug, start)
        except LookupError as exc:
            raise CommandError(str(exc), returncode=2) from None
        except ProviderError as exc:
            raise CommandError(f"{slug}: its billing records could not be read: {exc}",
                               returncode=2) from None

    def _print(self, report: Report) -> None:
        head = f"{report.provider} since {report.since:%Y-%m-%d %H:%M} UTC"
        if report.no_listing:
            self.stdout.write(f"{head}: not compared: {report.no_listing}")
            return
        self.stdout.write(f"{head}: {report.billed} billed request(s), "
                          f"{report.in_ledger} in the ledger")
        sections = (
            ("charged by the provider, unknown to the ledger", report.unknown_to_ledger),
            ("in the ledger, unknown to the provider", report.unknown_to_provider),
            ("amounts differ", report.amounts_differ),
        )
        for title, rows in sections:
            if rows:
                self.stdout.write(f"  {title} ({len(rows)}):")
                for row in rows:
                    self.stdout.write(_line(row))
        if not report.differences:
            self.stdout.write("  no differences")


def _line(row: Difference) -> str:
    return (f"    {row.request_id}  ledger {row.ledger} {row.currency}, "
            f"provider {row.provider} {row.currency}")


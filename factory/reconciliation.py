"""Compare the spend ledger with what each provider's own records billed.

The ledger's actual entries (provider-reported, estimated and correction
entries) are summed per request id and compared, at the ledger's
precision, with the provider's billed requests since a moment. Three
kinds of difference come out: requests the provider charged that the
ledger does not know, ledger charges the provider does not know, and
requests both know at different amounts. ``record_corrections`` appends
one ``correction`` entry per difference, the provider's amount minus the
ledger's, so that a rerun finds none; nothing is ever changed.
"""
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.db.models import Sum

from factory.models import FactoryMachine, OrderItem, Provider, SpendEntry, SpendSource
from factory.providers import get_backend
from factory.providers.base import BilledRequest, NoListingError
from factory.spending import price_of

PRECISION = Decimal("0.0001")  # SpendEntry.amount's decimal places


def _rounded(amount: Decimal) -> Decimal:
    return Decimal(amount).quantize(PRECISION, ROUND_HALF_UP)


@dataclass(frozen=True)
class Difference:
    """One request whose ledger amount is not what the provider billed."""

    request_id: str
    ledger: Decimal
    provider: Decimal
    currency: str = "USD"
    endpoint: str = ""

    @property
    def correction(self) -> Decimal:
        return self.provider - self.ledger


@dataclass
class Report:
    """What one provider's records and the ledger disagree on."""

    provider: str
    since: datetime
    no_listing: str = ""
    billed: int = 0
    in_ledger: int = 0
    unknown_to_ledger: list[Difference] = field(default_factory=list)
    unknown_to_provider: list[Difference] = field(default_factory=list)
    amounts_differ: list[Difference] = field(default_factory=list)

    @property
    def differences(self) -> list[Difference]:
        return [*self.unknown_to_ledger, *self.unknown_to_provider, *self.amounts_differ]


def ledger_amounts(provider: Provider, since: datetime) -> dict[str, Decimal]:
    """Actual charges per request id of requests charged since ``since``.

    A request counts when any of its actual entries is that recent; all of
    its entries are then summed, older corrections included.
    """
    actual = SpendEntry.objects.actual().filter(provider=provider).exclude(request_id="")
    recent = actual.filter(created_at__gte=since).values("request_id")
    rows = actual.filter(request_id__in=recent).values("request_id").annotate(
        total=Sum("amount")).order_by()
    return {row["request_id"]: row["total"] for row in rows}


def reconcile(slug: str, since: datetime) -> Report:
    """Compare ``slug``'s billed requests since ``since`` with the ledger.

    Reads only. Raises LookupError for an unknown provider and the
    adapter's ProviderError when its records cannot be read.
    """
    provider = Provider.objects.filter(slug=slug).first()
    if provider is None:
        known = sorted(Provider.objects.values_list("slug", flat=True))
        raise LookupError(f"no provider {slug!r}; known: {', '.join(known)}")
    report = Report(slug, since)
    prices = {m.endpoint_id: price_of(m)
              for m in FactoryMachine.objects.filter(provider=provider)}
    try:
        billed = get_backend(slug).usage(since, prices)
    except NoListingError as exc:
        report.no_listing = str(exc)
        return report
    ledger = ledger_amounts(provider, since)
    theirs = _by_request(billed)
    older = set(theirs) - set(ledger)
    if older:  # charged here before ``since``, billed by them after it
        ledger.update(_totals(provider, older))
    report.billed, report.in_ledger = len(theirs), len(ledger)
    for rid in sorted(set(theirs) | set(ledger)):
        _compare(report, rid, ledger.get(rid), theirs.get(rid))
    return report


def _by_request(billed: list[BilledRequest]) -> dict[str, BilledRequest]:
    merged: dict[str, BilledRequest] = {}
    for row in billed:
        before = merged.get(row.request_id)
        merged[row.request_id] = row if before is None else BilledRequest(
            row.request_id, before.amount + row.amount, row.currency,
            before.units + row.units, row.unit, row.endpoint)
    return merged


def _totals(provider: Provider, request_ids: set[str]) -> dict[str, Decimal]:
    rows = SpendEntry.objects.actual().filter(
        provider=provider, request_id__in=request_ids,
    ).values("request_id").annotate(total=Sum("amount")).order_by()
    return {row["request_id"]: row["total"] for row in rows}


def _compare(report: Report, rid: str, ours: Decimal | None,
             theirs: BilledRequest | None) -> None:
    ledger = _rounded(ours or 0)
    billed = _rounded(theirs.amount if theirs is not None else 0)
    if ledger == billed:
        return
    found = Difference(rid, ledger, billed, theirs.currency if theirs else "USD",
                       theirs.endpoint if theirs else "")
    if ours is None:
        report.unknown_to_ledger.append(found)
    elif theirs is None:
        report.unknown_to_provider.append(found)
    else:
        report.amounts_differ.append(found)


def record_corrections(report: Report) -> list[SpendEntry]:
    """Append one correction per difference in ``report``; returns them.

    Each is tied to the item that made the request where one did, so it
    counts against that project's budget and the month's cap.
    """
    provider = Provider.objects.get(slug=report.provider)
    ids = [d.request_id for d in report.differences]
    items = {i.request_id: i for i in OrderItem.objects.filter(
        machine__provider=provider, request_id__in=ids).select_related("order", "machine")}
    machines = {m.endpoint_id: m for m in FactoryMachine.objects.filter(provider=provider)}
    entries = [_correction(provider, d, items.get(d.request_id), machines.get(d.endpoint))
               for d in report.differences]
    with transaction.atomic():
        return SpendEntry.objects.bulk_create(entries)


def _correction(provider: Provider, diff: Difference, item: OrderItem | None,
                machine: FactoryMachine | None) -> SpendEntry:
    machine = item.machine if item is not None else machine
    return SpendEntry(
        item=item, order=item.order if item else None,
        project_id=item.order.project_id if item else None,
        provider=provider, machine=machine,
        user_id=item.order.created_by_id if item else None,
        request_id=diff.request_id, source=SpendSource.CORRECTION,
        amount=diff.correction, currency=diff.currency,
        note=(f"reconciled with {provider.slug}'s records: billed {diff.provider}, "
              f"ledger had {diff.ledger}")[:500],
    )

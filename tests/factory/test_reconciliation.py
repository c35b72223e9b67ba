"""The ledger against the fakes' billing records, after real production runs."""
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from factory.models import (
    FactoryMachine, ItemStatus, Order, OrderItem, SpendEntry, SpendSource,
)
from factory.ordering import place_order
from tests.fakes.fal import FakeFal
from tests.fakes.replicate import FakeReplicate, Outcome

CENTS4 = Decimal("0.0001")


class PlannedFal(FakeFal):
    """FakeFal whose n-th accepted request fails or is cancelled, as planned."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.plan: dict[int, str] = {}

    def _submit(self, request, match):
        answer = super()._submit(request, match)
        if answer.status == 200:
            job = self.jobs[answer.body["request_id"]]
            what = self.plan.get(len(self.ledger) - 1)
            if what == "cancel":
                job.cancelled = True
            elif what:
                job.fault = what
        return answer


@pytest.fixture
def fakes(settings, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    fal = PlannedFal(key="test-key", polls_per_stage=1).start()
    replicate = FakeReplicate(token="r8_fake").start()
    settings.FAL_KEY = "test-key"
    settings.FAL_QUEUE_URL = fal.url + "/"
    settings.FAL_API_URL = fal.url
    settings.REPLICATE_API_TOKEN = "r8_fake"
    settings.REPLICATE_BASE_URL = replicate.url
    settings.DOWNLOAD_ALLOW_HTTP = True
    settings.DOWNLOAD_ALLOWED_PRIVATE_HOSTS = [
        fal.url.removeprefix("http://"), replicate.url.removeprefix("http://")]
    yield fal, replicate
    fal.stop()
    replicate.stop()


def run(work) -> None:
    try:
        work()
    except AssertionError:
        raise AssertionError(list(OrderItem.objects.values_list(
            "machine__slug", "status", "last_error", "lease_until")))


@pytest.fixture
def produced(catalog, lead, fakes, work_queues, django_capture_on_commit_callbacks):
    """fal and Replicate orders run to the end, with failures and cancellations."""
    fal, replicate = fakes
    fal.plan = {1: "failed", 2: "cancel", 3: "rejected"}
    with django_capture_on_commit_callbacks(execute=True):
        flux = Order.objects.create(
            machine=FactoryMachine.objects.get(slug="fal-flux-dev"),
            prompt="a lighthouse at dusk", base_parameters={"image_size": "square"},
            runs=5, seed=1, created_by=lead)
        place_order(flux)
    run(work_queues)
    replicate.outcomes.extend([Outcome("ok"), Outcome("failed"), Outcome("broken")])
    with django_capture_on_commit_callbacks(execute=True):
        place_order(Order.objects.create(
            machine=FactoryMachine.objects.get(slug="replicate-flux-schnell"),
            prompt="a lighthouse at dusk", runs=3, seed=1, created_by=lead))
    run(work_queues)
    replicate.predict_seconds = 6.0
    replicate.outcomes.extend([Outcome("ok"), Outcome("failed"), Outcome("canceled")])
    with django_capture_on_commit_callbacks(execute=True):
        place_order(Order.objects.create(
            machine=FactoryMachine.objects.get(slug="replicate-sdxl"),
            prompt="a lighthouse at dusk", runs=3, seed=1, created_by=lead))
    run(work_queues)
    return fal, replicate


def rounded(amounts) -> Decimal:
    return sum((Decimal(a).quantize(CENTS4, ROUND_HALF_UP) for a in amounts), Decimal(0))


def reconcile(*args: str) -> tuple[int, str]:
    since = (timezone.now() - timedelta(hours=1)).isoformat()
    out, err = StringIO(), StringIO()
    try:
        call_command("reconcile_spend", "--since", since, *args, stdout=out, stderr=err)
    except SystemExit as exc:
        return int(exc.code), out.getvalue()
    return 0, out.getvalue()


def actual(provider: str) -> Decimal:
    return SpendEntry.objects.actual().filter(provider__slug=provider).total()


@pytest.mark.django_db
def test_ledger_equals_what_the_fakes_billed_and_reconciles_clean(produced):
    fal, replicate = produced
    statuses = sorted(OrderItem.objects.values_list("machine__slug", "status"))
    assert statuses.count(("fal-flux-dev", ItemStatus.COMPLETED)) == 2
    assert statuses.count(("fal-flux-dev", ItemStatus.FAILED)) == 2
    assert statuses.count(("fal-flux-dev", ItemStatus.CANCELLED)) == 1
    assert statuses.count(("replicate-flux-schnell", ItemStatus.FAILED)) == 2
    assert statuses.count(("replicate-sdxl", ItemStatus.CANCELLED)) == 1
    assert len(fal.charged()) == 2
    # ok + broken schnell (billed: it succeeded there), and all three sdxl runs
    assert len(replicate.charged()) == 5
    assert actual("fal") == rounded(fal.charged().values()) == Decimal("0.0008")
    assert actual("replicate") == rounded(replicate.charged().values())
    assert actual("replicate") == Decimal("0.003") * 2 + Decimal("0.0059") * 3
    code, out = reconcile()
    assert code == 0, out
    assert "fal since" in out and out.count("no differences") == 2
    assert "civitai since" in out and "Civitai has no listing" in out
    assert "demo bills nothing" in out


@pytest.mark.django_db
def test_a_deleted_entry_is_reported_then_corrected(produced):
    fal, _ = produced
    entry = SpendEntry.objects.filter(provider__slug="fal",
                                      source=SpendSource.PROVIDER).first()
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {SpendEntry._meta.db_table} WHERE id = %s",
                       [entry.pk])
    code, out = reconcile("--provider", "fal")
    assert code == 1
    assert "charged by the provider, unknown to the ledger (1):" in out
    assert f"{entry.request_id}  ledger 0.0000 USD, provider {entry.amount} USD" in out
    assert "unknown to the provider" not in out and "amounts differ" not in out
    code, out = reconcile("--provider", "fal", "--record-corrections")
    assert code == 0 and "recorded 1 correction(s)" in out
    correction = SpendEntry.objects.get(source=SpendSource.CORRECTION)
    assert (correction.request_id, correction.amount) == (entry.request_id, entry.amount)
    assert correction.item_id == entry.item_id
    code, out = reconcile("--provider", "fal")
    assert code == 0 and "no differences" in out
    assert actual("fal") == rounded(fal.charged().values())


@pytest.mark.django_db
def test_unknown_request_and_amount_difference_are_reported(produced):
    item = OrderItem.objects.filter(machine__slug="replicate-flux-schnell",
                                    status=ItemStatus.COMPLETED).get()
    SpendEntry.objects.create(
        item=None, provider=item.machine.provider, machine=item.machine,
        request_id="not-a-prediction", source=SpendSource.CORRECTION,
        amount=Decimal("0.5"), note="typed in by hand")
    SpendEntry.objects.create(
        item=item, provider=item.machine.provider, machine=item.machine,
        request_id=item.request_id, source=SpendSource.CORRECTION,
        amount=Decimal("0.01"), note="wrong")
    code, out = reconcile("--provider", "replicate")
    assert code == 1
    assert ("in the ledger, unknown to the provider (1):\n"
            "    not-a-prediction  ledger 0.5000 USD, provider 0.0000 USD") in out
    assert (f"amounts differ (1):\n    {item.request_id}  ledger 0.0130 USD, "
            f"provider 0.0030 USD") in out
    reconcile("--provider", "replicate", "--record-corrections")
    assert reconcile("--provider", "replicate")[0] == 0


@pytest.mark.django_db
def test_refusals_and_bad_arguments_are_clear_errors(catalog, fakes, settings):
    fal, _ = fakes
    with pytest.raises(CommandError, match=r"--since 'yesterday': not a date"):
        call_command("reconcile_spend", "--since", "yesterday")
    with pytest.raises(CommandError, match=r"no provider 'nope'; known: civitai"):
        call_command("reconcile_spend", "--provider", "nope")
    settings.FAL_KEY = "inference-only-key"
    with pytest.raises(CommandError, match=r"fal: its billing records could not be "
                                           r"read: .*403.*check FAL_KEY"):
        call_command("reconcile_spend", "--provider", "fal")
    settings.FAL_KEY = "test-key"
    from tests.fakes.base import Fault
    fal.faults.push("billing-events", Fault("status", 503, {"detail": "down"}))
    with pytest.raises(CommandError, match=r"fal: its billing records could not be "
                                           r"read: .*503"):
        call_command("reconcile_spend", "--provider", "fal")
    settings.REPLICATE_API_TOKEN = "r8_wrong"
    with pytest.raises(CommandError, match=r"replicate: its billing records could "
                                           r"not be read: .*401"):
        call_command("reconcile_spend", "--provider", "replicate")


@pytest.mark.django_db
def test_fal_usage_listing_pages_and_filters_in_the_documented_shape(produced):
    import httpx
    fal, _ = produced
    url = fal.url + "/v1/models/usage"
    headers = {"Authorization": "Key test-key"}
    first = httpx.get(url, params={"limit": 1}, headers=headers).json()
    assert first["has_more"] is False and first["next_cursor"] is None
    row = first["time_series"][0]["results"][0]
    assert set(row) == {"endpoint_id", "unit", "quantity", "unit_price", "cost",
                        "currency", "auth_method"}
    assert row["endpoint_id"] == "fal-ai/flux/dev" and row["unit"] == "megapixels"
    assert row["quantity"] == pytest.approx(2 * 128 * 128 / 1e6)
    assert row["cost"] == pytest.approx(float(sum(fal.charged().values())))
    other = httpx.get(url, params={"endpoint_id": "fal-ai/fast-sdxl"},
                      headers=headers).json()
    assert other == {"time_series": [], "next_cursor": None, "has_more": False}
    events = httpx.get(fal.url + "/v1/models/billing-events",
                       params={"limit": 1}, headers=headers).json()
    assert len(events["billing_events"]) == 1 and events["has_more"] is True
    rest = httpx.get(fal.url + "/v1/models/billing-events", headers=headers,
                     params={"limit": 1, "cursor": events["next_cursor"]}).json()
    assert rest["has_more"] is False
    assert {e["request_id"] for e in events["billing_events"] + rest["billing_events"]} \
        == set(fal.charged())
    denied = httpx.get(url, headers={"Authorization": "Key inference-only-key"})
    assert denied.status_code == 403


@pytest.mark.django_db
def test_a_prediction_cancelled_here_while_running_is_charged_its_time(
        catalog, lead, fakes, redis_db, django_capture_on_commit_callbacks):
    import django_rq
    from rq import SimpleWorker

    from factory.production.cancel import cancel_order

    _, replicate = fakes
    replicate.run_seconds, replicate.predict_seconds = 60, 4.0

    def burst() -> None:
        with django_capture_on_commit_callbacks(execute=True):
            django_rq.get_worker("submit", "collect", "default",
                                 worker_class=SimpleWorker).work(burst=True)

    with django_capture_on_commit_callbacks(execute=True):
        order = place_order(Order.objects.create(
            machine=FactoryMachine.objects.get(slug="replicate-sdxl"),
            prompt="a lighthouse at dusk", runs=1, seed=1, created_by=lead))
    burst()
    item = order.items.get()
    replicate._advance(item.request_id)  # it starts running
    with django_capture_on_commit_callbacks(execute=True):
        cancel_order(order)
    burst()
    item.refresh_from_db()
    assert item.status == ItemStatus.CANCELLED
    assert replicate.prediction(item.request_id)["status"] == "canceled"
    charge = SpendEntry.objects.actual().get()
    assert (charge.item_id, charge.source, charge.units, charge.amount) == (
        item.pk, SpendSource.PROVIDER, Decimal("4"), Decimal("0.0039"))
    assert rounded(replicate.charged().values()) == Decimal("0.0039")
    assert reconcile("--provider", "replicate")[0] == 0

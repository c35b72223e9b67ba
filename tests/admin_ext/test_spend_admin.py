"""Spend in the admin: the ledger, the cap, project balances, reports, previews."""
import csv
import io
import json
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from admin_ext.dashboard import spend_context
from admin_ext.data.formats import FORMATS
from admin_ext.data.resources import SpendEntryResource
from factory.models import (
    FactoryMachine, ItemStatus, MonthlyCap, Order, Project, SpendEntry, SpendSource,
)
from tests.progress_data import build_order

LEDGER = reverse("admin:factory_spendentry_changelist")
REPORT = reverse("admin:factory_spendentry_report")
CSV, XLSX = 0, 1


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def spent_order(project: Project | None, user, *, completed: int = 2, failed: int = 1,
                estimate: str = "0.05", actual: str = "0.06", title: str = "Spent") -> Order:
    """An order whose completed items cost ``actual`` each against ``estimate``,
    whose failed items were released, written straight into the ledger."""
    order = build_order(completed=completed, failed=failed, title=title)
    Order.objects.filter(pk=order.pk).update(
        project=project, created_by=user,
        estimated_cost=Decimal(estimate) * (completed + failed))
    order.refresh_from_db()
    machine = order.machine
    common = {"order": order, "project": project, "provider_id": machine.provider_id,
              "machine": machine, "user": user}
    SpendEntry.objects.create(**common, source=SpendSource.RESERVATION,
                              units=completed + failed, unit="items",
                              amount=Decimal(estimate) * (completed + failed))
    for item in order.items.all():
        SpendEntry.objects.create(**common, item=item, source=SpendSource.RELEASE,
                                  amount=-Decimal(estimate))
        if item.status == ItemStatus.COMPLETED:
            SpendEntry.objects.create(
                **common, item=item, source=SpendSource.PROVIDER,
                request_id=f"req-{item.pk}", units=1, unit="output",
                unit_price=Decimal(actual), amount=Decimal(actual))
    return order


@pytest.fixture
def ledger(catalog, lead, operator):
    coast = Project.objects.create(name="Coastal", budget=Decimal("0.10"))
    inland = Project.objects.create(name="Inland", budget=Decimal("50"))
    first = spent_order(coast, lead, title="Coast")            # 0.12 actual: reached
    second = spent_order(inland, operator, completed=1, failed=0, estimate="0.20",
                         actual="0.10", title="Inland")
    return {"coast": coast, "inland": inland, "first": first, "second": second}


def _totals(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-total="(\w+)">([^<]+)<', html))


# ------------------------------------------------------------------ ledger
@pytest.mark.django_db
def test_ledger_lists_every_column_and_totals_the_filtered_rows(ledger, viewer):
    client = client_for(viewer)
    html = client.get(LEDGER).content.decode()
    assert _totals(html) == {"actual": "0.22 USD", "committed": "0.22 USD",
                             "held": "0.00 USD"}
    for heading in ("Source", "Project", "Order", "Item", "Machine", "Provider",
                    "User", "Request id", "Units", "Unit price", "Amount"):
        assert f">{heading}<" in html or heading in html
    item = ledger["first"].items.filter(status=ItemStatus.COMPLETED).first()
    assert f"req-{item.pk}" in html and "1 output" in html
    coast = client.get(LEDGER, {"project__id__exact": ledger["coast"].pk}).content.decode()
    assert _totals(coast)["actual"] == "0.12 USD"
    released = client.get(LEDGER, {"source": "release"}).content.decode()
    assert _totals(released) == {"actual": "0.00 USD", "committed": "-0.35 USD",
                                 "held": "-0.35 USD"}


@pytest.mark.django_db
def test_ledger_filters_by_machine_provider_user_and_date(ledger, viewer, operator):
    client = client_for(viewer)
    machine = FactoryMachine.objects.get(slug="demo-image")
    for query in ({"machine__id__exact": machine.pk},
                  {"provider__id__exact": machine.provider_id}):
        assert _totals(client.get(LEDGER, query).content.decode())["actual"] == "0.22 USD"
    mine = client.get(LEDGER, {"user__id__exact": operator.pk}).content.decode()
    assert _totals(mine)["actual"] == "0.10 USD"
    later = client.get(LEDGER, {"created_at_from": "2999-01-01"}).content.decode()
    assert "No entries match these filters." in later


@pytest.mark.django_db
def test_nobody_adds_changes_or_deletes_a_ledger_entry(ledger, superuser):
    client = client_for(superuser)
    entry = SpendEntry.objects.first()
    page = client.get(reverse("admin:factory_spendentry_change", args=[entry.pk]))
    assert page.status_code == 200 and b'name="amount"' not in page.content
    assert client.post(reverse("admin:factory_spendentry_change", args=[entry.pk]),
                       {"amount": "9"}).status_code == 403
    assert client.get(reverse("admin:factory_spendentry_add")).status_code == 403
    assert client.post(reverse("admin:factory_spendentry_delete", args=[entry.pk]),
                       {"post": "yes"}).status_code == 403
    assert SpendEntry.objects.get(pk=entry.pk).amount == entry.amount
    assert b"Import" not in client.get(LEDGER).content.split(b'id="spend-totals"')[0]


def export(client: Client, fmt: int, query: str = "") -> bytes:
    chosen = {f"spendentryresource_{name}": "on"
              for name in SpendEntryResource().column_names()}
    response = client.post(reverse("admin:factory_spendentry_export") + query,
                           {"format": str(fmt), "resource": "0", **chosen})
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Disposition"].startswith("attachment")
    return response.content


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", [CSV, XLSX])
def test_ledger_exports_the_filtered_entries(ledger, viewer, fmt):
    client = client_for(viewer)
    rows = FORMATS[fmt]().create_dataset(
        export(client, fmt, f"?project__id__exact={ledger['inland'].pk}")).dict
    assert sorted(str(row["source"]) for row in rows) == ["provider", "release",
                                                         "reservation"]
    assert {row["project"] for row in rows} == {"Inland"}
    provider = next(row for row in rows if row["source"] == "provider")
    assert Decimal(str(provider["amount"])) == Decimal("0.10")
    assert provider["machine"] == "demo-image" and provider["user"] == "operator"


@pytest.mark.django_db
def test_ledger_csv_has_one_row_per_entry(ledger, viewer):
    text = export(client_for(viewer), CSV).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == SpendEntry.objects.count()
    assert list(rows[0])[:4] == ["id", "time", "source", "project"]


@pytest.mark.django_db
def test_ledger_has_no_import(ledger, superuser):
    with pytest.raises(Exception, match="Reverse"):
        reverse("admin:factory_spendentry_import")


@pytest.mark.django_db
def test_ledger_page_costs_the_same_queries_at_any_size(
    ledger, viewer, django_assert_num_queries
):
    client = client_for(viewer)
    client.get(LEDGER)
    with CaptureQueriesContext(connection) as small:
        client.get(LEDGER)
    machine = FactoryMachine.objects.get(slug="demo-image")
    SpendEntry.objects.bulk_create(
        SpendEntry(project=ledger["coast"], provider_id=machine.provider_id,
                   machine=machine, source=SpendSource.CORRECTION,
                   amount=Decimal("0.001"), request_id=f"bulk-{n}")
        for n in range(5000))
    with django_assert_num_queries(len(small)):
        response = client.get(LEDGER)
    assert _totals(response.content.decode())["actual"] == "5.22 USD"
    assert "1,000+" in response.content.decode() or "5,0" in response.content.decode()


# --------------------------------------------------------------------- cap
@pytest.mark.django_db
def test_only_a_lead_sets_the_monthly_cap(catalog, viewer, operator, lead):
    cap = MonthlyCap.objects.create(amount=None)
    url = reverse("admin:factory_monthlycap_change", args=[cap.pk])
    viewed = client_for(viewer).get(url)
    assert viewed.status_code == 200 and b'name="amount"' not in viewed.content
    assert client_for(operator).post(url, {"amount": "5"}).status_code == 403
    assert client_for(lead).post(url, {"amount": "250"}).status_code == 302
    cap.refresh_from_db()
    assert cap.amount == Decimal("250")
    again = client_for(lead).get(reverse("admin:factory_monthlycap_add"))
    assert again.status_code == 302 and again["Location"] == url
    assert MonthlyCap.objects.count() == 1


# ---------------------------------------------------------------- projects
@pytest.mark.django_db
def test_project_list_shows_budget_committed_actual_and_left(ledger, viewer):
    html = client_for(viewer).get(reverse("admin:factory_project_changelist")).content.decode()
    coast = re.search(r"Coastal.*?</tr>", html, re.S).group(0)
    assert "0.12" in coast and "-0.02 · reached" in coast
    inland = re.search(r"Inland.*?</tr>", html, re.S).group(0)
    assert "0.10" in inland and "49.90" in inland


@pytest.mark.django_db
def test_project_page_says_when_its_budget_is_reached(ledger, viewer):
    client = client_for(viewer)
    coast = client.get(reverse("admin:factory_project_change",
                               args=[ledger["coast"].pk])).content.decode()
    assert 'id="budget-reached"' in coast and "pending items were cancelled" in coast
    assert 'id="project-actual">0.12 USD' in coast and 'id="project-left">-0.02 USD' in coast
    inland = client.get(reverse("admin:factory_project_change",
                                args=[ledger["inland"].pk])).content.decode()
    assert 'id="budget-reached"' not in inland and 'id="project-left">49.90 USD' in inland


# -------------------------------------------------------------- dashboard
@pytest.mark.django_db
def test_dashboard_charts_spend_by_day_and_the_month_against_the_cap(ledger, viewer):
    MonthlyCap.objects.create(amount=Decimal("0.20"))
    html = client_for(viewer).get(reverse("admin:index")).content.decode()
    chart = json.loads(re.search(r'data-type="bar" data-value="([^"]+)"', html)
                       .group(1).replace("&quot;", '"'))
    assert len(chart["labels"]) == 30 and chart["datasets"][0]["data"][-1] == 0.22
    assert sum(chart["datasets"][0]["data"]) == 0.22
    assert 'id="cap-reached"' in html and "0.22 USD charged of 0.20 USD" in html
    assert f'data-budget-reached="{ledger["coast"].pk}"' in html
    assert f'data-budget-reached="{ledger["inland"].pk}"' not in html


@pytest.mark.django_db
def test_dashboard_without_a_cap_says_so(ledger, lead):
    html = client_for(lead).get(reverse("admin:index")).content.decode()
    assert "No monthly cap set" in html and 'id="cap-reached"' not in html
    assert reverse("admin:factory_monthlycap_changelist") in html


@pytest.mark.django_db
def test_dashboard_spend_costs_four_queries_at_any_size(ledger, django_assert_num_queries):
    with django_assert_num_queries(4):
        spend_context()
    for n in range(20):
        spent_order(ledger["inland"], None, title=f"More {n}")
    with django_assert_num_queries(4):
        figures = spend_context()
    assert figures["spend_30_days"] == Decimal("2.62")


# ----------------------------------------------------------------- report
@pytest.mark.django_db
def test_report_groups_spend_and_compares_estimates_per_machine(ledger, viewer):
    html = client_for(viewer).get(REPORT).content.decode()
    for dimension in ("project", "machine", "provider", "user"):
        assert f'id="spend-by-{dimension}"' in html
    users = re.search(r'id="spend-by-user".*?</section>', html, re.S).group(0)
    assert re.search(r"lead</td>\s*<td[^>]*>0.12<", users)
    assert re.search(r"operator</td>\s*<td[^>]*>0.10<", users)
    machines = re.search(r'id="estimate-vs-actual".*?</section>', html, re.S).group(0)
    # Three billed items: 2 × 0.05 + 0.20 estimated, 2 × 0.06 + 0.10 charged.
    assert re.search(r">3</td>\s*<td[^>]*>0.3000</td>\s*<td[^>]*>0.2200</td>", machines)
    assert "-0.0800" in machines and "0.73×" in machines


@pytest.mark.django_db
def test_report_refuses_an_unknown_period(ledger, viewer):
    response = client_for(viewer).get(REPORT, {"period": "fortnight"})
    assert response.status_code == 400 and b"the periods are month, 30d, all" in response.content
    assert client_for(viewer).get(REPORT, {"period": "all"}).status_code == 200


@pytest.mark.django_db
def test_report_costs_the_same_queries_at_any_size(ledger, viewer, django_assert_num_queries):
    client = client_for(viewer)
    client.get(REPORT)
    with CaptureQueriesContext(connection) as small:
        client.get(REPORT)
    for n in range(15):
        spent_order(ledger["coast"], viewer, title=f"More {n}")
    with django_assert_num_queries(len(small)):
        assert client.get(REPORT).status_code == 200


# ------------------------------------------------------------- order page
@pytest.mark.django_db
def test_order_page_shows_estimate_versus_actual(ledger, viewer):
    html = client_for(viewer).get(reverse(
        "admin:factory_order_change", args=[ledger["first"].pk])).content.decode()
    assert 'id="order-estimated">0.1500 USD' in html
    assert 'id="order-billed-estimate">0.1000 USD' in html
    assert 'id="order-actual">0.1200 USD' in html
    assert 'id="order-held">0.0000 USD' in html
    assert "2 billed items: actual +0.0200 USD against their estimate (1.20×)" in html


# ---------------------------------------------------------------- preview
@pytest.mark.django_db
def test_preview_of_a_compute_second_machine_says_where_its_run_time_comes_from(
    catalog, lead
):
    from tests.admin_ext.test_order_form import PREVIEW, _data

    client = client_for(lead)
    machine = FactoryMachine.objects.get(slug="replicate-sdxl")
    page = client.post(PREVIEW, _data(machine)).content.decode()
    assert "6 compute seconds (typical run) × 0.000975 USD = 0.0059 USD" in page
    assert "Run time: the catalog&#x27;s typical run time for this machine." in page
    assert "from <a" in page and "replicate.com/stability-ai/sdxl" in page
    for n in range(3):
        SpendEntry.objects.create(provider_id=machine.provider_id, machine=machine,
                                  source=SpendSource.PROVIDER, units=10 + n,
                                  unit="compute_second", amount=Decimal("0.01"))
    page = client.post(PREVIEW, _data(machine)).content.decode()
    assert "11 compute seconds (typical run)" in page
    assert "the median of this machine&#x27;s last measured runs" in page
    FactoryMachine.objects.filter(pk=machine.pk).update(typical_run_seconds=None)
    SpendEntry._base_manager.filter(machine=machine).delete()
    page = client.post(PREVIEW, _data(machine)).content.decode()
    assert "30 compute seconds (no run time known yet, assumed)" in page
    assert "assumed: no run time is known for this machine yet" in page


@pytest.mark.django_db
def test_place_page_shows_one_items_formula_and_the_prices_source(catalog, lead):
    machine = FactoryMachine.objects.get(slug="fal-flux-dev")
    order = Order.objects.create(title="Foxes", machine=machine, prompt="a fox",
                                 runs=2, created_by=lead)
    html = client_for(lead).get(reverse("admin:factory_order_place",
                                        args=[order.pk])).content.decode()
    formula = re.search(r'id="plan-formula">(.*?)</div>', html, re.S).group(1)
    assert "One item: 1 output × " in formula and "megapixels × 0.025 USD = " in formula
    assert 'href="https://fal.ai/models/fal-ai/flux/dev"' in formula

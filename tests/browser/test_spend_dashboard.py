"""Spend on the dashboard and in the ledger, in a real browser."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from factory.models import MonthlyCap, Project, SpendEntry
from tests.admin_ext.test_spend_admin import spent_order
from tests.browser.test_demo_order_flow import SCREENSHOTS
from tests.browser.test_product_grid import _log_in

CHART_DRAWN = """() => {
    const canvas = document.querySelector('#dashboard-spend canvas.chart');
    return canvas && canvas.width > 0 && Chart.getChart(canvas) !== undefined;
}"""


def _spread_over_days(order, days_ago: int) -> None:
    """Date an order's entries ``days_ago`` back; only tests move entries, and
    through the plain base manager, as the ledger's own manager refuses."""
    moment = timezone.now() - timedelta(days=days_ago)
    SpendEntry._base_manager.filter(order=order).update(created_at=moment)


@pytest.fixture
def spending(catalog, lead, operator):
    """A few weeks of orders on three projects; one project over its budget."""
    coast = Project.objects.create(name="Coastal studies", budget=Decimal("2.00"))
    inland = Project.objects.create(name="Inland", budget=Decimal("40.00"))
    posters = Project.objects.create(name="Posters")
    for n, (project, user, days_ago, completed, actual) in enumerate([
        (inland, operator, 20, 6, "0.40"), (posters, lead, 14, 4, "0.25"),
        (inland, operator, 9, 8, "0.30"), (posters, lead, 5, 3, "0.55"),
        (coast, operator, 2, 5, "0.45"), (inland, lead, 1, 4, "0.35"),
        (coast, lead, 0, 2, "0.20"),
    ]):
        order = spent_order(project, user, completed=completed, failed=1,
                            estimate="0.30", actual=actual, title=f"Batch {n + 1}")
        _spread_over_days(order, days_ago)
    MonthlyCap.objects.create(amount=Decimal("25.00"))
    return coast


@pytest.mark.django_db(transaction=True)
def test_dashboard_shows_spend_and_the_ledger_totals_it(page, live_server, spending):
    _log_in(page, live_server, "lead")
    page.wait_for_selector("#dashboard-spend")
    page.wait_for_function(CHART_DRAWN)
    assert page.locator(f'[data-budget-reached="{spending.pk}"]').is_visible()
    assert "monthly cap" in page.locator("#month-cap").inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # The whole page at once, the sidebar drawn as on screen.
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": 1440, "height": height})
    page.screenshot(path=str(SCREENSHOTS / "spend-dashboard.png"))
    page.set_viewport_size({"width": 1440, "height": 900})

    page.click("#dashboard-spend a:has-text('Ledger')")
    page.wait_for_selector("#spend-totals")
    actual = page.locator('[data-total="actual"]').inner_text()
    assert actual == f"{SpendEntry.objects.actual().total():.2f} USD"
    page.screenshot(path=str(SCREENSHOTS / "spend-ledger.png"))

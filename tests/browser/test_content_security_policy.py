"""The admin works under its Content-Security-Policy: no violation in a browser."""
import pytest
from django.urls import reverse

from factory.models import FactoryMachine, Order, Product, Provider

from tests.browser.test_demo_order_flow import SCREENSHOTS, _log_in, admin_login  # noqa: F401

# Collected before any page script runs, so nothing the page does is missed.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (event) => {
    window.__cspViolations.push(
        `${event.violatedDirective} blocked ${event.blockedURI || 'inline'}`
        + ` at ${event.sourceFile}:${event.lineNumber}`);
});
"""


def _violations(page, console: list[str]) -> list[str]:
    return page.evaluate("window.__cspViolations") + [
        text for text in console if "Content Security Policy" in text
    ]


def _visit(page, url: str, console: list[str]) -> list[str]:
    """Open ``url``, let Alpine, htmx and the widgets settle, list what was blocked."""
    console.clear()
    response = page.goto(url)
    assert response.status == 200, url
    assert "Content-Security-Policy" in {name.title() for name in response.headers}
    page.wait_for_load_state("networkidle")
    return _violations(page, console)


@pytest.mark.django_db(transaction=True)
def test_main_admin_pages_run_without_a_policy_violation(
    page, live_server, admin_login, demo_order
):
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.add_init_script(RECORD_VIOLATIONS)
    _log_in(page, live_server, *admin_login)
    base = f"{live_server.url}/admin"
    machine = FactoryMachine.objects.get(slug="demo-image")
    pages = {
        "dashboard": f"{base}/",
        "orders": f"{base}/factory/order/",
        "order": f"{base}/factory/order/{Order.objects.first().pk}/change/",
        "order items": f"{base}/factory/orderitem/",
        "machine picker": f"{base}/factory/order/add/",
        "machine's form": f"{base}/factory/order/add/?machine={machine.pk}",
        "products grid": f"{base}/factory/product/",
        "product": f"{base}/factory/product/{Product.objects.first().pk}/change/",
        "providers": f"{base}/factory/provider/",
        "provider": f"{base}/factory/provider/{Provider.objects.first().pk}/change/",
        "machine": f"{base}/factory/factorymachine/{machine.pk}/change/",
        "wildcard import": f"{base}/factory/wildcard/import/",
        "queues": f"{live_server.url}{reverse('django_rq:home')}",
        # django-rq's own inline scripts: allowed on its pages only.
        "finished jobs": f"{live_server.url}{reverse('django_rq:finished_jobs', args=[0])}",
        "workers": f"{live_server.url}{reverse('django_rq:workers', args=[0])}",
    }
    found = {name: _visit(page, url, console) for name, url in pages.items()}

    # What runs on input: the picker's search (Alpine) and the form's widgets.
    page.goto(pages["machine picker"])
    page.fill("#picker-search", "demo")
    page.get_by_role("link", name="Demo image", exact=True).click()
    page.wait_for_load_state("networkidle")
    page.locator(".order-parameters [name='rjf§width']").fill("320")
    page.wait_for_load_state("networkidle")
    found["picking and filling"] = _violations(page, console)
    page.screenshot(path=str(SCREENSHOTS / "csp-order-form.png"), full_page=True)

    assert {name: v for name, v in found.items() if v} == {}

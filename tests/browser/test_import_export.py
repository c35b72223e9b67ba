"""Import and export in a real browser: a dry run that refuses a bad row,
the fixed file imported, and the filtered products downloaded as XLSX."""
import csv
import io
import json
import re

import pytest

from factory.models import FactoryMachine, Product
from tests.browser.test_demo_order_flow import SCREENSHOTS
from tests.browser.test_product_grid import _log_in
from tests.gallery import produce

COLUMNS = ["slug", "provider", "name", "endpoint_id", "version", "modality",
           "input_schema", "defaults", "aliases", "safety", "output_key", "price",
           "description", "concurrency_limit", "is_active"]


def _catalog_csv(width: int) -> bytes:
    """Two new demo machines; the second one's default width is ``width``."""
    demo = FactoryMachine.objects.get(slug="demo-image")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for slug, name, defaults in (
        ("demo-small", "Demo small", {**demo.defaults, "width": 256}),
        ("demo-wide", "Demo wide", {**demo.defaults, "width": width}),
    ):
        writer.writerow([
            slug, "demo", name, demo.endpoint_id, "", "image",
            json.dumps(demo.input_schema), json.dumps(defaults), json.dumps(demo.aliases),
            "{}", demo.output_key, '{"amount": "0", "unit": "output", "currency": "USD"}',
            f"{name}: a copy of the demo image machine.", "", "true",
        ])
    return out.getvalue().encode()


def _upload(page, live_server, content: bytes) -> None:
    page.goto(f"{live_server.url}/admin/factory/factorymachine/import/")
    page.set_input_files("input[name=import_file]", files=[
        {"name": "catalog.csv", "mimeType": "text/csv", "buffer": content}])
    page.select_option("select[name=format]", label="csv")
    page.locator("#content").get_by_role("button", name="Submit").click()
    page.wait_for_load_state("networkidle")


@pytest.mark.django_db(transaction=True)
def test_a_catalog_csv_with_a_bad_row_is_refused_then_imported_fixed(page, live_server, catalog, lead):
    _log_in(page, live_server, "lead")
    before = FactoryMachine.objects.count()

    _upload(page, live_server, _catalog_csv(width=5))
    body = page.locator("#content").inner_text()
    assert "Some rows failed to validate" in body
    assert "defaults" in body and "5 is less than the minimum of 64" in body
    assert page.get_by_role("button", name="Confirm import").count() == 0
    assert FactoryMachine.objects.count() == before
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "import-dry-run-errors.png"), full_page=True)

    _upload(page, live_server, _catalog_csv(width=1024))
    assert page.locator("#content").get_by_text("New", exact=True).count() == 2
    assert FactoryMachine.objects.count() == before
    page.screenshot(path=str(SCREENSHOTS / "import-preview.png"), full_page=True)
    page.get_by_role("button", name="Confirm import").click()
    page.wait_for_url(re.compile(r".*/factorymachine/$"))
    assert "2 new" in page.locator("body").inner_text()
    assert FactoryMachine.objects.get(slug="demo-wide").defaults["width"] == 1024
    assert FactoryMachine.objects.count() == before + 2


@pytest.mark.django_db(transaction=True)
def test_an_operator_downloads_the_filtered_products_as_xlsx(
    page, live_server, catalog, operator, tmp_path
):
    import openpyxl

    products = produce("demo-image", 6, user=operator)
    for product in products[:2]:
        product.set_rating(5)
    products[0].notes = "=HYPERLINK(\"http://example.invalid\")"
    products[0].save(update_fields=["notes"])
    _log_in(page, live_server, "operator")
    page.goto(f"{live_server.url}/admin/factory/product/?min_rating=5")
    page.get_by_role("link", name="Export").click()
    page.wait_for_url(re.compile(r".*/product/export/\?min_rating=5"))
    page.select_option("select[name=format]", label="xlsx")
    page.screenshot(path=str(SCREENSHOTS / "export-products.png"), full_page=True)
    with page.expect_download() as download:
        page.get_by_role("button", name="Submit").click()
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    assert path.suffix == ".xlsx"

    sheet = openpyxl.load_workbook(path).worksheets[0]
    header = [cell.value for cell in sheet[1]]
    found = [dict(zip(header, [cell.value for cell in row])) for row in sheet.iter_rows(min_row=2)]
    assert sorted(row["id"] for row in found) == sorted(p.pk for p in products[:2])
    assert {row["rating"] for row in found} == {5}
    notes = {row["id"]: row["notes"] for row in found}
    assert notes[products[0].pk] == "'=HYPERLINK(\"http://example.invalid\")"
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)
    assert Product.objects.count() == 6

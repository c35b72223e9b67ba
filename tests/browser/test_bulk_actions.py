"""Bulk actions in a real browser: move a selection, zip all that match."""
import json
import zipfile

import pytest

from admin_ext.inventory import ProductAdmin
from factory.models import Product, Project
from tests.browser.test_demo_order_flow import SCREENSHOTS
from tests.browser.test_product_grid import IMAGES_LOADED, LOCAL_SHOTS, _card, _log_in
from tests.gallery import produce


@pytest.fixture
def gallery(catalog, operator):
    """Eight pictures and a project to move them to."""
    Project.objects.create(name="Harbour studies")
    return produce("demo-image", 8, user=operator)


def _open_grid(page, live_server) -> None:
    page.goto(f"{live_server.url}/admin/factory/product/")
    page.wait_for_selector("[data-card].is-focused")
    page.wait_for_function(IMAGES_LOADED)


def _run(page, action: str) -> None:
    page.select_option("#changelist-actions select[name=action]", action)
    page.click("#changelist-actions button[name=index]")
    page.wait_for_selector("#bulk-confirm")


@pytest.mark.django_db(transaction=True)
def test_move_five_to_a_project(page, live_server, gallery, operator):
    _log_in(page, live_server, "operator")
    _open_grid(page, live_server)
    chosen = list(Product.objects.all()[:5])
    for product in chosen:
        _card(page, product).locator("input.action-select").check(force=True)
    assert page.locator(".action-counter").inner_text() == "5 of 8 selected"
    LOCAL_SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(LOCAL_SHOTS / "products-bulk-selection.png"))

    _run(page, "move_selected")
    assert page.locator("h2").filter(has_text="Move 5 products").is_visible()
    page.select_option("select[name=project]", label="Harbour studies")
    page.screenshot(path=str(LOCAL_SHOTS / "products-bulk-move.png"))
    page.click("#bulk-submit")
    page.wait_for_selector("[data-card]")
    assert page.get_by_text("5 products moved to Harbour studies.").is_visible()
    project = Project.objects.get(name="Harbour studies")
    assert set(Product.objects.filter(project=project)) == set(chosen)


@pytest.mark.django_db(transaction=True)
def test_zip_of_all_matching_downloads_with_sidecars(
    page, live_server, gallery, operator, monkeypatch, tmp_path
):
    monkeypatch.setattr(ProductAdmin, "list_per_page", 5)
    _log_in(page, live_server, "operator")
    _open_grid(page, live_server)
    assert page.locator("[data-card]").count() == 5
    page.click("#af-select-page")
    page.wait_for_selector("#af-select-across", state="visible")
    assert page.locator("#af-select-across").inner_text().endswith("Select all 8 matching")
    LOCAL_SHOTS.mkdir(parents=True, exist_ok=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(LOCAL_SHOTS / "products-select-across-offer.png"))
    page.click("#af-select-across")
    page.wait_for_selector("#af-across-note", state="visible")
    assert page.locator(".action-counter").inner_text() == "All 8 matching selected"
    assert page.locator("input.select-across").input_value() == "1"
    page.screenshot(path=str(SCREENSHOTS / "products-select-across.png"))

    _run(page, "download_zip")
    total = sum(product.media.size for product in gallery)
    assert page.locator("#zip-count").inner_text() == "8 + 8 sidecars"
    shown = page.locator("#zip-size").inner_text()
    assert shown.replace("\xa0", " ") == f"{total / 1024:.1f} KB"
    page.screenshot(path=str(SCREENSHOTS / "products-zip.png"))
    with page.expect_download() as download:
        page.click("#bulk-submit")
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    assert path.name.startswith("products-") and path.suffix == ".zip"

    archive = zipfile.ZipFile(path)
    assert len(archive.namelist()) == 16
    for product in Product.objects.select_related("machine", "item__order"):
        stem = f"{product.pk}-{product.machine.slug}"
        meta = json.loads(archive.read(f"{stem}.json"))
        assert (meta["product_id"], meta["seed"], meta["prompt"]) == (
            product.pk, product.seed, product.prompt)
        assert meta["order"]["id"] == product.item.order_id
        with product.media.file.open("rb") as stored:
            assert archive.read(f"{stem}.png") == stored.read()


@pytest.mark.django_db(transaction=True)
def test_archive_then_restore_from_the_archived_filter(page, live_server, gallery):
    _log_in(page, live_server, "operator")
    _open_grid(page, live_server)
    chosen = list(Product.objects.all()[:2])
    for product in chosen:
        _card(page, product).locator("input.action-select").check(force=True)
    _run(page, "archive_selected")
    page.click("#bulk-submit")
    page.wait_for_selector("[data-card]")
    assert page.locator("[data-card]").count() == 6
    assert set(Product.objects.archived()) == set(chosen)

    page.locator("a", has_text="Filters").first.click()
    page.wait_for_selector("a[href*='archived=yes']", state="visible")
    page.wait_for_timeout(300)  # let the sheet finish sliding in
    LOCAL_SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(LOCAL_SHOTS / "products-filters-archived.png"))
    page.click("a[href*='archived=yes']")
    page.wait_for_url("**archived=yes**")
    assert page.locator("[data-card].is-archived").count() == 2
    page.screenshot(path=str(LOCAL_SHOTS / "products-archived.png"))
    page.click("#af-select-page")
    _run(page, "restore_selected")
    page.click("#bulk-submit")
    page.wait_for_selector("#changelist-form")
    assert not Product.objects.archived().exists()


@pytest.mark.django_db(transaction=True)
def test_tag_page_in_dark_mode_creates_typed_tags(page, live_server, gallery):
    from factory.models import Tag

    Tag.objects.create(name="sea")
    _log_in(page, live_server, "operator")
    page.emulate_media(color_scheme="dark")
    _open_grid(page, live_server)
    chosen = list(Product.objects.all()[:3])
    for product in chosen:
        _card(page, product).locator("input.action-select").check(force=True)
    _run(page, "tag_selected")
    page.get_by_label("sea").check()
    page.fill("input[name=new]", "dawn, mist")
    LOCAL_SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(LOCAL_SHOTS / "products-bulk-tag-dark.png"))
    page.click("#bulk-submit")
    page.wait_for_selector("[data-card]")
    for product in chosen:
        assert sorted(t.name for t in product.tags.all()) == ["dawn", "mist", "sea"]


@pytest.mark.django_db(transaction=True)
def test_table_view_selects_all_matching_too(page, live_server, gallery, monkeypatch):
    monkeypatch.setattr(ProductAdmin, "list_per_page", 5)
    _log_in(page, live_server, "operator")
    page.goto(f"{live_server.url}/admin/factory/product/?view=table")
    page.click("#action-toggle")
    page.click("#changelist-actions .question a")
    assert page.locator("input.select-across").input_value() == "1"
    _run(page, "archive_selected")
    assert page.locator("h2").filter(has_text="Archive 8 products").is_visible()
    page.click("#bulk-submit")
    page.get_by_text("8 products archived").wait_for()
    assert Product.objects.archived().count() == 8

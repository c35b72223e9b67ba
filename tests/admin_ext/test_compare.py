"""The sweep comparison page and its PNG export."""
import io
import re

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from PIL import Image

from admin_ext.orders import comparison
from factory.comparison import comparison_items, find_axes, pick_axis, pivot
from factory.media import contact_sheet
from factory.media.contact_sheet import plan_layout
from factory.models import ItemStatus, Order, Product
from tests.comparison_data import (
    HEIGHTS, WIDTHS, colour, give_products, swept_order, width_by_height,
)


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _url(order: Order, name: str = "compare_detail") -> str:
    return reverse(f"admin:factory_order_{name}", args=[order.pk])


def _cells(html: str) -> dict[str, str]:
    """Each cell's markup by its "row-column" position."""
    parts = re.split(r'<td class="af-xy__cell" data-cell="(\d+-\d+)">', html)
    return {parts[n]: parts[n + 1].split("</td>")[0] for n in range(1, len(parts), 2)}


@pytest.mark.django_db
def test_the_grid_puts_each_product_in_its_cell_with_headers(catalog, operator):
    order = width_by_height()
    products = give_products(order)
    response = _client(operator).get(_url(order) + "?x=width&y=height")
    assert response.status_code == 200
    html = response.content.decode()
    headers = re.findall(r'<th scope="col" class="af-xy__col"[^>]*>([^<]*)</th>', html)
    rows = re.findall(r'<th scope="row" class="af-xy__row"[^>]*>([^<]*)</th>', html)
    assert headers == ["256", "384"] and rows == ["64", "96", "128"]
    cells = _cells(html)
    assert len(cells) == 6
    for product in products:
        r = HEIGHTS.index(product.parameters["height"])
        c = WIDTHS.index(product.parameters["width"])
        assert f'id="product-card-{product.pk}"' in cells[f"{r}-{c}"]
    favorite = reverse("admin:factory_product_favorite", args=[products[0].pk])
    assert favorite in html and 'hx-headers=\'{"X-CSRFToken": "' in html
    assert _url(order, "compare_sheet") + "?x=width&amp;y=height" in html


@pytest.mark.django_db
def test_the_order_page_links_to_the_grid(catalog, operator):
    order = width_by_height()
    give_products(order)
    html = _client(operator).get(
        reverse("admin:factory_order_change", args=[order.pk])).content.decode()
    assert html.count(f'href="{_url(order)}"') == 2  # detail action and panel


@pytest.mark.django_db
@pytest.mark.parametrize("widths, heights", [(2, 3), (6, 10)])
def test_the_page_costs_the_same_queries_for_6_and_60_items(
    catalog, operator, django_assert_max_num_queries, widths, heights
):
    order = swept_order([
        [{"field": "width", "values": [256 + 64 * n for n in range(widths)]}],
        [{"field": "height", "values": [64 + 32 * n for n in range(heights)]}],
    ])
    give_products(order, outputs=2, with_files=False)
    client = _client(operator)
    client.get(_url(order))  # the session and permissions are warm
    with django_assert_max_num_queries(12):
        response = client.get(_url(order))
    assert len(_cells(response.content.decode())) == widths * heights


@pytest.mark.django_db
def test_failed_pending_and_missing_cells_say_so(catalog, operator):
    order = swept_order(
        [[{"field": "width", "values": WIDTHS}, {"field": "height", "values": [64, 96]}],
         [{"field": "output_format", "values": ["png", "jpeg"]}]],
    )
    give_products(order, leave={0: ItemStatus.FAILED, 3: ItemStatus.PENDING})
    html = _client(operator).get(_url(order) + "?x=width&y=output_format").content.decode()
    cells = _cells(html)
    assert "Failed" in cells["0-0"] and "the GPU caught fire" in cells["0-0"]
    assert "Pending" in cells["1-1"]
    assert "product-card" in cells["1-0"]
    # width and height are zipped, so they make one axis: no diagonal holes.
    assert "no item" not in html
    html = _client(operator).get(_url(order) + "?x=width&y=").content.decode()
    assert len(_cells(html)) == 2


@pytest.mark.django_db
def test_a_third_axis_gives_tabs(catalog, operator):
    order = swept_order([
        [{"field": "width", "values": WIDTHS}],
        [{"field": "height", "values": HEIGHTS}],
        [{"field": "output_format", "values": ["png", "jpeg"]}],
    ])
    products = give_products(order)
    client = _client(operator)
    html = client.get(_url(order) + "?x=width&y=height&z=output_format&page=2").content.decode()
    tabs = re.findall(r'<a href="([^"]*)" title="[^"]*"( aria-current="page")?>([^<]*)</a>',
                      html.split('id="compare-pages"')[1].split("</nav>")[0])
    assert [(label, bool(current)) for _, current, label in tabs] == [
        ("png", False), ("jpeg", True)]
    shown = [p for p in products if f'id="product-card-{p.pk}"' in html]
    assert len(shown) == 6 and {p.parameters["output_format"] for p in shown} == {"jpeg"}


@pytest.mark.django_db
def test_an_order_without_a_sweep_has_nothing_to_compare(catalog, operator):
    order = swept_order([])
    give_products(order)
    html = _client(operator).get(_url(order)).content.decode()
    assert "Nothing to compare" in html and "compare-grid" not in html
    client = _client(operator)
    response = client.get(_url(order, "compare_sheet"))
    assert response.status_code == 302
    assert "The sheet was not made. Nothing to compare" in (
        client.get(response.url).content.decode())


@pytest.mark.django_db
def test_unknown_or_repeated_axes_fall_back_with_a_note(catalog, operator):
    order = width_by_height()
    give_products(order)
    html = _client(operator).get(_url(order) + "?x=steps&y=height").content.decode()
    assert "no swept field &#x27;steps&#x27;" in html
    assert len(_cells(html)) == 6
    html = _client(operator).get(_url(order) + "?x=width&y=width").content.decode()
    assert "X and Y were the same field" in html and len(_cells(html)) == 2
    assert _client(operator).get(_url(order) + "?page=x&x=width").status_code == 200


@pytest.mark.django_db
def test_viewers_see_the_grid_without_curation(catalog, viewer):
    order = width_by_height()
    products = give_products(order)
    html = _client(viewer).get(_url(order)).content.decode()
    assert f'id="product-card-{products[0].pk}"' in html
    assert reverse("admin:factory_product_favorite", args=[products[0].pk]) not in html
    assert _client(viewer).get(_url(order, "compare_sheet")).status_code == 200


@pytest.mark.django_db
def test_the_grid_needs_the_view_permission_on_orders(catalog):
    order = width_by_height()
    staff = User.objects.create_user("curator", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(
        codename__in=["view_product", "change_product"]))
    client = _client(staff)
    assert client.get(_url(order)).status_code == 403
    assert client.get(_url(order, "compare_sheet")).status_code == 403
    anonymous = Client().get(_url(order))
    assert anonymous.status_code == 302 and "/login/" in anonymous.url


@pytest.mark.django_db
def test_a_draft_has_nothing_to_compare_yet(catalog, operator):
    from factory.models import FactoryMachine

    order = Order.objects.create(
        machine=FactoryMachine.objects.get(slug="demo-image"), prompt="a {fox|owl}")
    html = _client(operator).get(_url(order)).content.decode()
    assert "This order is a draft" in html
    assert _client(operator).get(
        reverse("admin:factory_order_compare_detail", args=["nope"])).status_code == 404


@pytest.mark.django_db
def test_the_png_has_a_labelled_cell_per_product(catalog, operator):
    order = width_by_height()
    give_products(order, leave={4: ItemStatus.FAILED})
    response = _client(operator).get(_url(order, "compare_sheet") + "?x=width&y=height")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert 'filename="order-%d-width-by-height.png"' % order.pk in (
        response["Content-Disposition"])
    sheet = Image.open(io.BytesIO(b"".join(response.streaming_content)))
    items = comparison_items(order)
    axes = find_axes(items)
    grid = pivot(items, axes, pick_axis(axes, "width"), pick_axis(axes, "height"))
    spec = comparison.sheet_spec(order, grid, grid.pages[0])
    layout = plan_layout(spec)
    assert sheet.size == (layout.width, layout.height)
    top = contact_sheet.MARGIN + layout.title_height + layout.column_header
    left = contact_sheet.MARGIN + layout.row_header
    for r, row in enumerate(grid.pages[0].rows):
        for c, cell in enumerate(row.cells):
            x = left + c * (layout.cell_width + contact_sheet.GAP) + layout.tile // 2
            y = top + r * (layout.tile + contact_sheet.GAP) + layout.tile // 2
            (item,) = cell.items
            pixel = sheet.getpixel((x, y))
            if item.index == 4:
                assert pixel == contact_sheet.EMPTY or pixel != colour(4)
                continue
            assert all(abs(a - b) <= 6 for a, b in zip(pixel, colour(item.index))), (
                r, c, pixel)
    # Header text is drawn: the header band is not blank paper.
    band = sheet.crop((left, contact_sheet.MARGIN + layout.title_height,
                       left + layout.cell_width, top))
    assert band.convert("L").getextrema()[0] < 128


@pytest.mark.django_db
def test_a_sheet_over_the_cap_is_refused_with_a_message(catalog, operator, monkeypatch):
    order = width_by_height()
    give_products(order)
    monkeypatch.setattr(contact_sheet, "MAX_CELLS", 4)
    client = _client(operator)
    html = client.get(_url(order) + "?x=width&y=height").content.decode()
    assert 'aria-disabled="true"' in html and "one PNG holds at most 4" in html
    response = client.get(_url(order, "compare_sheet") + "?x=width&y=height")
    assert response.status_code == 302
    page = client.get(response.url).content.decode()
    assert "The sheet was not made. This sheet would have 6 cells" in page
    assert Product.objects.count() == 6


@pytest.mark.django_db
def test_a_page_over_the_cell_cap_asks_for_a_third_axis(catalog, operator, monkeypatch):
    order = width_by_height()
    give_products(order)
    monkeypatch.setattr(comparison, "MAX_PAGE_CELLS", 4)
    client = _client(operator)
    html = client.get(_url(order) + "?x=width&y=height").content.decode()
    assert "makes 6 cells; the page shows at most 4" in html
    assert "compare-grid" not in html
    html = client.get(_url(order) + "?x=width&z=height").content.decode()
    assert len(_cells(html)) == 2

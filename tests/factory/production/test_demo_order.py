"""A demo order runs end to end through a real RQ worker process."""
import io

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from factory.models import (
    FactoryMachine,
    ItemStatus,
    MediaFile,
    Order,
    OrderItem,
    OrderStatus,
    Product,
    SeedStrategy,
)
from factory.ordering import place_order


def _open(name: str) -> Image.Image:
    with default_storage.open(name) as handle:
        image = Image.open(io.BytesIO(handle.read()))
        image.load()
    return image


@pytest.mark.django_db(transaction=True)
def test_demo_order_of_six_items_becomes_six_products(
    catalog, redis_db, run_worker, lead
):
    order = Order.objects.create(
        machine=FactoryMachine.objects.get(slug="demo-image"),
        prompt="a lighthouse at dusk, watercolour",
        sweeps=[[{"field": "width", "values": [256, 320]},
                 {"field": "height", "values": [256, 192]}]],
        runs=3, seed_strategy=SeedStrategy.INCREMENT, seed=7, created_by=lead,
    )
    place_order(order)
    assert OrderItem.objects.filter(order=order, status=ItemStatus.PENDING).count() == 6

    result = run_worker()

    assert result.returncode == 0, result.stderr[-3000:]
    order.refresh_from_db()
    assert order.status == OrderStatus.DONE, list(order.items.values("status", "last_error"))
    products = list(Product.objects.filter(item__order=order).select_related("media", "item"))
    assert len(products) == 6
    for product in products:
        image = _open(product.media.file.name)
        assert image.size == (product.item.parameters["width"],
                              product.item.parameters["height"])
        assert image.info["parameters"].startswith("a lighthouse at dusk")
        thumb = _open(product.media.thumbnail.name)
        assert thumb.format == "WEBP"
        assert max(thumb.size) <= 384
    hashes = [p.media.content_hash for p in products]
    assert len(set(hashes)) == 6
    assert MediaFile.objects.filter(content_hash__in=hashes).count() == 6
    assert sorted(p.item.seed for p in products) == [7, 8, 9, 10, 11, 12]

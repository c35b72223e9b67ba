"""Swept orders and their products, for the comparison grid's tests.

Orders are planned and placed by the real ordering code (nothing is
queued outside a committed transaction); products get small one-colour
thumbnails in storage, so a contact sheet can be checked pixel by pixel.
"""
import io

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from factory.models import (
    FactoryMachine, ItemStatus, MediaFile, Order, OrderItem, OrderStatus, Product,
    SeedStrategy,
)
from factory.ordering import place_order
from tests.states import put

WIDTHS = [256, 384]
HEIGHTS = [64, 96, 128]


def swept_order(
    sweeps: list, prompt: str = "a lighthouse on a cliff", runs: int = 1,
    machine: str = "demo-image", title: str = "Compared", **fields,
) -> Order:
    """A placed order with the given sweeps; its items are all pending."""
    order = Order.objects.create(
        title=title, machine=FactoryMachine.objects.get(slug=machine),
        prompt=prompt, sweeps=sweeps, runs=runs,
        seed_strategy=SeedStrategy.INCREMENT, seed=1, **fields,
    )
    return place_order(order)


def width_by_height(**kwargs) -> Order:
    """The 2 × 3 sweep: two widths multiplied by three heights."""
    return swept_order([
        [{"field": "width", "values": WIDTHS}],
        [{"field": "height", "values": HEIGHTS}],
    ], **kwargs)


def colour(index: int) -> tuple[int, int, int]:
    """A distinct, clearly non-white colour per item index."""
    return ((53 * index + 40) % 200, (97 * index + 80) % 200, (31 * index + 120) % 200)


def _thumbnail(name: str, rgb: tuple[int, int, int]) -> str:
    out = io.BytesIO()
    Image.new("RGB", (96, 96), rgb).save(out, "WEBP")
    return default_storage.save(name, ContentFile(out.getvalue()))


def give_products(
    order: Order, outputs: int = 1, leave: dict[int, str] | None = None,
    with_files: bool = True,
) -> list[Product]:
    """Complete every item but those in ``leave`` (index: status) with products.

    ``with_files=False`` writes rows only, for tests that count queries.
    """
    leave = leave or {}
    products = []
    for item in order.items.select_related("machine").order_by("index"):
        if item.index in leave:
            OrderItem.objects.filter(pk=item.pk).update(
                status=leave[item.index], last_error="demo: the GPU caught fire"
                if leave[item.index] == ItemStatus.FAILED else "")
            continue
        put(item, ItemStatus.COMPLETED)
        for n in range(outputs):
            name = f"thumbs/cmp-{item.pk}-{n}.webp"
            thumb = _thumbnail(name, colour(item.index)) if with_files else name
            media = MediaFile.objects.create(
                content_hash=f"{item.pk:032x}{n:032x}", file=f"files/cmp-{item.pk}-{n}.png",
                thumbnail=thumb, media_type="image", content_type="image/png",
                size=1, width=96, height=96,
            )
            products.append(Product.objects.create(
                item=item, output_index=n, media=media, machine=item.machine,
                media_type="image", prompt=item.parameters.get("prompt", ""),
                parameters=item.parameters, seed=item.seed,
            ))
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.DONE)
    return products

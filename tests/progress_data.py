"""Orders in given states, written with bulk_create, for the watching tests."""
from datetime import timedelta

from django.utils import timezone

from factory.models import (
    FactoryMachine, ItemStatus, MediaFile, Order, OrderItem, OrderStatus, Product,
)

FIRE = "demo: the GPU caught fire"
TIMEOUT = "demo: timed out after 300 s"


def _media() -> MediaFile:
    media, _ = MediaFile.objects.get_or_create(
        content_hash="f" * 64,
        defaults={"file": "products/ff/f.png", "thumbnail": "thumbs/ff/f.webp",
                  "media_type": "image", "content_type": "image/png", "size": 10,
                  "width": 8, "height": 8},
    )
    return media


def build_order(
    *, completed: int = 0, failed: int = 0, in_flight: int = 0, pending: int = 0,
    cancelled: int = 0, products: int = 0, status: str = OrderStatus.RUNNING,
    title: str = "Watched", placed_ago: timedelta = timedelta(minutes=2),
    errors: tuple[str, ...] = (FIRE,),
) -> Order:
    """An order whose items are in the given states, indexed in that order.

    Completed and failed items finish one second apart, the last one now;
    the first ``products`` completed items each get a product.
    """
    machine = FactoryMachine.objects.get(slug="demo-image")
    now = timezone.now()
    states = (
        [ItemStatus.COMPLETED] * completed + [ItemStatus.FAILED] * failed
        + [ItemStatus.CANCELLED] * cancelled + [ItemStatus.SUBMITTED] * in_flight
        + [ItemStatus.PENDING] * pending
    )
    order = Order.objects.create(
        title=title, machine=machine, prompt="a lighthouse", status=status,
        item_count=len(states), placed_at=now - placed_ago,
        finished_at=now if status in (OrderStatus.DONE, OrderStatus.DONE_WITH_FAILURES)
        else None,
    )
    finishing = completed + failed
    items = [
        OrderItem(
            order=order, machine=machine, index=index, status=state, seed=index,
            parameters={"prompt": f"a lighthouse, take {index}", "seed": index},
            field_values={"steps": 20 + index % 3},
            last_error=errors[index % len(errors)] if state == ItemStatus.FAILED else "",
            completed_at=now - timedelta(seconds=finishing - 1 - index)
            if index < finishing else None,
        )
        for index, state in enumerate(states)
    ]
    OrderItem.objects.bulk_create(items, batch_size=2000)
    if products:
        media = _media()
        done = order.items.filter(status=ItemStatus.COMPLETED).order_by("index")
        Product.objects.bulk_create(
            Product(item=item, media=media, machine=machine, media_type="image",
                    prompt=item.parameters["prompt"], parameters=item.parameters,
                    seed=item.seed)
            for item in done[:products]
        )
    return order

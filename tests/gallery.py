"""Products made quickly for inventory tests.

``produce`` renders the demo provider's pictures, clips and tunes and
records them through the real collect path (verify, thumbnail, storage),
without queues. ``bulk_products`` makes many rows sharing one media file,
for tests that count rows or queries rather than look at pictures.
"""
from django.contrib.auth.models import User

from factory.models import (
    FactoryMachine,
    ItemStatus,
    MediaFile,
    Order,
    OrderItem,
    OrderStatus,
    Product,
)
from factory.production.collect import record_output, verify_output
from factory.providers import demo_art

PROMPTS = [
    "a quiet harbour at dawn, fishing boats, mist",
    "neon city street in the rain, reflections, night",
    "a desert canyon at golden hour, long shadows",
    "portrait of an old lighthouse keeper, oil painting",
    "a forest of giant mushrooms, bioluminescent",
    "snowy mountain pass with a lone cabin",
]


def _order(machine: FactoryMachine, prompt: str, user: User | None) -> Order:
    return Order.objects.create(
        title=prompt[:40], machine=machine, prompt=prompt,
        status=OrderStatus.DONE, created_by=user,
    )


def _render(machine: FactoryMachine, prompt: str, seed: int) -> tuple[dict, bytes]:
    """Small parameters for the machine and the demo file they give."""
    kind = machine.modality
    if kind == "video":
        params = {"width": 192, "height": 192, "duration": 1, "fps": 8}
        data = demo_art.render_video(prompt, seed, 192, 192, 1.0, 8)
    elif kind == "audio":
        params = {"seconds_total": 2}
        data = demo_art.render_audio(prompt, seed, 2.0)
    else:
        params = {"width": 256, "height": 256, "output_format": "png"}
        data = demo_art.render_image(prompt, seed, 256, 256)
    return {**params, "prompt": prompt, "seed": seed}, data


def produce(
    slug: str, count: int, prompt: str | None = None, user: User | None = None,
    first_seed: int = 1,
) -> list[Product]:
    """``count`` products of the catalog machine ``slug``, one item each."""
    machine = FactoryMachine.objects.get(slug=slug)
    products = []
    for index in range(count):
        text = prompt or PROMPTS[index % len(PROMPTS)]
        order = _order(machine, text, user)
        seed = first_seed + index
        params, data = _render(machine, text, seed)
        item = OrderItem.objects.create(
            order=order, machine=machine, index=0, status=ItemStatus.COMPLETED,
            parameters=params, seed=seed,
        )
        products.append(record_output(item, 0, verify_output(item, data, seed)))
    return products


def bulk_products(count: int, slug: str = "demo-image") -> list[Product]:
    """``count`` products of one item, sharing one (unwritten) media file."""
    machine = FactoryMachine.objects.get(slug=slug)
    order = _order(machine, "a row of lanterns", None)
    item = OrderItem.objects.create(
        order=order, machine=machine, index=0, status=ItemStatus.COMPLETED,
        parameters={"prompt": "a row of lanterns"}, seed=7,
    )
    media = MediaFile.objects.create(
        content_hash=f"{count:064x}", file=f"files/lanterns-{count}.png",
        thumbnail=f"thumbs/lanterns-{count}.webp", media_type=machine.modality,
        content_type="image/png", size=1, width=8, height=8,
    )
    return Product.objects.bulk_create(
        Product(item=item, output_index=index, media=media, machine=machine,
                media_type=machine.modality, prompt=f"lantern {index}",
                parameters={"seed": index}, seed=index)
        for index in range(count)
    )

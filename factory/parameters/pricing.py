"""Cost estimates from a machine's price and one item's parameters."""
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Mapping

IMAGE_SIZES = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
COUNT_KEYS = ("num_images", "num_outputs", "quantity")
DURATION_KEYS = ("duration", "seconds_total", "seconds")


def output_count(params: Mapping[str, Any]) -> int:
    """How many files one call produces."""
    for key in COUNT_KEYS:
        if key in params:
            return int(params[key])
    return 1


def megapixels(params: Mapping[str, Any]) -> Decimal:
    """Megapixels of one output, from width/height or a named size."""
    size = params.get("image_size")
    if isinstance(size, dict):
        width, height = size.get("width", 1024), size.get("height", 1024)
    elif isinstance(size, str) and size in IMAGE_SIZES:
        width, height = IMAGE_SIZES[size]
    else:
        width, height = params.get("width", 1024), params.get("height", 1024)
    return Decimal(int(width) * int(height)) / Decimal(1_000_000)


def seconds(params: Mapping[str, Any]) -> Decimal:
    for key in DURATION_KEYS:
        if key in params:
            return Decimal(str(params[key]))
    return Decimal(1)


def estimate_cost(amount: Decimal, unit: str, params: Mapping[str, Any]) -> Decimal:
    """Estimated price of one item, rounded to 1/10,000 of the currency."""
    outputs = Decimal(output_count(params))
    factor = {
        "request": Decimal(1),
        "output": outputs,
        "megapixel": outputs * megapixels(params),
        "second": seconds(params),
        "compute_second": Decimal(1),
    }[unit]
    return (Decimal(amount) * factor).quantize(Decimal("0.0001"), ROUND_HALF_UP)

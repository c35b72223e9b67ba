"""Cost estimates from a machine's price and one item's parameters."""
from dataclasses import dataclass
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


# Assumed compute seconds of one call when the catalog gives no typical
# run time and the machine has no measured history yet.
FALLBACK_COMPUTE_SECONDS = Decimal(30)
CENT_FRACTION = Decimal("0.0001")
UNIT_WORDS = {
    "request": ("request", "requests"),
    "output": ("output", "outputs"),
    "megapixel": ("megapixel", "megapixels"),
    "second": ("second of output", "seconds of output"),
    "compute_second": ("compute second", "compute seconds"),
}


@dataclass(frozen=True)
class Estimate:
    """One item's price: how many billing units, at what price, and why."""

    units: Decimal
    unit: str
    unit_price: Decimal
    amount: Decimal
    basis: str  # how the units follow from the parameters, in words

    def formula(self, currency: str) -> str:
        """``2 outputs × 1.048576 MP = 2.097152 megapixels × 0.025 USD = 0.0524 USD``."""
        price = f"{Decimal(self.unit_price).normalize():f}"
        return (f"{self.basis} × {price} {currency} = "
                f"{self.amount} {currency}")


def _number(value: Decimal) -> str:
    return f"{value.normalize():f}"


def units_word(unit: str, units: Decimal) -> str:
    one, many = UNIT_WORDS.get(unit, (unit, unit))
    return f"{_number(units)} {one if units == 1 else many}"


def estimate(
    amount: Decimal, unit: str, params: Mapping[str, Any],
    typical_seconds: Decimal | None = None,
) -> Estimate:
    """One item's estimate in ``unit``, rounded to 1/10,000 of the currency.

    ``typical_seconds`` prices a compute second: the machine's measured or
    catalogued run time (``FALLBACK_COMPUTE_SECONDS`` when it has neither).
    """
    outputs = Decimal(output_count(params))
    if unit == "request":
        units, basis = Decimal(1), "1 request"
    elif unit == "output":
        units, basis = outputs, units_word(unit, outputs)
    elif unit == "megapixel":
        each = megapixels(params)
        units = outputs * each
        basis = (f"{units_word('output', outputs)} × {_number(each)} MP = "
                 f"{units_word(unit, units)}")
    elif unit == "second":
        units = seconds(params)
        basis = units_word(unit, units)
    elif unit == "compute_second":
        known = typical_seconds is not None
        units = Decimal(typical_seconds) if known else FALLBACK_COMPUTE_SECONDS
        basis = (f"{units_word(unit, units)} "
                 f"({'typical run' if known else 'no run time known yet, assumed'})")
    else:
        raise ValueError(f"unknown price unit {unit!r}")
    total = (Decimal(amount) * units).quantize(CENT_FRACTION, ROUND_HALF_UP)
    return Estimate(units, unit, Decimal(amount), total, basis)


def estimate_cost(
    amount: Decimal, unit: str, params: Mapping[str, Any],
    typical_seconds: Decimal | None = None,
) -> Decimal:
    """Estimated price of one item, rounded to 1/10,000 of the currency."""
    return estimate(amount, unit, params, typical_seconds).amount

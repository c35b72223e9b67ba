"""What the fake fal billed, and fal's two platform listings of it.

fal bills a request once it completed successfully, in its model's unit
(outputs, megapixels of the images served, seconds of media, the request,
or GPU seconds), never a failure, a server error or a cancellation
(https://fal.ai/docs/documentation/model-apis/pricing). The records are
served as ``GET /v1/models/usage`` (units and cost summed per endpoint in
time buckets: ``time_series[].results[]`` with ``endpoint_id``, ``unit``,
``quantity``, ``unit_price``, ``cost``, ``currency``, ``auth_method``) and
``GET /v1/models/billing-events`` (one record per request:
``request_id``, ``endpoint_id``, ``timestamp``, ``output_units``,
``unit_price``, ``percent_discount``, ``cost_estimate_nano_usd``), both
paginated by ``limit``/``cursor`` with ``next_cursor``/``has_more`` and
filtered by ``endpoint_id``, ``start`` and ``end``; a key without billing
scope is refused with 403 (https://fal.ai/docs/platform-apis/v1/models/usage,
https://fal.ai/docs/platform-apis/v1/models/billing-events).
"""
import base64
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from tests.fakes.base import Request, Response

UNITS = {"output": "image", "megapixel": "megapixels", "second": "seconds",
         "request": "requests", "compute_second": "gpu_seconds"}
NANO = Decimal("1e9")
DAY = 86400


@dataclass(frozen=True)
class Billed:
    request_id: str
    endpoint_id: str
    at: float
    unit: str
    quantity: Decimal
    unit_price: Decimal

    @property
    def nano_usd(self) -> int:
        return int((self.quantity * self.unit_price * NANO).quantize(
            Decimal(1), ROUND_HALF_UP))


def quantity(price_unit: str, output: dict[str, Any], key: str,
             inference_seconds: float) -> Decimal:
    """The billed units of one successful answer, from what it served."""
    if price_unit == "request":
        return Decimal(1)
    if price_unit == "compute_second":
        return Decimal(str(inference_seconds))
    served = output.get(key)
    files = served if isinstance(served, list) else [served]
    if price_unit == "output":
        return Decimal(len(files))
    if price_unit == "megapixel":
        return sum((Decimal(f["width"] * f["height"]) for f in files),
                   Decimal(0)) / Decimal(1_000_000)
    return Decimal(len(files))  # seconds: every clip served is one second


class FalBilling:
    """The fake's billing records and the routes that list them."""

    def __init__(self, key: str, inference_key: str) -> None:
        self.key, self.inference_key = key, inference_key
        self.records: dict[str, Billed] = {}
        self.lock = threading.Lock()

    def bill(self, request_id: str, endpoint_id: str, machine: dict[str, Any],
             output: dict[str, Any], inference_seconds: float, at: float) -> None:
        """Record one successful request's charge (once)."""
        price = machine["price"]
        units = quantity(price["unit"], output, machine["output_key"], inference_seconds)
        with self.lock:
            self.records.setdefault(request_id, Billed(
                request_id, endpoint_id, at, UNITS[price["unit"]], units,
                Decimal(price["amount"])))

    def charged(self) -> dict[str, Decimal]:
        """{request_id: amount in USD}, as fal's billing events state it."""
        with self.lock:
            return {rid: Decimal(r.nano_usd) / NANO for rid, r in self.records.items()}

    def clear(self) -> None:
        with self.lock:
            self.records.clear()

    # ------------------------------------------------------------ routes
    def _refused(self, request: Request) -> Response | None:
        auth = request.headers.get("authorization")
        if auth == f"Key {self.key}":
            return None
        if auth == f"Key {self.inference_key}":
            return Response(403, {"detail": "This API key lacks the billing:usage:read "
                                            "permission"})
        return Response(401, {"detail": "Invalid or missing API key"})

    def _selected(self, request: Request, now: float) -> list[Billed]:
        query = request.query
        endpoints = {e for v in query.get("endpoint_id", []) for e in v.split(",") if e}
        start = _time(query.get("start", [""])[0], now - DAY)
        end = _time(query.get("end", [""])[0], now + 1)
        with self.lock:
            rows = [r for r in self.records.values()
                    if start <= r.at < end and (not endpoints or r.endpoint_id in endpoints)]
        return sorted(rows, key=lambda r: (r.at, r.request_id), reverse=True)

    def billing_events(self, request: Request, now: float) -> Response:
        if refused := self._refused(request):
            return refused
        page = _page(request, self._selected(request, now), 10000)
        if isinstance(page, Response):
            return page
        rows, more, cursor = page
        return Response(200, {"billing_events": [{
            "request_id": r.request_id, "endpoint_id": r.endpoint_id,
            "timestamp": _iso(r.at), "output_units": float(r.quantity),
            "unit_price": float(r.unit_price), "percent_discount": None,
            "cost_estimate_nano_usd": r.nano_usd,
        } for r in rows], "next_cursor": cursor, "has_more": more})

    def usage(self, request: Request, now: float) -> Response:
        if refused := self._refused(request):
            return refused
        sums: dict[tuple[str, str, str, Decimal], Decimal] = {}
        for r in self._selected(request, now):
            day = _iso(r.at - r.at % DAY)
            key = (day, r.endpoint_id, r.unit, r.unit_price)
            sums[key] = sums.get(key, Decimal(0)) + r.quantity
        page = _page(request, sorted(sums.items(), reverse=True), 1000)
        if isinstance(page, Response):
            return page
        rows, more, cursor = page
        buckets: dict[str, list[dict[str, Any]]] = {}
        for (day, endpoint, unit, price), units in rows:
            buckets.setdefault(day, []).append({
                "endpoint_id": endpoint, "unit": unit, "quantity": float(units),
                "unit_price": float(price), "cost": float(units * price),
                "currency": "USD", "auth_method": "Production Key"})
        return Response(200, {
            "time_series": [{"bucket": day, "results": results}
                            for day, results in buckets.items()],
            "next_cursor": cursor, "has_more": more})


def _page(request: Request, rows: list, most: int) -> tuple[list, bool, str | None] | Response:
    """One page of ``rows``; the cursor encodes the page number, as fal's."""
    try:
        limit = int(request.query.get("limit", ["50"])[0])
        cursor = request.query.get("cursor", [""])[0]
        number = int(base64.b64decode(cursor).decode()) if cursor else 0
    except ValueError:
        return Response(422, {"detail": [{"loc": ["query"], "msg": "Invalid limit or cursor",
                                          "type": "value_error"}]})
    if limit < 1:
        return Response(422, {"detail": [{"loc": ["query", "limit"], "type": "greater_than_equal",
                                          "msg": "Input should be greater than or equal to 1"}]})
    limit = min(limit, most)
    chunk = rows[number * limit:(number + 1) * limit]
    more = len(rows) > (number + 1) * limit
    return chunk, more, base64.b64encode(str(number + 1).encode()).decode() if more else None


def _iso(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, timezone.utc).isoformat().replace("+00:00", "Z")


def _time(text: str, default: float) -> float:
    if not text:
        return default
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()

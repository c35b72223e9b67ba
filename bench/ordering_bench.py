"""Ordering benchmarks: the parameter engine's cost over a plain insert."""
import statistics
import time
from typing import Any, Callable
from unittest import mock

from django.db import connection, transaction

from factory.models import FactoryMachine, Order, OrderItem
from factory.ordering import plan_order, place_order
from factory.parameters.schema import ParameterError

ITEMS = 10_000
REPEATS = 3


def _flux_order(**fields: Any) -> Order:
    machine = FactoryMachine.objects.get(slug="fal-flux-dev")
    fields.setdefault("item_ceiling", ITEMS)
    return Order.objects.create(
        machine=machine, prompt="a {red|blue} kite over dunes at ${time}",
        tokens={"time": "dusk"},
        base_parameters={"num_inference_steps": 28, "guidance_scale": 3.5},
        sweeps=[[{"field": "image_size", "values": ["square_hd", "landscape_4_3"]}],
                [{"field": "guidance_scale", "values": [2.5, 3.0, 3.5, 4.0, 4.5]}]],
        runs=ITEMS // 20, seed_strategy="increment", seed=1, **fields,
    )


def _timed(func: Callable[[], Any]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def _place() -> float:
    order = _flux_order()
    with mock.patch("factory.production.queues.enqueue_items"):
        seconds = _timed(lambda: place_order(order))
    assert order.items.count() == ITEMS
    return seconds


def _plain_insert() -> float:
    source = _flux_order()
    plan = plan_order(source)
    rows = [(i.machine, i.index, i.field_values, i.parameters, i.seed, i.cost)
            for i in plan.items]
    target = _flux_order()

    def insert() -> None:
        with transaction.atomic():
            OrderItem.objects.bulk_create(
                (OrderItem(order=target, machine=m, index=x, field_values=f,
                           parameters=p, seed=s, cost=c) for m, x, f, p, s, c in rows),
                batch_size=1000,
            )

    return _timed(insert)


def bench_place_versus_bulk_create() -> list[dict[str, Any]]:
    placed = statistics.median(_place() for _ in range(REPEATS))
    plain = statistics.median(_plain_insert() for _ in range(REPEATS))
    vendor = connection.vendor
    return [
        {"name": f"place 10,000 FLUX items ({vendor})", "value": placed, "unit": "s"},
        {"name": f"plain bulk_create of the same rows ({vendor})", "value": plain, "unit": "s"},
        {"name": f"ratio place ÷ bulk_create ({vendor})", "value": placed / plain,
         "unit": "×", "target": "≤ 1.5"},
    ]


def bench_refuse_huge_sweep() -> list[dict[str, Any]]:
    values = list(range(1000))
    order = Order.objects.create(
        machine=FactoryMachine.objects.get(slug="fal-flux-dev"), prompt="a kite",
        sweeps=[[{"field": "seed", "values": values}],
                [{"field": "num_inference_steps", "values": values}]],
    )

    def refuse() -> None:
        try:
            plan_order(order)
        except ParameterError:
            return
        raise AssertionError("a 10^6-item sweep was not refused")

    seconds = statistics.median(_timed(refuse) for _ in range(5))
    return [{"name": f"refuse a 10^6-item sweep ({connection.vendor})",
             "value": seconds * 1000, "unit": "ms", "target": "< 50"}]


BENCHMARKS = [bench_place_versus_bulk_create, bench_refuse_huge_sweep]

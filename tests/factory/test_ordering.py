"""Placing orders: exact items, or a located error and nothing written."""
from decimal import Decimal

import pytest

from factory.models import (
    FactoryMachine, Order, OrderItem, OrderStatus, Project, SeedStrategy, SpendEntry,
)
from factory.ordering import place_order, plan_order
from factory.parameters.schema import ParameterError
from factory.spending import BudgetError


def _order(slug: str = "demo-image", **fields) -> Order:
    fields.setdefault("prompt", "a red kite over dunes")
    return Order.objects.create(machine=FactoryMachine.objects.get(slug=slug), **fields)


@pytest.mark.django_db
def test_plan_multiplies_groups_and_zips_inside_a_group(catalog):
    order = _order(
        sweeps=[[{"field": "width", "values": [256, 512]},
                 {"field": "height", "values": [128, 256]}],
                [{"field": "output_format", "values": ["png", "jpeg", "webp"]}]],
        runs=2, seed_strategy=SeedStrategy.FIXED, seed=42,
    )
    plan = plan_order(order)
    assert plan.count == 12
    assert len(plan.items) == 12
    assert {(i.parameters["width"], i.parameters["height"]) for i in plan.items} == {
        (256, 128), (512, 256)}
    assert {i.seed for i in plan.items} == {42}
    assert plan.items[0].field_values == {"width": 256, "height": 128, "output_format": "png"}


@pytest.mark.django_db
def test_unknown_key_is_refused_with_a_suggestion_and_nothing_is_written(catalog):
    order = _order(base_parameters={"widht": 512})
    with pytest.raises(ParameterError, match=r"does not accept 'widht'. Did you mean 'width'\?"):
        place_order(order)
    assert OrderItem.objects.count() == 0
    order.refresh_from_db()
    assert order.status == OrderStatus.DRAFT


@pytest.mark.django_db
def test_schema_violation_names_item_and_pointer(catalog):
    order = _order(sweeps=[[{"field": "width", "values": [512, 99999]}]])
    with pytest.raises(ParameterError, match=r"item 1 on demo-image: /width: 99999 is greater than the maximum of 2048"):
        place_order(order)
    assert OrderItem.objects.count() == 0


@pytest.mark.django_db
def test_unequal_zip_group_is_refused(catalog):
    order = _order(sweeps=[[{"field": "width", "values": [256, 512]},
                            {"field": "height", "values": [256]}]])
    with pytest.raises(ParameterError, match=r"equal lengths, got width=2, height=1"):
        plan_order(order)


@pytest.mark.django_db
def test_huge_sweep_is_refused_by_the_ceiling_before_building(catalog, settings):
    settings.ORDER_ITEM_CEILING = 1000
    values = list(range(64, 1064))
    order = _order(sweeps=[[{"field": "width", "values": values}],
                           [{"field": "height", "values": values}]])
    with pytest.raises(ParameterError, match=r"1,000,000 items, over the ceiling of 1,000"):
        plan_order(order)


@pytest.mark.django_db
def test_order_over_budget_is_not_placed(catalog):
    project = Project.objects.create(name="Tight", budget=Decimal("0.05"))
    order = _order(slug="fal-flux-dev", project=project, runs=3)
    with pytest.raises(BudgetError) as refused:
        place_order(order)
    assert str(refused.value) == (
        "over the budget of project Tight: budget 0.05 USD, committed 0.00 USD, "
        "this order 0.0591 USD, which is 0.0091 USD too much; 0.05 USD is left")
    assert OrderItem.objects.count() == 0
    assert not SpendEntry.objects.exists()


@pytest.mark.django_db
def test_inactive_machine_takes_no_orders(catalog):
    order = _order()
    FactoryMachine.objects.filter(pk=order.machine_id).update(is_active=False)
    order.refresh_from_db()
    with pytest.raises(ParameterError, match="is inactive"):
        plan_order(order)


@pytest.mark.django_db
def test_placing_twice_spends_once(catalog, django_capture_on_commit_callbacks, redis_db):
    order = _order(runs=2)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        place_order(order)
    assert len(callbacks) == 1
    with pytest.raises(ParameterError, match="already placed"):
        place_order(Order.objects.get(pk=order.pk))
    assert OrderItem.objects.filter(order=order).count() == 2
    assert redis_db.llen("rq:queue:submit") == 2


@pytest.mark.django_db
def test_safety_checker_is_off_unless_the_order_turns_it_on(catalog):
    off = plan_order(_order(slug="fal-flux-dev")).items[0].parameters
    on = plan_order(_order(slug="fal-flux-dev", safety_checker=True)).items[0].parameters
    assert off["enable_safety_checker"] is False
    assert on["enable_safety_checker"] is True


@pytest.mark.django_db
def test_machine_whose_provider_lacks_its_key_is_refused_naming_the_setting(
    catalog, settings
):
    settings.FAL_KEY = ""
    order = _order(slug="fal-flux-dev")
    with pytest.raises(ParameterError, match="until FAL_KEY is set"):
        place_order(order)
    assert not OrderItem.objects.exists()
    order.refresh_from_db()
    assert order.status == OrderStatus.DRAFT


@pytest.mark.django_db
def test_preview_seeds_are_the_placed_seeds(catalog):
    order = _order(slug="demo-image", runs=4)
    order.seed_strategy = SeedStrategy.RANDOM
    order.save()
    previews = [[item.seed for item in plan_order(order).items] for _ in range(3)]
    assert previews[0] == previews[1] == previews[2]
    assert len(set(previews[0])) == 4
    place_order(order)
    placed = list(order.items.order_by("index").values_list("seed", flat=True))
    assert placed == previews[0]


@pytest.mark.django_db
@pytest.mark.parametrize("seed", ["abc", "2", 2.7, False, -1, 2**64])
def test_a_seed_that_is_not_a_whole_number_in_range_is_refused(catalog, seed):
    order = _order(sweeps=[[{"field": "seed", "values": [seed]}]])
    with pytest.raises(ParameterError, match="seed must be a whole number"):
        place_order(order)
    assert not OrderItem.objects.exists()


@pytest.mark.django_db
def test_every_unknown_key_is_named_and_hints_are_keys_the_machine_has(catalog):
    order = _order(slug="fal-flux-dev",
                   base_parameters={"negative_prompt": "blur", "stepz": 4, "colour": 1})
    with pytest.raises(ParameterError) as refused:
        place_order(order)
    message = str(refused.value)
    assert "does not accept 'negative_prompt'." in message
    assert "Did you mean 'negative_prompt'" not in message
    assert "does not accept 'stepz'. Did you mean 'steps'?" in message
    assert "'colour'" in message
    assert message.count("It accepts:") == 1

"""One order becomes exactly the items meant, each valid for its machine."""
import math

import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from factory.models import FactoryMachine, Order, SeedStrategy, Wildcard
from factory.ordering import count_order_items, plan_order
from factory.parameters.schema import ParameterError, schema_errors

SDXL_STYLE = {
    "negative_prompt": "blurry, lowres",
    "guidance_scale": 7.5,
    "num_inference_steps": 50,
    "width": 1024,
    "height": 768,
}


def _order(slug="demo-image", **fields) -> Order:
    fields.setdefault("prompt", "a lighthouse")
    return Order.objects.create(machine=FactoryMachine.objects.get(slug=slug), **fields)


def _payload_keys_are_schema_keys(plan) -> None:
    """Schema keys only, but a workflow switch that is sent beside the input."""
    for item in plan.items:
        safety = item.machine.safety
        switch = {safety["key"]} if safety.get("workflow") else set()
        inputs = {k: v for k, v in item.parameters.items() if k not in switch}
        assert set(inputs) <= set(item.machine.input_schema["properties"])
        assert schema_errors(item.machine.input_schema, inputs) == []


@pytest.mark.django_db
def test_every_seed_machine_default_order_validates_and_expands(catalog):
    for machine in FactoryMachine.objects.all():
        base = {"image_url": "https://example.com/a.png"} if "image_url" in machine.accepted_keys else {}
        plan = plan_order(_order(machine.slug, base_parameters=base, runs=2))
        assert plan.count == 2 and len(plan.items) == 2, machine.slug
        _payload_keys_are_schema_keys(plan)


@pytest.mark.django_db
def test_sdxl_style_parameters_on_each_flux_machine_are_translated_or_refused(catalog):
    flux = FactoryMachine.objects.filter(name__icontains="flux")
    assert flux.count() == 6
    for machine in flux:
        with pytest.raises(ParameterError, match=rf"{machine.slug} does not accept 'negative_prompt'"):
            plan_order(_order(machine.slug, base_parameters=SDXL_STYLE))
        without_negative = {k: v for k, v in SDXL_STYLE.items() if k != "negative_prompt"}
        try:
            plan = plan_order(_order(machine.slug, base_parameters=without_negative))
        except ParameterError as exc:
            # Refused with the reason: a value out of range or a key it lacks.
            assert machine.slug in str(exc) or "num_inference_steps" in str(exc), exc
            continue
        _payload_keys_are_schema_keys(plan)
        params = plan.items[0].parameters
        assert "width" not in params or "width" in machine.accepted_keys
        size = params.get("image_size") or params.get("aspect_ratio") or (params.get("width"), params.get("height"))
        assert size in ({"width": 1024, "height": 768}, "4:3", (1024, 768)), (machine.slug, size)


@pytest.mark.django_db
def test_flux_schnell_refuses_fifty_steps_naming_item_key_and_range(catalog):
    with pytest.raises(ParameterError, match=r"item 0 on fal-flux-schnell: /num_inference_steps: 50 is greater than the maximum of 12"):
        plan_order(_order("fal-flux-schnell", base_parameters={"num_inference_steps": 50}))


@pytest.mark.django_db
def test_guidance_scale_becomes_replicate_flux_dev_guidance(catalog):
    plan = plan_order(_order("replicate-flux-dev", base_parameters={"guidance_scale": 4.5, "width": 1600, "height": 900}))
    params = plan.items[0].parameters
    assert params["guidance"] == 4.5
    assert "guidance_scale" not in params
    assert params["aspect_ratio"] == "16:9"
    assert any("aspect_ratio 16:9" in w for w in plan.warnings)


@pytest.mark.django_db
def test_cross_machine_order_drops_what_a_machine_cannot_take_with_a_warning(catalog):
    order = _order(
        "fal-flux-dev",
        base_parameters={"negative_prompt": "blurry", "steps": 30, "guidance": 7.5},
        sweeps=[[{"field": "machine", "values": ["fal-flux-dev", "fal-fast-sdxl", "replicate-flux-dev"]}]],
    )
    plan = plan_order(order)
    by_machine = {item.machine.slug: item.parameters for item in plan.items}
    assert by_machine["fal-fast-sdxl"]["negative_prompt"] == "blurry"
    assert "negative_prompt" not in by_machine["fal-flux-dev"]
    assert by_machine["fal-flux-dev"]["num_inference_steps"] == 30
    assert by_machine["fal-flux-dev"]["guidance_scale"] == 7.5
    assert by_machine["replicate-flux-dev"]["guidance"] == 7.5
    _payload_keys_are_schema_keys(plan)
    assert any("fal-flux-dev does not accept 'negative_prompt'" in w for w in plan.warnings)


@pytest.mark.django_db
def test_required_parameter_a_machine_lacks_is_an_error_in_cross_machine_orders(catalog):
    order = _order(
        base_parameters={"negative_prompt": "blurry"}, required_parameters=["negative_prompt"],
        sweeps=[[{"field": "machine", "values": ["fal-fast-sdxl", "fal-flux-dev"]}]],
    )
    with pytest.raises(ParameterError, match="fal-flux-dev does not accept 'negative_prompt'"):
        plan_order(order)


@pytest.mark.django_db
def test_unknown_machine_in_a_sweep_is_named(catalog):
    order = _order(sweeps=[[{"field": "machine", "values": ["demo-image", "no-such-model"]}]])
    with pytest.raises(ParameterError, match="unknown machine.s. no-such-model"):
        plan_order(order)


@pytest.mark.django_db
def test_prompt_template_variants_and_wildcards_multiply_the_items(catalog):
    Wildcard.objects.create(name="colors/warm", values=["amber", "coral", "rust"])
    order = _order(prompt="a {fox|heron} in __colors/warm__ light", runs=2,
                   sweeps=[[{"field": "width", "values": [256, 512]}]])
    assert count_order_items(order) == 2 * 3 * 2 * 2
    plan = plan_order(order)
    assert plan.count == len(plan.items) == 24
    prompts = {item.parameters["prompt"] for item in plan.items}
    assert "a heron in rust light" in prompts and len(prompts) == 6
    assert plan.items[1].field_values["prompt"] != plan.items[0].field_values["prompt"]


@pytest.mark.django_db
def test_tokens_reach_every_string_parameter(catalog):
    order = _order(prompt="${subject} at ${width}px", tokens={"subject": "a red kite", "mood": "calm"},
                   base_parameters={"negative_prompt": "not ${mood}"},
                   sweeps=[[{"field": "width", "values": [256, 320]}]])
    plan = plan_order(order)
    assert [i.parameters["prompt"] for i in plan.items] == ["a red kite at 256px", "a red kite at 320px"]
    assert plan.items[0].parameters["negative_prompt"] == "not calm"


@pytest.mark.django_db
def test_undefined_token_is_named(catalog):
    with pytest.raises(ParameterError, match="subjekt"):
        plan_order(_order(prompt="${subjekt} at dusk", tokens={"subject": "a fox"}))


@pytest.mark.django_db
def test_random_prompt_mode_draws_the_same_prompts_for_preview_and_placing(catalog):
    order = _order(prompt="a {fox|heron|owl|lynx} at {dawn|dusk|noon}", prompt_mode="random", prompt_samples=4)
    first = [i.parameters["prompt"] for i in plan_order(order).items]
    again = [i.parameters["prompt"] for i in plan_order(order).items]
    assert len(first) == 4 and first == again


@pytest.mark.django_db
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_refused(catalog, bad):
    order = Order(machine=FactoryMachine.objects.get(slug="demo-image"), prompt="a fox",
                  base_parameters={"width": bad})
    with pytest.raises(ParameterError, match="base_parameters/width: .* is not a finite number"):
        plan_order(order)
    with pytest.raises(ValidationError, match="is not a finite number"):
        order.full_clean()


@pytest.mark.django_db
def test_deeply_nested_json_is_refused(catalog):
    deep: dict = {}
    node = deep
    for _ in range(30):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(ParameterError, match="nested deeper than 20 levels"):
        plan_order(_order(tokens=deep))


@pytest.mark.django_db
def test_prompt_over_the_length_cap_is_refused(catalog):
    with pytest.raises(ParameterError, match="over the limit of 4,000"):
        plan_order(_order(prompt="word " * 900))


@pytest.mark.django_db
def test_template_syntax_error_names_the_column(catalog):
    with pytest.raises(ParameterError, match="column"):
        plan_order(_order(prompt="a {fox|heron at dusk"))


@pytest.mark.django_db
def test_empty_sweep_list_is_refused(catalog):
    with pytest.raises(ParameterError, match=r"sweeps\[0\]\[0\] \(width\): values must be a non-empty list"):
        plan_order(_order(sweeps=[[{"field": "width", "values": []}]]))


@pytest.mark.django_db
def test_counting_up_seeds(catalog):
    plan = plan_order(_order(runs=3, seed_strategy=SeedStrategy.INCREMENT, seed=10))
    assert [i.seed for i in plan.items] == [10, 11, 12]
    assert [i.parameters["seed"] for i in plan.items] == [10, 11, 12]


sizes = st.lists(st.sampled_from([64, 128, 256, 512, 1024]), min_size=1, max_size=4)


@pytest.mark.django_db
@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    widths=sizes, formats=st.lists(st.sampled_from(["png", "jpeg", "webp"]), min_size=1, max_size=3),
    runs=st.integers(1, 3), variants=st.integers(1, 3), zip_height=st.booleans(),
)
def test_predicted_count_equals_items_and_every_item_validates(catalog, widths, formats, runs, variants, zip_height):
    group = [{"field": "width", "values": widths}]
    if zip_height:
        group.append({"field": "height", "values": list(reversed(widths))})
    prompt = "a {" + "|".join(f"v{i}" for i in range(variants)) + "}" if variants > 1 else "a v0"
    order = _order(prompt=prompt, runs=runs,
                   sweeps=[group, [{"field": "output_format", "values": formats}]])
    predicted = count_order_items(order)
    plan = plan_order(order)
    assert predicted == plan.count == len(plan.items) == len(widths) * len(formats) * runs * variants
    _payload_keys_are_schema_keys(plan)

"""Variations: new seeds on the same call, the same recipe on another machine."""
import pytest
from django.core.exceptions import ValidationError

from factory.models import (
    FactoryMachine, Order, OrderStatus, Product, Project, SeedStrategy,
)
from factory.ordering import place_order, plan_order
from factory.variations import (
    carry_parameters, order_on_machine, preview_switch, vary_seed,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def harbour(catalog, lead, work_queues, django_capture_on_commit_callbacks) -> Product:
    """A produced demo-image product with a size and a negative prompt."""
    order = Order.objects.create(
        title="Harbour", machine=FactoryMachine.objects.get(slug="demo-image"),
        project=Project.objects.create(name="Harbours"),
        prompt="a {quiet|busy} harbour at dawn",
        base_parameters={"width": 192, "height": 128, "negative_prompt": "fog"},
        seed_strategy=SeedStrategy.FIXED, seed=11, created_by=lead,
    )
    with django_capture_on_commit_callbacks(execute=True):
        place_order(order)
    work_queues()
    return Product.objects.select_related("item__order", "machine").get(
        item__index=1
    )


def machine(slug: str) -> FactoryMachine:
    return FactoryMachine.objects.select_related("provider").get(slug=slug)


def test_vary_seed_makes_one_draft_of_n_new_seeds_and_the_same_call(harbour, operator):
    draft = vary_seed(harbour, 5, operator)

    assert draft.status == OrderStatus.DRAFT
    assert (draft.machine, draft.project, draft.source_order) == (
        harbour.machine, harbour.project, harbour.item.order)
    assert (draft.runs, draft.seed_strategy, draft.created_by) == (
        5, SeedStrategy.RANDOM, operator)
    assert Order.objects.filter(status=OrderStatus.DRAFT).count() == 1
    plan = plan_order(draft)
    assert plan.count == 5
    seeds = [item.seed for item in plan.items]
    assert len(set(seeds)) == 5
    assert harbour.seed not in seeds
    sent = harbour.item.parameters
    assert sent["prompt"] == "a busy harbour at dawn"
    for item in plan.items:
        assert item.parameters == {**sent, "seed": item.seed}


def test_vary_seed_draws_new_seeds_each_time(harbour):
    first = {i.seed for i in plan_order(vary_seed(harbour, 4)).items}
    second = {i.seed for i in plan_order(vary_seed(harbour, 4)).items}
    assert first.isdisjoint(second)


def test_vary_seed_keeps_template_syntax_in_the_prompt_verbatim(harbour):
    Product.objects.filter(pk=harbour.pk).update(prompt="odd {a|b} $5 prompt")
    item = harbour.item
    item.parameters = {**item.parameters, "prompt": "odd {a|b} $5 prompt"}
    item.save(update_fields=["parameters"])

    plan = plan_order(vary_seed(harbour, 2))

    assert [i.parameters["prompt"] for i in plan.items] == ["odd {a|b} $5 prompt"] * 2


@pytest.mark.parametrize("count", [0, 101])
def test_vary_seed_refuses_a_count_outside_1_to_100(harbour, count):
    with pytest.raises(ValidationError, match=f"Ask for 1 to 100 variations, not {count}"):
        vary_seed(harbour, count)
    assert not Order.objects.filter(status=OrderStatus.DRAFT).exists()


def test_product_on_fal_flux_dev_sends_its_size_as_image_size(harbour, operator):
    draft, dropped, notes = order_on_machine(harbour, machine("fal-flux-dev"), operator)

    assert dropped == ["negative_prompt"]
    assert notes == []
    assert draft.base_parameters == {"image_size": {"width": 192, "height": 128}}
    assert (draft.machine.slug, draft.status, draft.source_order) == (
        "fal-flux-dev", OrderStatus.DRAFT, harbour.item.order)
    assert (draft.seed_strategy, draft.seed, draft.runs) == (
        SeedStrategy.FIXED, harbour.seed, 1)
    assert draft.project == harbour.project
    assert draft.title == f"Product #{harbour.pk} on {draft.machine.name}"
    [item] = plan_order(draft).items
    assert item.parameters["prompt"] == "a busy harbour at dawn"
    assert item.parameters["image_size"] == {"width": 192, "height": 128}
    assert item.parameters["seed"] == harbour.seed
    assert "negative_prompt" not in item.parameters


def test_a_size_becomes_the_nearest_ratio_on_a_ratio_machine(harbour):
    draft, dropped, notes = order_on_machine(harbour, machine("replicate-flux-dev"))

    assert dropped == ["negative_prompt"]
    assert draft.base_parameters == {"aspect_ratio": "3:2"}
    assert notes == ["192×128 sent as aspect_ratio 3:2 on replicate-flux-dev."]
    plan_order(draft)


def test_order_on_machine_translates_sweeps_and_removes_a_machine_sweep(catalog):
    order = Order.objects.create(
        machine=machine("demo-image"), prompt="a kite",
        base_parameters={"steps": 30, "negative_prompt": "fog"},
        sweeps=[
            [{"field": "machine", "values": ["demo-image", "fal-flux-dev"]}],
            [{"field": "width", "values": [256, 512]},
             {"field": "height", "values": [128, 256]}],
            [{"field": "guidance", "values": [2, 4]},
             {"field": "machine", "values": ["demo-image", "fal-flux-dev"]}],
        ],
        runs=2,
    )

    draft, dropped, _ = order_on_machine(order, machine("fal-flux-dev"))

    assert draft.base_parameters == {"num_inference_steps": 30}
    assert draft.sweeps == [
        [{"field": "image_size", "values": [
            {"width": 256, "height": 128}, {"width": 512, "height": 256}]}],
        [{"field": "guidance_scale", "values": [2, 4]}],
    ]
    assert dropped == ["negative_prompt", "machine (sweep)"]
    assert (draft.prompt, draft.runs, draft.source_order) == ("a kite", 2, order)
    assert plan_order(draft).count == 8


def test_a_required_parameter_the_machine_lacks_is_refused(catalog):
    order = Order.objects.create(
        machine=machine("demo-image"), prompt="a kite",
        base_parameters={"negative_prompt": "fog"},
        required_parameters=["negative_prompt"],
    )
    with pytest.raises(ValidationError, match="fal-flux-dev cannot take required "
                                              "parameter negative_prompt"):
        order_on_machine(order, machine("fal-flux-dev"))
    assert Order.objects.count() == 1


def test_keys_no_vocabulary_knows_are_dropped_not_fatal(catalog):
    carried = carry_parameters(
        machine("demo-image"),
        {"loras": [], "num_inference_steps": 9, "output_format": "png"},
    )
    assert carried.params == {"output_format": "png"}
    assert carried.dropped == ["loras", "num_inference_steps"]


def test_the_old_machines_safety_switch_is_not_carried(catalog):
    order = Order.objects.create(
        machine=machine("fal-flux-dev"), prompt="a kite", safety_checker=True,
        base_parameters={"enable_safety_checker": True, "num_images": 2},
    )
    draft, dropped, _ = order_on_machine(order, machine("replicate-flux-dev"))
    assert draft.base_parameters == {"num_outputs": 2}
    assert dropped == []
    assert draft.safety_checker is True
    assert plan_order(draft).items[0].parameters["disable_safety_checker"] is False


def test_preview_lists_the_drops_and_writes_nothing(harbour):
    assert preview_switch(harbour, machine("fal-flux-dev")) == ["negative_prompt"]
    assert preview_switch(harbour, machine("replicate-sdxl")) == []
    assert not Order.objects.filter(status=OrderStatus.DRAFT).exists()


def test_an_inactive_machine_is_refused(harbour):
    FactoryMachine.objects.filter(slug="fal-flux-dev").update(is_active=False)
    with pytest.raises(ValidationError, match="inactive"):
        order_on_machine(harbour, machine("fal-flux-dev"))

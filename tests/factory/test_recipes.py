"""Recipe workflows: templates, order again, diffs and wildcard imports."""
import json

import pytest
from django.core.exceptions import ValidationError

from factory.models import (
    FactoryMachine, Order, OrderStatus, Product, Project, PromptMode,
    SeedStrategy, Template, Wildcard,
)
from factory.recipes import (
    RECIPE_FIELDS, Change, diff_orders, import_wildcard_files,
    import_wildcards, order_again, order_again_from_product,
    order_from_template, save_as_template,
)


@pytest.fixture
def recipe(catalog, lead) -> Order:
    """A draft order with every recipe field set away from its default."""
    return Order.objects.create(
        title="Kites", machine=FactoryMachine.objects.get(slug="demo-image"),
        project=Project.objects.create(name="Dunes"),
        prompt="a {red|blue} kite, ${style}", prompt_mode=PromptMode.RANDOM,
        prompt_samples=3, tokens={"style": "ink"},
        base_parameters={"width": 256, "height": 192},
        required_parameters=["width"],
        sweeps=[[{"field": "output_format", "values": ["png", "webp"]}]],
        runs=2, seed_strategy=SeedStrategy.INCREMENT, seed=7,
        safety_checker=True, item_ceiling=5000, created_by=lead,
    )


def _recipe(source) -> dict:
    return {name: getattr(source, name) for name in RECIPE_FIELDS}


@pytest.mark.django_db
def test_save_as_template_copies_every_recipe_field(recipe, operator):
    template = save_as_template(recipe, "  Kite study  ", user=operator)
    template.refresh_from_db()
    assert template.name == "Kite study"
    assert template.created_by == operator
    assert _recipe(template) == _recipe(recipe)
    assert template.machine.slug == "demo-image"
    assert template.sweeps == [[{"field": "output_format", "values": ["png", "webp"]}]]


@pytest.mark.django_db
def test_template_name_clash_is_refused_and_writes_nothing(recipe):
    save_as_template(recipe, "Kite study")
    with pytest.raises(ValidationError, match=r"A template named 'Kite study' "
                                              r"already exists; choose another"):
        save_as_template(recipe, "Kite study")
    with pytest.raises(ValidationError, match=r"A template needs a name\."):
        save_as_template(recipe, "   ")
    assert Template.objects.count() == 1


@pytest.mark.django_db
def test_order_from_template_is_a_draft_with_the_recipe(recipe, operator):
    template = save_as_template(recipe, "Kite study")
    order = order_from_template(template, user=operator)
    assert order.status == OrderStatus.DRAFT
    assert order.template == template
    assert order.title == "Kite study"
    assert order.created_by == operator
    assert _recipe(order) == _recipe(recipe)
    assert order.source_order is None
    assert order.project is None
    assert order.item_ceiling is None
    assert order.items.count() == 0


@pytest.mark.django_db
def test_order_again_copies_a_placed_order_as_a_linked_draft(demo_order, operator):
    again = order_again(demo_order, user=operator)
    assert again.pk != demo_order.pk
    assert again.status == OrderStatus.DRAFT
    assert again.source_order == demo_order
    assert again.title == "Harbour studies (again)"
    assert again.created_by == operator
    assert _recipe(again) == _recipe(demo_order)
    assert again.items.count() == 0
    assert again.item_count == 0
    assert again.placed_at is None
    assert diff_orders(demo_order, again) == []


@pytest.mark.django_db
def test_order_again_keeps_project_but_not_a_raised_ceiling(recipe):
    again = order_again(recipe)
    assert again.project == recipe.project
    assert again.item_ceiling is None
    assert order_again(again).title == "Kites (again)"


@pytest.mark.django_db
def test_order_again_from_product_repeats_the_exact_call(demo_order, operator):
    product = Product.objects.select_related("item").get(item__index=1)
    project = Project.objects.create(name="Harbours")
    product.project = project
    product.save(update_fields=["project"])
    sent = product.item.parameters
    order = order_again_from_product(product, user=operator)
    assert order.status == OrderStatus.DRAFT
    assert order.machine == product.machine
    assert order.source_order == demo_order
    assert order.project == project
    assert order.prompt == "a quiet harbour at dawn"
    assert order.base_parameters == {
        k: v for k, v in sent.items() if k not in ("prompt", "seed")}
    assert "seed" not in order.base_parameters
    assert order.base_parameters["width"] == 192
    assert (order.seed_strategy, order.seed, order.runs) == (
        SeedStrategy.FIXED, product.seed, 1)
    assert order.seed == 2
    assert order.sweeps == []
    assert order.created_by == operator


@pytest.mark.django_db
def test_order_again_from_product_plans_the_same_parameters(demo_order):
    from factory.ordering import plan_order

    product = Product.objects.select_related("item").get(item__index=0)
    plan = plan_order(order_again_from_product(product))
    assert plan.count == 1
    assert plan.items[0].parameters == product.item.parameters
    assert plan.items[0].seed == product.seed


@pytest.mark.django_db
def test_order_again_from_product_keeps_template_characters_verbatim(demo_order):
    from factory.ordering import plan_order

    product = Product.objects.select_related("item").get(item__index=0)
    literal = r"a {curly} kite | $5, ${x}, $$ and \{"
    product.item.parameters = {**product.item.parameters, "prompt": literal}
    order = order_again_from_product(product)
    assert order.prompt == r"a \{curly\} kite \| $$5, $$\{x\}, $$$$ and \\{"
    assert plan_order(order).items[0].parameters["prompt"] == literal


@pytest.mark.django_db
def test_diff_lists_plain_fields_and_parameters_key_by_key(recipe):
    again = order_again(recipe)
    other = FactoryMachine.objects.exclude(pk=recipe.machine_id).first()
    again.machine = other
    again.prompt = "a green kite"
    again.runs = 4
    again.seed = None
    again.project = None
    again.tokens = {"style": "ink", "mood": "calm"}
    again.base_parameters = {"width": 512}
    again.sweeps = [[{"field": "output_format", "values": ["png"]}],
                    [{"field": "width", "values": [128, 256]}]]
    assert diff_orders(recipe, again) == [
        Change("machine", recipe.machine, other),
        Change("project", recipe.project, None),
        Change("prompt", "a {red|blue} kite, ${style}", "a green kite"),
        Change("runs", 2, 4),
        Change("seed", 7, None),
        Change("tokens.mood", None, "calm"),
        Change("base_parameters.height", 192, None),
        Change("base_parameters.width", 256, 512),
        Change("sweeps.output_format", ["png", "webp"], ["png"]),
        Change("sweeps.width", None, [128, 256]),
        Change("sweeps.groups", [["output_format"]],
               [["output_format"], ["width"]]),
    ]


@pytest.mark.django_db
def test_diff_tells_a_null_value_from_an_absent_key(recipe):
    again = order_again(recipe)
    again.base_parameters = {**recipe.base_parameters, "negative_prompt": None}
    assert diff_orders(recipe, again) == [
        Change("base_parameters.negative_prompt", None, None)]


@pytest.mark.django_db
def test_txt_wildcards_are_created_then_updated():
    report = import_wildcards("warm.txt", b"# warm\namber\ncoral\n")
    assert (report.created, report.updated, report.names) == (1, 0, ["warm"])
    assert Wildcard.objects.get(name="warm").values == ["amber", "coral"]
    report = import_wildcards("warm.txt", b"amber\nrust\n")
    assert (report.created, report.updated, report.unchanged) == (0, 1, 0)
    assert Wildcard.objects.get(name="warm").values == ["amber", "rust"]
    report = import_wildcards("warm.txt", b"amber\nrust\n")
    assert (report.created, report.updated, report.unchanged) == (0, 0, 1)


@pytest.mark.django_db
def test_json_wildcards_nest_names():
    Wildcard.objects.create(name="shapes", values=["old"])
    data = json.dumps({"colors": {"warm": ["amber"], "cool": ["teal", "navy"]},
                       "shapes": ["kite"]}).encode()
    report = import_wildcards("pantry.json", data)
    assert (report.created, report.updated) == (2, 1)
    assert sorted(report.names) == ["colors/cool", "colors/warm", "shapes"]
    assert dict(Wildcard.objects.values_list("name", "values")) == {
        "colors/cool": ["teal", "navy"], "colors/warm": ["amber"],
        "shapes": ["kite"]}


@pytest.mark.django_db
def test_yaml_wildcards_nest_names():
    pytest.importorskip("yaml")
    data = b"colors:\n  warm:\n    - amber\n    - coral\n  cool: [teal]\n"
    report = import_wildcards("palette.yaml", data)
    assert report.created == 2
    assert Wildcard.objects.get(name="colors/warm").values == ["amber", "coral"]
    assert Wildcard.objects.get(name="colors/cool").values == ["teal"]


@pytest.mark.django_db
def test_malformed_file_leaves_the_table_unchanged():
    Wildcard.objects.create(name="warm", values=["amber"])
    good = ("warm.txt", b"rust\n")
    bad = ("broken.json", b'{"cool":\n]')
    with pytest.raises(ValidationError, match=r"broken\.json: line 2, column 1"):
        import_wildcard_files([good, bad])
    assert list(Wildcard.objects.values_list("name", "values")) == [
        ("warm", ["amber"])]


@pytest.mark.django_db
def test_wildcard_name_the_model_refuses_is_named_with_its_file():
    with pytest.raises(ValidationError, match=r"my colors\.txt: wildcard name "
                                              r"'my colors': Use letters"):
        import_wildcards("my colors.txt", b"amber\n")
    with pytest.raises(ValidationError, match=r"w\.csv: wildcard files end in"):
        import_wildcards("w.csv", b"amber\n")
    assert Wildcard.objects.count() == 0

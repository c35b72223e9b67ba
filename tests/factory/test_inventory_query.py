"""Parameter expressions: parsing, labels, and matching on the database."""
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from factory.inventory_query import (
    parameter_keys, parse_condition, parse_conditions, split_expressions,
)
from factory.models import Product
from tests.gallery import bulk_products

PARAMETERS = [
    # seed column, parameters as sent
    (42, {"seed": 42, "guidance_scale": 3.5, "num_inference_steps": 28,
          "image_size": {"width": 1024, "height": 768}, "output_format": "png",
          "enable_safety_checker": True}),
    (7, {"seed": 7, "guidance_scale": 2, "num_inference_steps": 40,
         "image_size": {"width": 512, "height": 512}, "output_format": "jpeg",
         "enable_safety_checker": False}),
    (11, {"seed": 11, "guidance_scale": "5", "num_inference_steps": 20,
          "image_size": "square_hd", "output_format": "png"}),
    (None, {"num_inference_steps": 50, "guidance_scale": 10,
            "loras": [{"path": "a"}], "strength": 0.75, "contains": "x", "in": 2}),
]


@pytest.fixture
def products(catalog) -> list[Product]:
    """Four products whose parameters differ in type and presence."""
    made = bulk_products(len(PARAMETERS))
    for product, (seed, parameters) in zip(made, PARAMETERS):
        product.seed, product.parameters = seed, parameters
        product.save(update_fields=["seed", "parameters"])
    return made


def _matching(products: list[Product], text: str) -> list[int]:
    """Indexes into PARAMETERS of the products ``text`` matches."""
    queryset = Product.objects.all()
    conditions, errors = parse_conditions(text)
    assert not errors, errors
    for condition in conditions:
        queryset = condition.apply(queryset)
    ids = set(queryset.values_list("pk", flat=True))
    return [index for index, product in enumerate(products) if product.pk in ids]


@pytest.mark.django_db
@pytest.mark.parametrize("text, expected", [
    ("guidance_scale=3.5", [0]),
    ("guidance_scale = 2", [1]),
    ("guidance_scale=2.0", [1]),
    ("guidance_scale>=3", [0, 3]),  # the string "5" is no number
    ("guidance_scale>2", [0, 3]),
    ("guidance_scale<=3.5", [0, 1]),
    ("guidance_scale<3.5", [1]),
    ("guidance_scale ≥ 10", [3]),
    ("guidance_scale=5", [2]),  # equality also finds the number written as text
    ("num_inference_steps 20..40", [0, 1, 2]),
    ("num_inference_steps=25..45", [0, 1]),
    ("num_inference_steps 30..", [1, 3]),
    ("num_inference_steps ..28", [0, 2]),
    ("strength 0.5..1", [3]),
    ("image_size.width=1024", [0]),
    ("image_size.width>=512", [0, 1]),
    ("image_size.height<600", [1]),
    ("image_size=square_hd", [2]),
    ("output_format=png", [0, 2]),
    ('output_format="jpeg"', [1]),
    ("output_format=PNG", []),
    ("enable_safety_checker=true", [0]),
    ("enable_safety_checker=false", [1]),
    ("strength>0", [3]),  # a key only some products have
    ("no_such_key=1", []),
    ("no_such_key>=1", []),
    ("image_size.width.deeper=1", []),
    ("seed=42", [0]),
    ("seed>=11", [0, 2]),
    ("seed 5..11", [1, 2]),
    ("seed=4.5", []),
    ("seed=abc", []),
    ("guidance_scale>=3; num_inference_steps<=30", [0]),
    ("contains=x", [3]),  # keys named like lookups are still keys
    ("in=2", [3]),
    ("in 1..3", [3]),
])
def test_expressions_match_by_value_and_type(products, text, expected):
    assert _matching(products, text) == expected


@pytest.mark.django_db
def test_seed_compares_the_column_not_the_parameters(products):
    Product.objects.filter(pk=products[0].pk).update(parameters={"seed": 1})
    assert _matching(products, "seed=42") == [0]


@pytest.mark.parametrize("text, label", [
    ("guidance_scale>=3", "guidance_scale ≥ 3"),
    ("seed = 42", "seed = 42"),
    ("num_inference_steps 20..40", "num_inference_steps 20–40"),
    ("steps 20..", "steps ≥ 20"),
    ("steps ..40", "steps ≤ 40"),
    ("image_size.width=1024", "image_size.width = 1024"),
    ("safe=TRUE", "safe = true"),
    ("x<=0.5", "x ≤ 0.5"),
    ("format='png'", "format = png"),
])
def test_conditions_label_themselves_for_chips(text, label):
    assert parse_condition(text).label == label


def test_values_keep_their_types():
    assert parse_condition("a=3").value == Decimal(3)
    assert parse_condition("a=false").value is False
    assert parse_condition("a=null").value is None
    assert parse_condition('a="42"').value == "42"
    assert parse_condition("a=a fox").value == "a fox"


@pytest.mark.parametrize("text, fragment", [
    ("guidance_scale", "is not a parameter expression"),
    ("=3", "is not a parameter expression"),
    ("guidance_scale>=", "a value is missing"),
    ("guidance_scale>=high", "compares numbers"),
    ("steps 40..20", "starts above its end"),
    ("steps a..b", "a range needs numbers"),
    ("steps ..", "a range needs numbers"),
    ("3d=1", "is not a parameter expression"),
    ("a__b=1", "cannot be searched"),
    ("a__b 1..2", "cannot be searched"),
])
def test_bad_expressions_say_what_is_wrong(text, fragment):
    with pytest.raises(ValidationError) as raised:
        parse_condition(text)
    assert fragment in raised.value.messages[0]
    assert text.strip() in raised.value.messages[0]


def test_several_expressions_keep_the_good_ones():
    conditions, errors = parse_conditions(" seed=1 ;; steps>=oops; cfg<2 ")
    assert [c.text for c in conditions] == ["seed=1", "cfg<2"]
    assert len(errors) == 1 and "steps>=oops" in errors[0]
    assert split_expressions("a=1; ;b=2") == ["a=1", "b=2"]


def test_keys_are_dotted_the_commonest_kept_and_sorted():
    keys = parameter_keys([
        {"seed": 1, "image_size": {"width": 1, "height": 2}},
        {"loras": [{"path": "x"}], "seed": 2, "bad key": 1},
        "not a dict",
    ])
    assert keys == ["image_size.height", "image_size.width", "loras", "seed"]
    assert parameter_keys([{"b": 1, "a": 1}, {"b": 2}], limit=1) == ["b"]
    assert len(parameter_keys([{f"k{i}": i for i in range(100)}], limit=5)) == 5

"""A machine's schema read as rows: type, allowed values, default."""
import json

from factory.parameters.describe import FieldRow, describe_schema
from tests.conftest import SEEDS

SCHEMA = {
    "type": "object",
    "required": ["prompt"],
    "properties": {
        "prompt": {"type": "string", "minLength": 1, "maxLength": 2000,
                   "description": "What to generate."},
        "steps": {"type": "integer", "minimum": 1, "maximum": 50, "default": 28},
        "width": {"type": "integer", "exclusiveMinimum": 0, "maximum": 14142},
        "strength": {"type": "number", "minimum": 0},
        "format": {"type": "string", "enum": ["png", "jpeg"], "default": "png"},
        "safe": {"type": "boolean", "default": True},
        "image_url": {"type": "string", "format": "uri"},
        "size": {
            "default": "square",
            "anyOf": [
                {"title": "Preset", "type": "string", "enum": ["square", "wide"]},
                {"title": "Custom", "type": "object", "required": ["width"],
                 "properties": {"width": {"type": "integer", "minimum": 64}}},
            ],
        },
        "loras": {"type": "array", "maxItems": 3, "default": [],
                  "items": {"type": "object", "properties": {"path": {"type": "string"}}}},
    },
}


def rows() -> dict[str, FieldRow]:
    return {row.name: row for row in describe_schema(SCHEMA, {"steps": 4})}


def test_rows_follow_schema_order_and_mark_required():
    described = describe_schema(SCHEMA, {})
    assert [row.name for row in described] == list(SCHEMA["properties"])
    assert [row.name for row in described if row.required] == ["prompt"]


def test_numeric_ranges_read_as_bounds():
    assert rows()["steps"].allowed == "1–50"
    assert rows()["width"].allowed == "> 0, ≤ 14142"
    assert rows()["strength"].allowed == "≥ 0"


def test_string_lengths_and_description():
    prompt = rows()["prompt"]
    assert prompt.allowed == "1–2000 characters"
    assert prompt.description == "What to generate."
    assert prompt.type == "string"


def test_enum_lists_its_values_and_keeps_them_as_choices():
    fmt = rows()["format"]
    assert fmt.allowed == "one of png, jpeg"
    assert fmt.choices == ("png", "jpeg")


def test_machine_default_wins_over_schema_default():
    assert rows()["steps"].default == "4"
    assert rows()["format"].default == "png"
    assert rows()["safe"].default == "true"
    assert rows()["loras"].default == "[]"
    assert rows()["image_url"].default == ""


def test_any_of_names_each_alternative():
    size = rows()["size"]
    assert size.type == "string or object"
    assert size.allowed == "Preset: one of square, wide; Custom: keys width* (≥ 64)"


def test_arrays_and_formats_in_the_type():
    assert rows()["loras"].type == "array of object"
    assert rows()["loras"].allowed == "up to 3 items; keys path"
    assert rows()["image_url"].type == "string (uri)"


def test_unreadable_schema_gives_no_rows():
    assert describe_schema(["not", "a", "schema"], None) == []
    assert describe_schema({"properties": "nope"}, {}) == []


def test_every_seed_property_gets_a_row():
    for path in sorted((SEEDS / "machines").glob("*.json")):
        for machine in json.loads(path.read_text())["machines"]:
            schema = machine["input_schema"]
            described = describe_schema(schema, machine.get("defaults", {}))
            assert [r.name for r in described] == list(schema["properties"]), machine["slug"]
            assert all(r.type for r in described), machine["slug"]

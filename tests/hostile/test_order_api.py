"""Hostile orders through the Python API: plan_order and place_order refuse
them with a message naming what is wrong, and write and queue nothing."""
from decimal import Decimal

import pytest

from factory.models import FactoryMachine, Order
from factory.ordering import place_order, plan_order
from factory.parameters.schema import ParameterError
from tests.hostile.conftest import Case, assert_clear, case

KIND = "order (Python API)"
SEED = "must be a whole number from 0 to 4,294,967,295"
RUNS = "runs: must be a whole number from 1 to 2,147,483,647"
SAMPLES = "prompt_samples: must be a whole number from 1 to 2,147,483,647"
CEILING = "item_ceiling: must be a whole number from 1 to 2,147,483,647"


def api(name: str, fields: dict, *says: str, machine: str = "demo-image",
        never: tuple[str, ...] = ()) -> Case:
    return case(KIND, name, (machine, fields), *says, never=never)


def params(**values) -> dict:
    return {"base_parameters": values}


def _nested(depth: int) -> list:
    value: list = [1]
    for _ in range(depth):
        value = [value]
    return value


def swept(field: str, *values) -> dict:
    return {"sweeps": [[{"field": field, "values": list(values)}]]}


CASES = [
    # ------------------------------------------------ a seed among the parameters
    api("seed text", params(seed="abc"), f"seed {SEED}, got 'abc'"),
    api("seed false", params(seed=False), f"seed {SEED}, got False"),
    api("seed true", params(seed=True), f"seed {SEED}, got True"),
    api("seed numeric text", params(seed="2"), f"seed {SEED}, got '2'"),
    api("seed fraction", params(seed=2.7), f"seed {SEED}, got 2.7"),
    api("seed whole float", params(seed=2.0), f"seed {SEED}, got 2.0"),
    api("seed 2**64", params(seed=2**64), f"seed {SEED}, got 18446744073709551616"),
    api("seed 2**32", params(seed=2**32), f"seed {SEED}, got 4294967296"),
    api("seed -1", params(seed=-1), f"seed {SEED}, got -1"),
    api("seed null", params(seed=None), f"seed {SEED}, got None"),
    api("seed list", params(seed=[1]), f"seed {SEED}, got [1]"),
    api("seed object", params(seed={"v": 1}), f"seed {SEED}"),
    api("seed text cross-machine",
        {**params(seed="abc"), **swept("machine", "demo-image", "fal-flux-dev")},
        f"seed {SEED}, got 'abc'"),
    api("seed text on fal", params(seed="abc"), f"seed {SEED}", machine="fal-flux-dev"),
    api("seed -1 on civitai", params(seed=-1), f"seed {SEED}", machine="civitai-sdxl-1-0"),
    # ------------------------------------------------ swept seeds
    api("swept seed text", swept("seed", 1, "abc"), f"item 1: seed {SEED}, got 'abc'"),
    api("swept seed negative", swept("seed", -1), f"item 0: seed {SEED}, got -1"),
    api("swept seed huge", swept("seed", 2**40), f"seed {SEED}, got 1099511627776"),
    api("swept seed bool", swept("seed", True), f"seed {SEED}, got True"),
    api("swept seed fraction", swept("seed", 0.5), f"seed {SEED}, got 0.5"),
    # ------------------------------------------------ the order's own seed fields
    api("order seed -1", {"seed": -1, "seed_strategy": "fixed"}, f"seed: {SEED}, got -1"),
    api("order seed 2**64", {"seed": 2**64, "seed_strategy": "fixed"}, f"seed: {SEED}"),
    api("order seed 2**32", {"seed": 2**32}, f"seed: {SEED}, got 4294967296"),
    api("order seed text", {"seed": "abc"}, f"seed: {SEED}, got 'abc'"),
    api("order seed float", {"seed": 2.5}, f"seed: {SEED}, got 2.5"),
    api("order seed bool", {"seed": False}, f"seed: {SEED}, got False"),
    api("seed base -1", {"seed_base": -1}, f"seed_base: {SEED}, got -1"),
    api("seed base 2**63", {"seed_base": 2**63}, f"seed_base: {SEED}"),
    api("seed base text", {"seed_base": "x"}, f"seed_base: {SEED}"),
    api("seed strategy unknown", {"seed_strategy": "lucky"},
        "seed_strategy: unknown strategy 'lucky'; use fixed, random, increment"),
    # ------------------------------------------------ counts the database stores
    api("runs 0", {"runs": 0}, RUNS, "got 0"),
    api("runs -1", {"runs": -1}, RUNS, "got -1"),
    api("runs 2**31", {"runs": 2**31}, RUNS, "got 2147483648"),
    api("runs 2**64", {"runs": 2**64}, RUNS),
    api("runs text", {"runs": "3"}, RUNS, "got '3'"),
    api("runs fraction", {"runs": 2.5}, RUNS, "got 2.5"),
    api("runs bool", {"runs": True}, RUNS, "got True"),
    api("runs null", {"runs": None}, RUNS, "got None"),
    api("runs over the ceiling", {"runs": 1001}, "expands to 1,001 items, over the ceiling of 1,000"),
    api("samples 0", {"prompt_samples": 0}, SAMPLES),
    api("samples -5", {"prompt_samples": -5}, SAMPLES),
    api("samples 2**40", {"prompt_samples": 2**40}, SAMPLES),
    api("samples text", {"prompt_samples": "2"}, SAMPLES),
    api("samples over the ceiling", {"prompt_mode": "random", "prompt_samples": 5000,
                                     "prompt": "{a|b}"}, "over the ceiling of 1,000"),
    api("ceiling 0", {"item_ceiling": 0}, CEILING),
    api("ceiling -1", {"item_ceiling": -1}, CEILING),
    api("ceiling 2**31", {"item_ceiling": 2**31}, CEILING),
    api("ceiling text", {"item_ceiling": "many"}, CEILING),
    api("prompt mode unknown", {"prompt_mode": "shuffle"},
        "prompt_mode: unknown mode 'shuffle'; use combinatorial or random"),
    # ------------------------------------------------ the prompt
    api("prompt null", {"prompt": None}, "prompt: must be text, got None"),
    api("prompt number", {"prompt": 5}, "prompt: must be text, got 5"),
    api("prompt list", {"prompt": ["a", "b"]}, "prompt: must be text"),
    api("prompt 4,001 characters", {"prompt": "x" * 4001},
        "prompt 1 of 1 is 4,001 characters long, over the limit of 4,000"),
    api("prompt grown past the limit by a variant", {"prompt": "{a|b}" + "x" * 4000},
        "4,001 characters long, over the limit of 4,000"),
    api("prompt grown past the limit by a token",
        {"prompt": "${long}", "tokens": {"long": "y" * 5000}},
        "5,000 characters long, over the limit of 4,000"),
    api("prompt grown past the limit by a wildcard", {"prompt": "__colors__" + "z" * 3995},
        "over the limit of 4,000"),
    api("prompt in parameters", params(prompt="sneaky"),
        "base_parameters: 'prompt' has a field of its own on the order"),
    api("long prompt in parameters", params(prompt="x" * 5000),
        "'prompt' has a field of its own"),
    api("null prompt in parameters", params(prompt=None), "'prompt' has a field of its own"),
    api("template prompt in parameters", params(prompt="{a|b}"),
        "'prompt' has a field of its own"),
    api("choose 99999 of 2", {"prompt": "{99999$$a|b}"},
        "prompt: a choose-N variant asks for 99999 picks but has only 2 option(s)"),
    api("choose 3 of 2", {"prompt": "{3$$a|b}"}, "asks for 3 picks but has only 2"),
    api("choose up to 9 of 2", {"prompt": "{1-9$$a|b}"}, "asks for 1-9 picks"),
    api("choose none", {"prompt": "{0$$a|b}"}, "must pick at least 1 option"),
    api("choose 3 of 2 in random mode",
        {"prompt": "{3$$a|b}", "prompt_mode": "random", "prompt_samples": 2},
        "asks for 3 picks"),
    api("choose more than a wildcard has", {"prompt": "{5$$__colors__}"},
        "asks for 5 picks but has only 2"),
    api("two empty options", {"prompt": "{|}"}, "more than one empty option"),
    api("two blank options", {"prompt": "{ | }"}, "more than one empty option"),
    api("three options, two empty", {"prompt": "a {||red} kite"}, "more than one empty option"),
    api("unclosed variant", {"prompt": "a {fox|owl"}, "'{' is never closed"),
    api("stray brace", {"prompt": "a fox}"}, "'}' has no matching '{'"),
    api("lone option in braces", {"prompt": "a {curly} fox"}, "hold one option and would vanish"),
    api("undefined token", {"prompt": "a ${nowhere} fox"}, "undefined token ${nowhere}"),
    api("unclosed token", {"prompt": "a ${style"}, "'${' is never closed"),
    api("library variable", {"prompt": "${x=red} ${x}"}, "is not a token"),
    api("unknown wildcard", {"prompt": "a __nothing__ fox"}, "unknown wildcard __nothing__"),
    api("misspelt wildcard", {"prompt": "a __colrs__ fox"}, "did you mean __colors__"),
    api("recursive wildcard", {"prompt": "a __loop__ fox"}, "wildcard __loop__ is recursive"),
    api("wildcard without values", {"prompt": "a __empty__ fox"}, "__empty__ has no values"),
    api("unclosed wildcard", {"prompt": "a __colors fox"}, "never closed with '__'"),
    api("too many prompts", {"prompt": "{a|b|c|d|e|f|g|h|i|j}" * 4},
        "over the ceiling of 1,000"),
    api("NUL in prompt", {"prompt": "a fox\x00"}, "prompt: contains a control character (U+0000)"),
    api("bell in prompt", {"prompt": "a fox\x07"}, "contains a control character (U+0007)"),
    api("escape in prompt", {"prompt": "\x1b[31mred"}, "control character (U+001B) at position 1"),
    api("DEL in prompt", {"prompt": "a\x7f"}, "control character (U+007F)"),
    api("C1 control in prompt", {"prompt": "a\x85b"}, "control character (U+0085)"),
    api("lone surrogate in prompt", {"prompt": "a \ud800 fox"}, "a lone surrogate (U+D800)"),
    api("private-use stand-in in prompt", {"prompt": "a \ue07b fox"}, "cannot be used in a template"),
    # ------------------------------------------------ swept prompts take the same path
    api("swept prompt too long", swept("prompt", "a", "x" * 4001),
        "sweeps (prompt 2)", "over the limit of 4,000"),
    api("swept prompt with variants", swept("prompt", "{a|b}"),
        "sweeps (prompt 1): makes 2 prompts; a swept prompt must make one"),
    api("swept prompt unknown wildcard", swept("prompt", "__nothing__"),
        "unknown wildcard __nothing__"),
    api("swept prompt unclosed variant", swept("prompt", "a {fox"),
        "sweeps (prompt 1), column 3: '{' is never closed"),
    api("swept prompt undefined token", swept("prompt", "${nowhere}"), "undefined token ${nowhere}"),
    api("swept prompt null", swept("prompt", None), "sweeps (prompt 1): a prompt is text, got None"),
    api("swept prompt number", swept("prompt", 7), "a prompt is text, got 7"),
    api("swept prompt NUL", swept("prompt", "a\x00"), "sweeps/0/0/values/0: contains a control"),
    api("swept prompt choose 9", swept("prompt", "{9$$a|b}"), "asks for 9 picks"),
    # ------------------------------------------------ unknown keys
    api("unknown key, no look-alike hint", params(negative_prompt="blur"),
        "fal-flux-dev does not accept 'negative_prompt'.",
        machine="fal-flux-dev", never=("Did you mean 'negative_prompt'",)),
    api("two unknown keys named", params(widht=512, heigth=512),
        "does not accept 'widht'", "does not accept 'heigth'", "Did you mean 'width'",
        "It accepts: "),
    api("misspelt key", params(num_image=2), "Did you mean 'num_images'"),
    api("unknown key cross-machine",
        {**params(colour="red"), **swept("machine", "demo-image", "fal-flux-dev")},
        "does not accept 'colour'"),
    api("safety switch as a parameter", params(allowMatureContent=False),
        "does not accept 'allowMatureContent'", machine="civitai-sdxl-1-0"),
    # ------------------------------------------------ wrong types and bounds
    api("width text", params(width="wide"), "'wide' is not of type 'integer'"),
    api("width fraction", params(width=512.5), "512.5 is not of type 'integer'"),
    api("width bool", params(width=True), "True is not of type 'integer'"),
    api("width null", params(width=None), "None is not of type 'integer'"),
    api("width list", params(width=[512]), "is not of type 'integer'"),
    api("width huge", params(width=10**30), "is greater than the maximum of 2048"),
    api("width negative", params(width=-1), "-1 is less than the minimum of 64"),
    api("images 0", params(num_images=0), "0 is less than the minimum of 1"),
    api("images 5", params(num_images=5), "5 is greater than the maximum of 4"),
    api("format unknown", params(output_format="gif"), "'gif' is not one of"),
    api("negative prompt too long", params(negative_prompt="x" * 2001), "is too long"),
    api("negative prompt NUL", params(negative_prompt="x\x00"),
        "base_parameters/negative_prompt: contains a control character (U+0000)"),
    api("key with a lone surrogate", params(**{"\udfff": 1}),
        "base_parameters (a key): contains a lone surrogate"),
    api("NaN", params(width=float("nan")), "base_parameters/width: nan is not a finite number"),
    api("Infinity", params(width=float("inf")), "inf is not a finite number"),
    api("deep nesting", params(deep=_nested(22)), "nested deeper than 20 levels"),
    api("guidance 1.5 on stable audio 2.5", params(guidance_scale=1.5),
        "1.5 is not of type 'integer'", machine="fal-stable-audio-25"),
    api("steps over fal's range", params(num_inference_steps=51),
        "51 is greater than the maximum of 50", machine="fal-flux-dev"),
    api("image size text on fal", params(image_size="huge"), "image_size", machine="fal-flux-dev"),
    api("quantity 13 on civitai", params(quantity=13),
        "13 is greater than the maximum of 12", machine="civitai-sdxl-1-0"),
    api("aspect ratio unknown on replicate", params(aspect_ratio="7:5"),
        "'7:5' is not one of", machine="replicate-flux-schnell"),
    # ------------------------------------------------ the order's JSON fields
    api("parameters a list", {"base_parameters": []}, "base_parameters: must be an object {…}"),
    api("parameters text", {"base_parameters": "width=5"}, "base_parameters: must be an object"),
    api("tokens a list", {"tokens": [1]}, "tokens: must be an object {…}"),
    api("token NUL", {"tokens": {"a": "\x00"}}, "tokens/a: contains a control character"),
    api("token NaN", {"tokens": {"a": float("nan")}}, "tokens/a: nan is not a finite number"),
    api("sweeps an object", {"sweeps": {}}, "sweeps: must be a list […]"),
    api("sweeps empty group", {"sweeps": [[]]}, "sweeps[0]: a group is a non-empty list"),
    api("sweeps missing values", {"sweeps": [[{"field": "width"}]]},
        'sweeps[0][0]: expected {"field": …, "values": […]}'),
    api("sweeps empty values", swept("width"), "values must be a non-empty list"),
    api("sweeps field not a name", {"sweeps": [[{"field": 5, "values": [1]}]]},
        "field must be a parameter name"),
    api("sweeps field twice", {"sweeps": [[{"field": "width", "values": [64]}],
                                          [{"field": "width", "values": [64]}]]},
        "'width' is swept twice"),
    api("sweeps unequal zip", {"sweeps": [[{"field": "width", "values": [64, 128]},
                                           {"field": "height", "values": [64]}]]},
        "zipped lists need equal lengths, got width=2, height=1"),
    api("sweeps unknown machine", swept("machine", "nowhere"), "unknown machine(s) nowhere"),
    api("sweeps width text", swept("width", 64, "wide"), "item 1", "'wide' is not of type 'integer'"),
    api("sweeps over the ceiling", swept("width", *range(64, 2048)), "over the ceiling of 1,000"),
    api("required parameters text", {"required_parameters": "width"},
        "required_parameters: must be a list […]"),
]


def _order(machine: str, fields: dict) -> Order:
    order = Order(machine=FactoryMachine.objects.get(slug=machine),
                  prompt="a red kite over dunes")
    for name, value in fields.items():
        setattr(order, name, value)
    return order


@pytest.mark.parametrize("refusal", CASES, ids=[c.id for c in CASES])
def test_the_python_api_refuses_hostile_orders(refusal, untouched):
    machine, fields = refusal.value
    order = _order(machine, fields)
    with untouched():
        with pytest.raises(ParameterError) as planned:
            plan_order(order)
        with pytest.raises(ParameterError) as placed:
            place_order(order)
    assert str(planned.value) == str(placed.value)
    assert_clear(str(placed.value), refusal)


def test_a_saved_draft_is_refused_on_placing_and_stays_a_draft(untouched):
    order = _order("demo-image", {})
    order.save()
    Order.objects.filter(pk=order.pk).update(base_parameters={"seed": "abc"})
    order.refresh_from_db()
    with untouched():
        with pytest.raises(ParameterError, match="seed must be a whole number"):
            place_order(order)
    order.refresh_from_db()
    assert (order.status, order.items.count()) == ("draft", 0)


def test_a_cost_no_column_can_record_is_refused(untouched):
    FactoryMachine.objects.filter(slug="demo-image").update(
        price_amount=Decimal("999999.999999"), price_unit="output")
    order = _order("demo-image", {"runs": 200, "base_parameters": {"num_images": 4}})
    with untouched():
        with pytest.raises(ParameterError, match=r"estimated cost 800,000,000.0000 is over "
                                                 r"the 99,999,999.9999 an order can record"):
            place_order(order)

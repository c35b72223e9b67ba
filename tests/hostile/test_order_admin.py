"""Hostile orders through the admin over HTTP: the order form, its preview
and placing answer with a located message, never a server error, and write
and queue nothing."""
import html
import json

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from factory.models import FactoryMachine, Order
from tests.admin_ext.test_order_form import ADD, PREVIEW, _data
from tests.hostile.conftest import Case, assert_clear, case

KIND = "order form (admin)"
PLACE_KIND = "place a saved draft (admin)"
SEED = "must be a whole number from 0 to 4,294,967,295"


def form(name: str, over: dict, *says: str, machine: str = "demo-image",
         never: tuple[str, ...] = ()) -> Case:
    return case(KIND, name, (machine, over), *says, never=never)


def params(**values) -> dict:
    return {"base_parameters": json.dumps(values)}


def swept(field: str, *values) -> dict:
    return {"sweeps": json.dumps([[{"field": field, "values": list(values)}]])}


CASES = [
    form("seed text", {"seed": "abc"}, "Enter a whole number"),
    form("seed -1", {"seed": "-1", "seed_strategy": "fixed"}, "greater than or equal to 0"),
    form("seed 2**64", {"seed": str(2**64)}, "less than or equal to 4294967295"),
    form("seed 2**32", {"seed": str(2**32)}, "less than or equal to 4294967295"),
    form("seed fraction", {"seed": "2.7"}, "Enter a whole number"),
    form("seed false", {"seed": "false"}, "Enter a whole number"),
    form("seed base text", {"seed_base": "abc"}, "Enter a whole number"),
    form("seed base -1", {"seed_base": "-1"}, "greater than or equal to 0"),
    form("seed in parameters", params(seed="abc"), "seed has a field of its own on the order"),
    form("prompt in parameters", params(prompt="sneaky"), "prompt has a field of its own"),
    form("swept seed text", swept("seed", 1, "abc"), f"item 1: seed {SEED}, got 'abc'"),
    form("swept seed false", swept("seed", False), f"seed {SEED}, got False"),
    form("swept seed text number", swept("seed", "2"), f"seed {SEED}, got '2'"),
    form("swept seed fraction", swept("seed", 2.7), f"seed {SEED}, got 2.7"),
    form("swept seed 2**64", swept("seed", 2**64), f"seed {SEED}"),
    form("swept seed -1", swept("seed", -1), f"seed {SEED}, got -1"),
    form("runs 0", {"runs": "0"}, "runs: must be a whole number from 1"),
    form("runs -1", {"runs": "-1"}, "greater than or equal to 0"),
    form("runs text", {"runs": "many"}, "Enter a whole number"),
    form("runs 2**31", {"runs": str(2**31)}, "less than or equal to 2147483647"),
    form("runs 2**70", {"runs": str(2**70)}, "less than or equal to 2147483647"),
    form("runs over the ceiling", {"runs": "1001"}, "over the ceiling of 1,000"),
    form("samples 0", {"prompt_samples": "0"}, "prompt_samples: must be a whole number from 1"),
    form("samples 2**40", {"prompt_samples": str(2**40)}, "less than or equal to 2147483647"),
    form("ceiling 0", {"item_ceiling": "0"}, "item_ceiling: must be a whole number from 1"),
    form("ceiling 2**40", {"item_ceiling": str(2**40)}, "less than or equal to 2147483647"),
    form("prompt mode unknown", {"prompt_mode": "shuffle"}, "Select a valid choice"),
    form("seed strategy unknown", {"seed_strategy": "lucky"}, "Select a valid choice"),
    form("choose 99999 of 2", {"prompt": "{99999$$a|b}"},
         "asks for 99999 picks but has only 2 option(s)"),
    form("choose up to 9 of 2", {"prompt": "{1-9$$a|b}"}, "asks for 1-9 picks"),
    form("two empty options", {"prompt": "a {|} kite"}, "more than one empty option"),
    form("lone option in braces", {"prompt": "a {curly} fox"}, "would vanish"),
    form("stray brace", {"prompt": "a fox}"}, "has no matching"),
    form("misspelt wildcard", {"prompt": "__colrs__"}, "did you mean __colors__"),
    form("wildcard without values", {"prompt": "__empty__"}, "has no values"),
    form("prompt 4,001 characters", {"prompt": "x" * 4001},
         "The prompt has 4,001 characters; at most 4,000 are allowed."),
    form("prompt grown by a token", {"prompt": "${t}", "tokens": json.dumps({"t": "y" * 4500})},
         "4,500 characters long"),
    form("escape in prompt", {"prompt": "\x1b[31m"}, "control character (U+001B)"),
    form("C1 control in title", {"title": "a\x9bb"}, "title: contains a control character"),
    form("NUL in title", {"title": "a\x00b"}, "Null characters are not allowed"),
    form("swept prompt too long", swept("prompt", "x" * 4001), "over the limit of 4,000"),
    form("swept prompt variants", swept("prompt", "{a|b}"), "a swept prompt must make one"),
    form("swept prompt null", swept("prompt", None), "a prompt is text, got None"),
    form("swept prompt wildcard", swept("prompt", "__nothing__"), "unknown wildcard"),
    form("unknown key, no look-alike hint", params(negative_prompt="blur"),
         "does not accept 'negative_prompt'", machine="fal-flux-dev",
         never=("Did you mean 'negative_prompt'",)),
    form("two unknown keys named", params(widht=512, heigth=512),
         "does not accept 'widht'", "does not accept 'heigth'"),
    form("width fraction", params(width=512.5), "512.5 is not of type 'integer'"),
    form("width bool", params(width=True), "True is not of type 'integer'"),
    form("width 10**30", params(width=10**30), "greater than the maximum"),
    form("format unknown", params(output_format="gif"), "is not one of"),
    form("guidance 1.5 on stable audio 2.5", params(guidance_scale=1.5),
         "1.5 is not of type 'integer'", machine="fal-stable-audio-25"),
    form("parameters a list", {"base_parameters": "[1]"}, "Expected an object"),
    form("parameters bare text", {"base_parameters": "width"}, "Not valid JSON"),
    form("parameters NUL escape", {"base_parameters": '{"negative_prompt": "\\u0000"}'},
         "control character (U+0000)"),
    form("parameters -Infinity", {"base_parameters": '{"width": -Infinity}'},
         "-Infinity is not a number"),
    form("tokens NUL", {"tokens": '{"a": "\\u0000"}'}, "control character"),
    form("tokens C1 key", {"tokens": '{"\\u0085": "x"}'}, "(a key): contains a control"),
    form("sweeps an object", {"sweeps": "{}"}, "Expected a list"),
    form("sweeps empty group", {"sweeps": "[[]]"}, "a group is a non-empty list"),
    form("sweeps field twice", {"sweeps": json.dumps(
        [[{"field": "width", "values": [64]}], [{"field": "width", "values": [64]}]])},
         "swept twice"),
    form("sweeps unknown machine", swept("machine", "nowhere"), "unknown machine(s) nowhere"),
    form("required not a list", {"required_parameters": '"width"'}, "Expected a list"),
    form("invalid JSON tokens", {"tokens": "{'a': 1}"}, "Not valid JSON"),
    form("huge JSON", {"tokens": json.dumps({"a": "x" * 210_000})}, "characters of JSON"),
]


@pytest.fixture
def client(seeded, db) -> Client:
    """A superuser without a password: hashing one would dominate the run."""
    lead = User.objects.create(username="hostile-lead", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(lead)
    return client


def _page(response) -> str:
    return html.unescape(response.content.decode())


@pytest.mark.parametrize("refusal", CASES, ids=[c.id for c in CASES])
def test_the_order_form_refuses_hostile_input(refusal, client, untouched):
    slug, over = refusal.value
    data = _data(FactoryMachine.objects.get(slug=slug), **over)
    with untouched():
        preview = client.post(PREVIEW, data)
        placed = client.post(ADD, {**data, "_place": "1"})
    assert preview.status_code == 200 and placed.status_code == 200, refusal.name
    assert_clear(_page(preview), refusal)
    assert 'id="place-from-form"' in preview.content.decode()
    assert_clear(_page(placed), refusal)


PLACE_CASES = [
    case(PLACE_KIND, "draft seed text", {"base_parameters": {"seed": "abc"}},
         f"cannot be placed: item 0: seed {SEED}, got 'abc'"),
    case(PLACE_KIND, "draft seed false", {"base_parameters": {"seed": False}},
         f"seed {SEED}, got False"),
    case(PLACE_KIND, "draft prompt in parameters", {"base_parameters": {"prompt": "x"}},
         "'prompt' has a field of its own"),
    case(PLACE_KIND, "draft order seed 2**40", {"seed": 2**40}, f"seed: {SEED}"),
    case(PLACE_KIND, "draft runs 0", {"runs": 0}, "runs: must be a whole number from 1"),
    case(PLACE_KIND, "draft choose 99999", {"prompt": "{99999$$a|b}"}, "asks for 99999 picks"),
    case(PLACE_KIND, "draft two empty options", {"prompt": "{|}"}, "more than one empty option"),
    case(PLACE_KIND, "draft prompt too long", {"prompt": "x" * 4001}, "over the limit of 4,000"),
    case(PLACE_KIND, "draft swept prompt too long",
         {"sweeps": [[{"field": "prompt", "values": ["x" * 4001]}]]}, "over the limit of 4,000"),
    case(PLACE_KIND, "draft prompt mode unknown", {"prompt_mode": "shuffle"},
         "prompt_mode: unknown mode 'shuffle'"),
    case(PLACE_KIND, "draft unknown key", {"base_parameters": {"widht": 5}},
         "does not accept 'widht'"),
    case(PLACE_KIND, "draft seed strategy unknown", {"seed_strategy": "lucky"},
         "seed_strategy: unknown strategy"),
]


@pytest.mark.parametrize("refusal", PLACE_CASES, ids=[c.id for c in PLACE_CASES])
def test_placing_a_hostile_saved_draft_is_refused(refusal, client, untouched):
    order = Order.objects.create(machine=FactoryMachine.objects.get(slug="demo-image"),
                                 prompt="a red kite")
    Order.objects.filter(pk=order.pk).update(**refusal.value)
    url = reverse("admin:factory_order_place", args=[order.pk])
    with untouched():
        shown = client.get(url)
        placed = client.post(url)
    for response in (shown, placed):
        assert response.status_code == 302
        *_, message = [str(m) for m in get_messages(response.wsgi_request)]
        assert_clear(message, refusal)
    order.refresh_from_db()
    assert (order.status, order.items.count()) == ("draft", 0)

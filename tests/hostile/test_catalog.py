"""The catalog's facts: every seed machine's schema lists exactly what its
adapter really sends as the model's input, and hostile seed entries are
refused by name before anything is loaded."""
import json
import shutil

import pytest

from factory.models import FactoryMachine, Order
from factory.ordering import plan_order
from factory.providers.civitai import STEP_FIELDS, CivitaiBackend
from factory.providers.fal import FalBackend
from factory.providers.replicate import ReplicateBackend
from factory.seed_files import SeedError, read_catalog
from tests.conftest import SEEDS
from tests.fakes.civitai import FakeCivitai
from tests.fakes.fal import FakeFal
from tests.fakes.replicate import FakeReplicate
from tests.hostile.conftest import assert_clear, case

# Civitai's step input also names the engine, model and operation it runs.
CIVITAI_STEP = {*STEP_FIELDS, "ecosystem", "model"}


@pytest.fixture(scope="module")
def fakes():
    running = {"fal": FakeFal(key="test-key", polls_per_stage=0),
               "replicate": FakeReplicate(token="r8_test"),
               "civitai": FakeCivitai(token="civitai-test")}
    for fake in running.values():
        fake.start()
    yield running
    for fake in running.values():
        fake.stop()


@pytest.fixture
def backends(fakes, settings, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    settings.WEBHOOK_BASE_URL = ""
    settings.FAL_KEY, settings.FAL_QUEUE_URL = "test-key", fakes["fal"].url + "/"
    settings.FAL_API_URL = fakes["fal"].url
    settings.REPLICATE_API_TOKEN = "r8_test"
    settings.REPLICATE_BASE_URL = fakes["replicate"].url
    settings.CIVITAI_API_TOKEN, settings.CIVITAI_BASE_URL = "civitai-test", fakes["civitai"].url
    for fake in fakes.values():
        fake.requests.clear()
    return {"fal": FalBackend, "replicate": ReplicateBackend, "civitai": CivitaiBackend}


def sent(provider: str, fake) -> tuple[dict, dict]:
    """The model input the fake received, and the rest of the body."""
    [post] = [r for r in fake.requests if r.method == "POST"]
    body = post.json()
    if provider == "fal":
        return body, {}
    if provider == "replicate":
        return body["input"], {k: v for k, v in body.items() if k != "input"}
    step = body["steps"][0]["input"]
    return ({k: v for k, v in step.items() if k not in CIVITAI_STEP},
            {k: v for k, v in body.items() if k != "steps"})


SEED_MACHINES = [m["slug"] for path in sorted((SEEDS / "machines").glob("*.json"))
                 for m in json.loads(path.read_text())["machines"] if m["provider"] != "demo"]


@pytest.mark.parametrize("slug", SEED_MACHINES)
@pytest.mark.parametrize("safety", [False, True], ids=["safety off", "safety on"])
def test_the_schema_lists_exactly_what_the_adapter_sends_as_input(
    slug, safety, seeded, db, fakes, backends
):
    machine = FactoryMachine.objects.get(slug=slug)
    extra = {key: "https://example.com/start.png"
             for key in machine.input_schema.get("required", []) if key != "prompt"}
    order = Order(machine=machine, prompt="a kite", base_parameters=extra,
                  safety_checker=safety, seed_strategy="fixed", seed=5)
    [item] = plan_order(order).items
    provider = machine.provider.slug
    backends[provider]().submit(machine, item.parameters)
    model_input, beside = sent(provider, fakes[provider])
    schema = set(machine.input_schema["properties"])
    assert set(model_input) <= schema, (slug, set(model_input) - schema)
    assert not schema & set(beside), (slug, "listed but sent beside the input")
    assert model_input == {k: v for k, v in item.parameters.items() if k in schema}
    switch = (machine.safety or {}).get("key")
    if switch:  # the NSFW switch reaches the provider, inside or beside the input
        value = machine.safety["on" if safety else "off"]
        assert {**model_input, **beside}[switch] == value, slug


KIND = "seed catalog entry"


def _civitai(entry: dict) -> None:
    entry["input_schema"]["properties"]["allowMatureContent"] = {"type": "boolean"}


def _mutate(slug: str, change) -> dict:
    return {"slug": slug, "change": change}


SEED_CASES = [
    case(KIND, "workflow switch listed as an input", _mutate("civitai-sdxl-1-0", _civitai),
         "workflow switch 'allowMatureContent' is not a model input"),
    case(KIND, "workflow switch in the defaults", _mutate(
        "civitai-sdxl-1-0", lambda e: e["defaults"].__setitem__("allowMatureContent", True)),
         "defaults name keys the schema lacks"),
    case(KIND, "workflow flag not true", _mutate(
        "civitai-sdxl-1-0", lambda e: e["safety"].__setitem__("workflow", "yes")),
         'safety "workflow" must be true or absent'),
    case(KIND, "safety key not a string", _mutate(
        "fal-flux-dev", lambda e: e["safety"].__setitem__("key", ["x"])),
         "safety key ['x'] must be a string"),
    case(KIND, "safety with an extra field", _mutate(
        "fal-flux-dev", lambda e: e["safety"].__setitem__("level", 2)), "safety must be {}"),
    case(KIND, "default the schema refuses", _mutate(
        "fal-stable-audio-25", lambda e: e["defaults"].__setitem__("guidance_scale", 1.5)),
         "defaults do not validate", "1.5 is not of type 'integer'"),
    case(KIND, "price as a float", _mutate(
        "fal-flux-dev", lambda e: e["price"].__setitem__("amount", 0.025)),
         "price amount must be a string"),
    case(KIND, "price too precise", _mutate(
        "fal-flux-dev", lambda e: e["price"].__setitem__("amount", "0.0000001")),
         "is not a decimal from 0 to"),
    case(KIND, "negative price", _mutate(
        "fal-flux-dev", lambda e: e["price"].__setitem__("amount", "-1")),
         "is not a decimal from 0 to"),
    case(KIND, "concurrency limit 0", _mutate(
        "fal-flux-dev", lambda e: e.__setitem__("concurrency_limit", 0)),
         "concurrency_limit must be a positive integer"),
    case(KIND, "concurrency limit true", _mutate(
        "fal-flux-dev", lambda e: e.__setitem__("concurrency_limit", True)),
         "concurrency_limit must be a positive integer"),
    case(KIND, "alias to a missing key", _mutate(
        "fal-flux-dev", lambda e: e["aliases"].__setitem__("steps", "nowhere")),
         "alias 'steps' points at 'nowhere', which the schema lacks"),
    case(KIND, "schema not an object", _mutate(
        "fal-flux-dev", lambda e: e.__setitem__("input_schema", {"type": "array"})),
         "input schema must be an object schema"),
]


@pytest.mark.parametrize("refusal", SEED_CASES, ids=[c.id for c in SEED_CASES])
def test_a_hostile_seed_entry_is_refused_by_name(refusal, tmp_path, untouched):
    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS, seeds)
    for path in (seeds / "machines").glob("*.json"):
        catalog = json.loads(path.read_text())
        for entry in catalog["machines"]:
            if entry["slug"] == refusal.value["slug"]:
                refusal.value["change"](entry)
        path.write_text(json.dumps(catalog))
    with untouched():
        with pytest.raises(SeedError) as refused:
            read_catalog(seeds)
    assert_clear(str(refused.value), refusal)
    assert refusal.value["slug"] in str(refused.value)

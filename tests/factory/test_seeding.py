"""The seed catalog: valid data, idempotent loads, all-or-nothing failures."""
import json
import shutil
from io import StringIO
from pathlib import Path
from typing import Any, Callable

import pytest
from django.core.management import CommandError, call_command
from jsonschema import Draft202012Validator

from factory.models import FactoryMachine, Order, Provider
from factory.parameters.schema import check_machine_schema
from factory.seeding import SeedError, default_seed_dir, load_catalog, read_catalog

EXPECTED = {
    "fal": {
        "fal-ai/flux/dev", "fal-ai/flux/schnell", "fal-ai/flux-pro/v1.1",
        "fal-ai/fast-sdxl", "fal-ai/recraft-v3",
        "fal-ai/kling-video/v2.1/standard/image-to-video",
        "fal-ai/stable-audio-25/text-to-audio", "fal-ai/stable-audio",
    },
    "replicate": {
        "black-forest-labs/flux-schnell", "black-forest-labs/flux-dev",
        "black-forest-labs/flux-1.1-pro", "stability-ai/sdxl",
    },
    "civitai": {"urn:air:sdxl:checkpoint:civitai:101055@128078"},
    "demo": {"demo/image", "demo/video", "demo/audio"},
}
# Values for required inputs that no machine can have a default for.
REQUIRED_SAMPLES = {
    "prompt": "a lighthouse on a cliff at dusk",
    "image_url": "https://example.com/start-frame.png",
}


@pytest.fixture
def seeds() -> Path:
    return default_seed_dir()


@pytest.fixture
def broken_seeds(tmp_path: Path, seeds: Path) -> Path:
    """A private copy of the seed directory that a test may damage."""
    return Path(shutil.copytree(seeds, tmp_path / "seeds"))


def _edit(seed_dir: Path, file: str, change: Callable[[dict[str, Any]], None]) -> None:
    """Rewrite one machine file after ``change`` edits its parsed content."""
    path = seed_dir / "machines" / file
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _machine(data: dict[str, Any], slug: str) -> dict[str, Any]:
    return next(m for m in data["machines"] if m["slug"] == slug)


def _snapshot() -> list[tuple[Any, ...]]:
    """Every catalog row with the columns a load could change."""
    providers = Provider.objects.order_by("slug").values_list(
        "slug", "name", "concurrency_limit", "description"
    )
    machines = FactoryMachine.objects.order_by("slug").values_list(
        "slug", "description", "defaults", "updated_at"
    )
    return [*providers, *machines]


@pytest.mark.django_db
def test_every_seeded_machine_has_defaults_its_schema_accepts(seeds):
    load_catalog(seeds)
    machines = list(FactoryMachine.objects.all())
    assert len(machines) >= 14
    for machine in machines:
        check_machine_schema(machine.input_schema, machine.defaults)


@pytest.mark.django_db
def test_defaults_plus_required_inputs_validate_fully(seeds):
    load_catalog(seeds)
    for machine in FactoryMachine.objects.all():
        schema = machine.input_schema
        assert schema["type"] == "object", machine.slug
        assert schema["additionalProperties"] is False, machine.slug
        params = dict(machine.defaults)
        for key in schema.get("required", []):
            params.setdefault(key, REQUIRED_SAMPLES[key])
        errors = [e.message for e in Draft202012Validator(schema).iter_errors(params)]
        assert errors == [], machine.slug


@pytest.mark.django_db
def test_nsfw_switch_is_off_in_defaults_wherever_a_machine_has_one(seeds):
    load_catalog(seeds)
    switched = FactoryMachine.objects.exclude(safety={})
    assert switched.count() >= 9
    for machine in switched:
        key, off = machine.safety["key"], machine.safety["off"]
        # A workflow switch is no input: it is sent beside the defaults.
        assert machine.defaults.get(key, off) == off, machine.slug
        assert (key in machine.defaults) != bool(machine.safety.get("workflow")), machine.slug
        assert machine.safety_parameters(enabled=False) == {key: off}
        assert machine.safety["on"] != off, machine.slug


@pytest.mark.django_db
def test_catalog_holds_each_provider_and_the_listed_endpoints(seeds):
    load_catalog(seeds)
    assert set(Provider.objects.values_list("slug", flat=True)) == set(EXPECTED)
    assert Provider.objects.get(slug="demo").concurrency_limit == 8
    for provider, endpoints in EXPECTED.items():
        found = FactoryMachine.objects.filter(provider__slug=provider)
        assert set(found.values_list("endpoint_id", flat=True)) >= endpoints
    sdxl = FactoryMachine.objects.get(slug="replicate-sdxl")
    assert sdxl.version == (
        "7762fd07cf82c948538e41f63f77d685e02b063e37e496e96eefd46c929f9bdc"
    )


def test_schemas_keep_each_providers_own_names_types_and_ranges(seeds):
    machines = read_catalog(seeds).machines
    props = {slug: m["input_schema"]["properties"] for slug, m in machines.items()}
    assert props["fal-flux-pro-v1-1"]["safety_tolerance"]["enum"] == [
        "1", "2", "3", "4", "5", "6"]
    tolerance = props["replicate-flux-1-1-pro"]["safety_tolerance"]
    assert (tolerance["type"], tolerance["minimum"], tolerance["maximum"]) == (
        "integer", 1, 6)
    assert "format" in props["fal-fast-sdxl"]
    assert "output_format" not in props["fal-fast-sdxl"]
    kling = "fal-kling-v2-1-standard-i2v"
    assert props[kling]["duration"]["enum"] == ["5", "10"]
    assert machines[kling]["input_schema"]["required"] == ["prompt", "image_url"]
    assert machines["fal-stable-audio"]["output_key"] == "audio_file"
    assert props["replicate-flux-dev"]["guidance"]["maximum"] == 10
    assert props["replicate-flux-schnell"]["num_inference_steps"]["maximum"] == 4
    assert props["fal-flux-schnell"]["num_inference_steps"]["maximum"] == 12
    assert "negative_prompt" not in props["fal-flux-dev"]


@pytest.mark.django_db
def test_rerun_creates_nothing_and_changes_no_row(seeds):
    first = load_catalog(seeds)
    assert (first.created, first.updated) == (first.providers + first.machines, 0)
    before = _snapshot()
    again = load_catalog(seeds)
    assert (again.created, again.updated, again.removed) == (0, 0, 0)
    assert again.unchanged == first.created
    assert _snapshot() == before


@pytest.mark.django_db
def test_rerun_restores_a_field_edited_in_the_database(seeds):
    load_catalog(seeds)
    FactoryMachine.objects.filter(slug="demo-image").update(
        description="edited", defaults={}
    )
    report = load_catalog(seeds)
    assert (report.created, report.updated) == (0, 1)
    machine = FactoryMachine.objects.get(slug="demo-image")
    assert machine.defaults["output_format"] == "png"
    assert machine.description.startswith("Offline")


@pytest.mark.django_db
def test_reset_removes_an_unused_extra_machine_and_keeps_one_in_use(seeds):
    load_catalog(seeds)
    extra = {
        "provider": Provider.objects.get(slug="demo"), "endpoint_id": "demo/old",
        "modality": "image", "input_schema": {"type": "object", "properties": {}},
    }
    FactoryMachine.objects.create(slug="retired-unused", name="Unused", **extra)
    used = FactoryMachine.objects.create(slug="retired-in-use", name="Used", **extra)
    Order.objects.create(machine=used, prompt="kept for its history")
    seeded = FactoryMachine.objects.count() - 2

    assert load_catalog(seeds).removed == 0
    report = load_catalog(seeds, reset=True)

    assert (report.removed, report.kept, report.kept_slugs) == (
        1, 1, ["retired-in-use"])
    assert not FactoryMachine.objects.filter(slug="retired-unused").exists()
    assert FactoryMachine.objects.filter(slug="retired-in-use").exists()
    assert FactoryMachine.objects.count() == seeded + 1


@pytest.mark.django_db
def test_bad_default_is_refused_naming_file_and_machine_and_nothing_changes(
    seeds, broken_seeds
):
    load_catalog(seeds)
    before = _snapshot()

    def damage_fal(data: dict[str, Any]) -> None:
        _machine(data, "fal-flux-dev")["defaults"]["num_inference_steps"] = 999

    def change_demo(data: dict[str, Any]) -> None:
        _machine(data, "demo-image")["description"] = "a valid change"
        data["machines"].append({**_machine(data, "demo-image"), "slug": "demo-new"})

    _edit(broken_seeds, "demo.json", change_demo)
    _edit(broken_seeds, "fal.json", damage_fal)
    with pytest.raises(
        SeedError,
        match=r"seeds/machines/fal\.json: machine 'fal-flux-dev': defaults do not "
        r"validate: /num_inference_steps: 999 is greater than the maximum of 50",
    ):
        load_catalog(broken_seeds)
    assert _snapshot() == before
    assert not FactoryMachine.objects.filter(slug="demo-new").exists()
    assert FactoryMachine.objects.get(slug="demo-image").description != (
        "a valid change")


@pytest.mark.django_db
def test_malformed_json_is_refused_naming_the_file(seeds, broken_seeds):
    load_catalog(seeds)
    before = _snapshot()
    (broken_seeds / "machines" / "replicate.json").write_text('{"machines": [')
    with pytest.raises(
        SeedError, match=r"seeds/machines/replicate\.json: not valid JSON"
    ):
        load_catalog(broken_seeds)
    assert _snapshot() == before


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda m: m.update(provider="nowhere"), "unknown provider 'nowhere'"),
        (lambda m: m.update(modality="hologram"), "modality 'hologram' is not one of"),
        (lambda m: m["price"].update(unit="per_vibe"), "price unit 'per_vibe'"),
        (lambda m: m["price"].update(amount=0.025),
         "price amount must be a string"),
        (lambda m: m["price"].update(amount="-1"),
         "price amount '-1' is not a decimal"),
        (lambda m: m.pop("endpoint_id"), "missing field 'endpoint_id'"),
        (lambda m: m.update(endpont_id="x"), r"unknown fields \['endpont_id'\]"),
        (lambda m: m["aliases"].update(steps="steps"),
         "alias 'steps' points at 'steps', which the schema lacks"),
        (lambda m: m["defaults"].update(enable_safety_checker=True),
         "defaults must set 'enable_safety_checker' to its off value False"),
        (lambda m: m["defaults"].update(sync_mode=True),
         r"defaults name keys the schema lacks: \['sync_mode'\]"),
    ],
)
def test_invalid_machine_is_refused_with_its_reason(broken_seeds, change, problem):
    _edit(broken_seeds, "fal.json",
          lambda data: change(_machine(data, "fal-flux-dev")))
    with pytest.raises(
        SeedError, match=rf"fal\.json: machine 'fal-flux-dev': {problem}"
    ):
        read_catalog(broken_seeds)


def test_duplicate_slug_across_files_is_refused(broken_seeds):
    def copy_flux(data: dict[str, Any]) -> None:
        copy = dict(_machine(data, "demo-image"), slug="fal-flux-dev")
        data["machines"].append(copy)

    _edit(broken_seeds, "demo.json", copy_flux)
    with pytest.raises(
        SeedError, match=r"seeds/machines/fal\.json: machine 'fal-flux-dev': slug is "
        r"already used in seeds/machines/demo\.json",
    ):
        read_catalog(broken_seeds)


@pytest.mark.django_db
def test_command_loads_then_reports_nothing_created(seeds):
    out = StringIO()
    call_command("load_seed_data", stdout=out)
    call_command("load_seed_data", "--seed-dir", str(seeds), stdout=out)
    first, second = out.getvalue().splitlines()
    assert "20 created, 0 updated" in first
    assert "0 created, 0 updated, 20 unchanged, 0 removed" in second


@pytest.mark.django_db
def test_command_refuses_bad_seeds_with_command_error_and_writes_nothing(broken_seeds):
    def damage(data: dict[str, Any]) -> None:
        _machine(data, "demo-audio")["defaults"]["seconds_total"] = 99

    _edit(broken_seeds, "demo.json", damage)
    with pytest.raises(
        CommandError, match=r"demo\.json: machine 'demo-audio': defaults"
    ):
        call_command("load_seed_data", "--reset", "--seed-dir", str(broken_seeds))
    assert FactoryMachine.objects.count() == 0
    assert Provider.objects.count() == 0

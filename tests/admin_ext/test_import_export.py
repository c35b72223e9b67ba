"""Import and export on the change lists: round trips, dry runs, hostile files."""
import io
import json

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
import pytest

from admin_ext.data import resources
from admin_ext.data.formats import FORMATS
from factory.models import (
    FactoryMachine, Order, OrderStatus, Product, Project, Provider, Tag, Template,
    Wildcard,
)
from factory.seeding import default_seed_dir, read_catalog

CSV, XLSX, JSON = 0, 1, 2
EXTENSIONS = {CSV: "csv", XLSX: "xlsx", JSON: "json"}
RESOURCES = {
    "provider": resources.ProviderResource, "factorymachine": resources.MachineResource,
    "template": resources.TemplateResource, "wildcard": resources.WildcardResource,
    "order": resources.OrderResource, "project": resources.ProjectResource,
    "tag": resources.TagResource, "product": resources.ProductResource,
}


@pytest.fixture
def client(lead) -> Client:
    client = Client()
    client.force_login(lead)
    return client


def export(client: Client, model: str, fmt: int, query: str = "", **extra) -> bytes:
    """The file the export page downloads, every column chosen."""
    resource = RESOURCES[model]
    chosen = {f"{resource.__name__.lower()}_{name}": "on"
              for name in resource().column_names()}
    response = client.post(reverse(f"admin:factory_{model}_export") + query,
                           {"format": str(fmt), "resource": "0", **chosen, **extra})
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Disposition"].startswith("attachment")
    return response.content


def rows(content: bytes, fmt: int) -> list[dict]:
    return FORMATS[fmt]().create_dataset(content).dict


def dry_run(client: Client, model: str, fmt: int, content: bytes, name: str = ""):
    response = client.post(reverse(f"admin:factory_{model}_import"), {
        "format": str(fmt), "resource": "0",
        "import_file": SimpleUploadedFile(name or f"data.{EXTENSIONS[fmt]}", content),
    })
    assert response.status_code == 200
    return response


def confirm(client: Client, model: str, response) -> None:
    """Confirm a clean dry run; the change list follows."""
    form = response.context.get("confirm_form")
    assert form is not None, _errors(response)
    done = client.post(reverse(f"admin:factory_{model}_process_import"), {
        name: form.initial[name]
        for name in ("import_file_name", "original_file_name", "format", "resource")
    })
    assert done.status_code == 302, done.content[:2000]


def import_file(client: Client, model: str, fmt: int, content: bytes) -> None:
    confirm(client, model, dry_run(client, model, fmt, content))


def _errors(response) -> str:
    result = response.context.get("result")
    form = response.context.get("form")
    found = [str(message) for messages in (form.errors.values() if form else [])
             for message in messages]
    if result is not None:
        found += [str(e.error) for e in result.base_errors]
        found += [str(e.error) for _, errs in result.row_errors() for e in errs]
        found += [str(row.error_dict) for row in result.invalid_rows]
    return " | ".join(found)


def refused(client: Client, model: str, fmt: int, content: bytes, name: str = "") -> str:
    """Post a hostile file: 200, no confirm step, nothing written; the errors."""
    counts = _counts()
    response = dry_run(client, model, fmt, content, name)
    assert response.context.get("confirm_form") is None
    assert _counts() == counts
    return _errors(response)


def _counts() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in (
        Provider, FactoryMachine, Template, Wildcard, Order, Project, Tag, Product))


# ---------------------------------------------------------------- round trips
@pytest.mark.django_db
@pytest.mark.parametrize("fmt", [CSV, XLSX, JSON])
def test_a_catalog_export_recreates_the_catalog_in_an_empty_database(catalog, client, fmt):
    providers = export(client, "provider", fmt)
    machines = export(client, "factorymachine", fmt)
    before = rows(providers, fmt), rows(machines, fmt)
    FactoryMachine.objects.all().delete()
    Provider.objects.all().delete()
    import_file(client, "provider", fmt, providers)
    import_file(client, "factorymachine", fmt, machines)
    assert (rows(export(client, "provider", fmt), fmt),
            rows(export(client, "factorymachine", fmt), fmt)) == before
    seeds = read_catalog(default_seed_dir())
    assert set(FactoryMachine.objects.values_list("slug", flat=True)) == set(seeds.machines)


@pytest.mark.django_db
def test_a_json_machine_export_has_the_seed_files_shape(catalog, client):
    exported = {row["slug"]: row for row in json.loads(export(client, "factorymachine", JSON))}
    seeded = json.loads((default_seed_dir() / "machines" / "demo.json").read_text())
    for entry in seeded["machines"]:
        assert {**exported[entry["slug"]], **entry} == exported[entry["slug"]]


@pytest.mark.django_db
def test_a_seed_file_imports_as_it_is(catalog, client):
    seeded = (default_seed_dir() / "machines" / "demo.json").read_bytes()
    response = dry_run(client, "factorymachine", JSON, seeded)
    assert response.context["confirm_form"] is not None
    assert response.context["result"].totals["skip"] == len(json.loads(seeded)["machines"])


def _recipes(catalog) -> None:
    machine = FactoryMachine.objects.get(slug="demo-image")
    project = Project.objects.create(name="=Coastal", budget="12.50",
                                     description="@team")
    Template.objects.create(
        name="Harbour", machine=machine, prompt="-a harbour, {dawn|dusk}",
        tokens={"place": "=harbour"}, base_parameters={"width": 256},
        sweeps=[[{"field": "seed", "values": [1, 2]}]], seed=-5, runs=2,
        description="+quoted\nlines",
    )
    Wildcard.objects.create(name="colors/warm", values=["=amber", "coral, red"],
                            description="\ttabbed")
    Tag.objects.create(name="@keeper")
    Order.objects.create(title="=Studies", machine=machine, project=project,
                         prompt="a quiet harbour", base_parameters={"width": 192},
                         seed=7, seed_strategy="fixed")


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", [CSV, XLSX, JSON])
@pytest.mark.parametrize("model", ["template", "wildcard", "project", "tag"])
def test_every_model_exports_and_reimports_unchanged(catalog, client, fmt, model):
    _recipes(catalog)
    content = export(client, model, fmt)
    before = rows(content, fmt)
    Order.objects.all().delete()
    RESOURCES[model]._meta.model.objects.all().delete()
    import_file(client, model, fmt, content)
    assert rows(export(client, model, fmt), fmt) == before


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", [CSV, XLSX, JSON])
def test_orders_come_back_as_new_drafts_with_the_same_recipe(catalog, client, fmt):
    _recipes(catalog)
    Order.objects.update(status=OrderStatus.DONE)
    original = set(Order.objects.values_list("pk", flat=True))
    content = export(client, "order", fmt)
    import_file(client, "order", fmt, content)
    new = Order.objects.exclude(pk__in=original)
    assert [order.status for order in new] == [OrderStatus.DRAFT]
    assert new.get().item_count == 1
    query = "?id__in=" + ",".join(str(pk) for pk in new.values_list("pk", flat=True))
    again = rows(export(client, "order", fmt, query), fmt)

    def recipe(found):
        return [{k: v for k, v in row.items() if k != "id"} for row in found]

    assert recipe(again) == recipe(rows(content, fmt))


@pytest.fixture
def curated(demo_order):
    project = Project.objects.create(name="Coastal")
    first, second = Product.objects.order_by("pk")
    first.rating, first.is_favorite, first.project = 4, True, project
    first.notes = "-keep this\n=really"
    first.save()
    first.tags.set([Tag.objects.create(name="keeper"), Tag.objects.create(name="=calc")])
    return first, second


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", [CSV, XLSX, JSON])
def test_product_curation_round_trips_by_id_and_by_content_hash(curated, client, fmt):
    content = export(client, "product", fmt)
    before = rows(content, fmt)
    assert [str(row["id"]) for row in before] == [
        str(p.pk) for p in sorted(curated, key=lambda p: -p.pk)]
    Product.objects.update(rating=None, is_favorite=False, project=None, notes="")
    for product in curated:
        product.tags.clear()
    import_file(client, "product", fmt, content)
    assert rows(export(client, "product", fmt), fmt) == before
    by_hash = [{"content_hash": curated[0].media.content_hash, "rating": 4}]
    Product.objects.update(rating=None)
    import_file(client, "product", JSON, json.dumps(by_hash).encode())
    assert Product.objects.get(pk=curated[0].pk).rating == 4


@pytest.mark.django_db
def test_a_product_import_changes_only_curation(curated, client):
    product = curated[0]
    content = json.dumps([{"id": product.pk, "prompt": "rewritten", "seed": 99,
                           "rating": 2, "notes": "new"}]).encode()
    import_file(client, "product", JSON, content)
    product.refresh_from_db()
    assert (product.prompt, product.seed, product.rating, product.notes) == (
        "a quiet harbour at dawn", product.item.seed, 2, "new")


@pytest.mark.django_db
def test_a_product_import_never_adds_a_product(curated, client):
    errors = refused(client, "product", JSON, b'[{"id": 999999, "rating": 3}]')
    assert "no product has the id 999999" in errors
    errors = refused(client, "product", JSON, b'[{"content_hash": "abc", "rating": 3}]')
    assert "no product has the content hash" in errors
    errors = refused(client, "product", JSON, b'[{"notes": "x"}]')
    assert "Missing columns ['id']" in errors


# ---------------------------------------------------------------- formulas
@pytest.mark.django_db
def test_formula_cells_are_neutralised_in_csv_and_xlsx_and_json_stays_exact(catalog, client):
    _recipes(catalog)
    text = export(client, "template", CSV).decode("utf-8-sig")
    assert "'-a harbour" in text and "'+quoted" in text and ",-5," in text
    assert "''" not in text.replace("'-a", "").replace("'+q", "")
    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(export(client, "template", XLSX)))
    sheet = book.worksheets[0]
    header = [cell.value for cell in sheet[1]]
    values = dict(zip(header, [cell.value for cell in sheet[2]]))
    assert values["prompt"] == "'-a harbour, {dawn|dusk}"
    assert values["seed"] == -5 and sheet.cell(2, header.index("seed") + 1).data_type == "n"
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)
    exact = json.loads(export(client, "template", JSON))[0]
    assert exact["prompt"] == "-a harbour, {dawn|dusk}" and exact["seed"] == -5
    tags = export(client, "tag", CSV).decode("utf-8-sig")
    assert "'@keeper" in tags
    projects = export(client, "project", XLSX)
    sheet = openpyxl.load_workbook(io.BytesIO(projects)).worksheets[0]
    assert [c.value for c in sheet[2]][:3] == ["'=Coastal", "'@team", 12.5]


# ---------------------------------------------------------------- filters, selection
@pytest.mark.django_db
def test_an_export_takes_the_change_lists_filters(curated, client):
    found = rows(export(client, "product", CSV, "?min_rating=4"), CSV)
    assert [row["id"] for row in found] == [str(curated[0].pk)]
    found = rows(export(client, "product", CSV, "?q=harbour"), CSV)
    assert len(found) == 2


@pytest.mark.django_db
def test_the_export_action_takes_the_selected_rows(curated, client):
    chosen = curated[1]
    form = client.post(reverse("admin:factory_product_changelist"), {
        "action": "export_admin_action", "_selected_action": [chosen.pk],
    })
    assert form.status_code == 200 and b"Export 1 selected item" in form.content
    found = rows(export(client, "product", JSON, export_items=[str(chosen.pk)]), JSON)
    assert [row["id"] for row in found] == [chosen.pk]


@pytest.mark.django_db
def test_a_product_export_reads_a_bounded_number_of_queries(curated, client, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        export(client, "product", JSON)


# ---------------------------------------------------------------- dry run
@pytest.mark.django_db
def test_a_dry_run_shows_each_row_and_writes_nothing_until_confirmed(catalog, client):
    content = b"name,values,description\nsea,\"[\"\"wave\"\"]\",\nsky,\"[\"\"blue\"\"]\",x\n"
    response = dry_run(client, "wildcard", CSV, content)
    result = response.context["result"]
    assert result.totals["new"] == 2 and not Wildcard.objects.exists()
    assert b"New" in response.content and b"sea" in response.content
    confirm(client, "wildcard", response)
    assert Wildcard.objects.get(name="sea").values == ["wave"]
    again = dry_run(client, "wildcard", CSV, content)
    assert again.context["result"].totals["skip"] == 2


@pytest.mark.django_db
def test_a_row_that_fails_shows_row_column_and_reason_and_nothing_is_written(catalog, client):
    content = (b"name,values,description\nsea,\"[\"\"wave\"\"]\",\n"
               b"bad name!,\"[\"\"x\"\"]\",\n")
    response = dry_run(client, "wildcard", CSV, content)
    (invalid,) = response.context["result"].invalid_rows
    assert invalid.number == 2 and "name" in invalid.field_specific_errors
    assert b"Use letters, digits" in response.content
    assert response.context.get("confirm_form") is None and not Wildcard.objects.exists()


@pytest.mark.django_db
def test_a_confirmed_import_is_all_or_nothing(catalog, client, monkeypatch):
    """A row that fails at confirm time takes the rows before it back too."""
    response = dry_run(client, "tag", CSV, b"name\nsea\nsky\n")
    monkeypatch.setattr(resources.TagResource, "row_problems", lambda self, row, by_column: (
        {"name": "taken meanwhile"} if row["name"] == "sky" else {}))
    form = response.context["confirm_form"]
    done = client.post(reverse("admin:factory_tag_process_import"), {
        name: form.initial[name]
        for name in ("import_file_name", "original_file_name", "format", "resource")
    })
    assert done.status_code == 200 and b"Nothing was imported" in done.content
    assert b"taken meanwhile" in done.content
    assert not Tag.objects.filter(name__in=["sea", "sky"]).exists()


# ---------------------------------------------------------------- permissions
@pytest.mark.django_db
def test_export_needs_view_and_import_needs_add_and_change(catalog, viewer, operator):
    viewing, operating = Client(), Client()
    viewing.force_login(viewer)
    operating.force_login(operator)
    assert viewing.get(reverse("admin:factory_tag_export")).status_code == 200
    assert viewing.get(reverse("admin:factory_tag_import")).status_code == 403
    assert operating.get(reverse("admin:factory_tag_import")).status_code == 200
    assert operating.get(reverse("admin:factory_product_import")).status_code == 200
    assert operating.get(reverse("admin:factory_factorymachine_import")).status_code == 403
    assert operating.get(reverse("admin:factory_factorymachine_export")).status_code == 200
    page = viewing.get(reverse("admin:factory_tag_changelist"))
    assert b"/export/" in page.content and b"/import/" not in page.content


# ---------------------------------------------------------------- hostile files
MACHINE_HEADER = ("slug,provider,name,endpoint_id,version,modality,input_schema,defaults,"
                  "aliases,safety,output_key,price,description,concurrency_limit,is_active\n")


def _machine_row(catalog_row: dict, **changes) -> str:
    import csv

    row = {**catalog_row, **changes}
    out = io.StringIO()
    csv.writer(out).writerow([row[name] for name in MACHINE_HEADER.strip().split(",")])
    return out.getvalue()


@pytest.fixture
def machine_csv(catalog, client):
    """The demo image machine as a CSV row, renamed so it is new."""
    found = rows(export(client, "factorymachine", CSV, "?provider__id__exact="
                        f"{Provider.objects.get(slug='demo').pk}"), CSV)
    return {**next(row for row in found if row["slug"] == "demo-image"),
            "slug": "demo-copy"}


@pytest.mark.django_db
def test_a_machine_schema_is_checked_as_the_seed_files_are(machine_csv, client):
    bad_schema = _machine_row(machine_csv, input_schema='{"type": "object", "properties": {"w": {"type": "integr"}}}')
    errors = refused(client, "factorymachine", CSV, (MACHINE_HEADER + bad_schema).encode())
    assert "input schema is invalid at /properties/w/type" in errors
    bad_default = _machine_row(machine_csv, defaults='{"width": 5}')
    errors = refused(client, "factorymachine", CSV, (MACHINE_HEADER + bad_default).encode())
    assert "defaults do not validate" in errors and "'defaults'" in errors
    bad_price = _machine_row(machine_csv, price='{"amount": 0.1, "unit": "output"}')
    assert "price amount must be a string" in refused(
        client, "factorymachine", CSV, (MACHINE_HEADER + bad_price).encode())
    unknown = _machine_row(machine_csv, provider="nobody")
    assert "no provider has the slug 'nobody'" in refused(
        client, "factorymachine", CSV, (MACHINE_HEADER + unknown).encode())


@pytest.mark.django_db
def test_a_fixed_machine_row_imports(machine_csv, client):
    good = _machine_row(machine_csv)
    import_file(client, "factorymachine", CSV, (MACHINE_HEADER + good).encode())
    copy = FactoryMachine.objects.get(slug="demo-copy")
    assert copy.accepted_keys == FactoryMachine.objects.get(slug="demo-image").accepted_keys


WILDCARDS = "name,values,description\n"


@pytest.mark.django_db
@pytest.mark.parametrize("content, words", [
    (b"name,colour\nsea,blue\n", "Unknown columns ['colour']"),
    (b"name,name,values\nsea,sea,[]\n", "appears twice in the header"),
    (WILDCARDS.encode(), "has a header but no rows"),
    (b"", "The submitted file is empty"),
    (b"\n\n", "The file is empty"),
    (b"description\nx\n", "Missing columns ['name', 'values']"),
    ((WILDCARDS + "sea,[],x\nsea,[],y\n").encode(), "is also in row 1"),
    ((WILDCARDS + 'sea,"{""a"": NaN}",\n').encode(), "NaN is not a number JSON allows"),
    ((WILDCARDS + 'sea,"[Infinity]",\n').encode(), "Infinity is not a number"),
    ((WILDCARDS + 'sea,"[1, 2]",\n').encode(), "values must be a list of text"),
    ((WILDCARDS + 'sea,"{""a"": 1}",\n').encode(), "expected a JSON list, not dict"),
    ((WILDCARDS + 'sea,"[""a""",\n').encode(), "line 1, column"),
    ((WILDCARDS + "sea,[],a\x00b\n").encode(), "control character (U+0000)"),
    ((WILDCARDS + "sea,[],a\x1bb\n").encode(), "control character (U+001B)"),
    ((WILDCARDS + "sea,[]," + "x" * 200_000 + "\n").encode(), "longer than 131,072"),
    ((WILDCARDS + "sea,[],café\n").encode("latin-1"), "looks encoded as Latin-1"),
    ((WILDCARDS + "sea,[],x\n").encode("utf-16"), "encoded as UTF-16"),
    ((WILDCARDS + 'sea,[],"unclosed\n').encode(), "never closed"),
    ((WILDCARDS + 'sea,"' + "[" * 5000 + "]" * 5000 + '",\n').encode(), "nested deeper"),
    ((WILDCARDS + 'sea,"' + "[" * 40 + "]" * 40 + '",\n').encode(), "nested deeper"),
])
def test_hostile_csv_files_get_clear_errors_and_write_nothing(catalog, client, content, words):
    assert words in refused(client, "wildcard", CSV, content)


@pytest.mark.django_db
@pytest.mark.parametrize("content, words", [
    (b'[{"name": "sea", "values": [], "description": "' + b"x" * 200_000 + b'"}]',
     "200,000 characters"),
    (b'[{"name": "sea", "values": ["a"]}, {"name": "sea", "values": ["b"]}]',
     "is also in row 1"),
    (b'[{"name": "sea", "values": [NaN]}]', "NaN is not a number"),
    (b'[{"name": "sea", "name": "sky", "values": []}]', "appears twice"),
    (b'[{"name": "sea", "values": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]",
     "nested deeper"),
    (b'[\n  {"name": "sea",\n   "values": ["a"', "line 3, column"),
    (b'[{"name": "sea", "values": ["a\\u0000b"]}]', "U+0000"),
    (b'[{"name": "sea", "values": ["\\ud800"]}]', "lone surrogate"),
    (b'[{"name": 12, "values": ["a"], "description": ["x"]}]', "expected text, not list"),
])
def test_hostile_json_files_get_clear_errors_and_write_nothing(catalog, client, content, words):
    assert words in refused(client, "wildcard", JSON, content)


@pytest.mark.django_db
@pytest.mark.parametrize("cells, words", [
    ({"runs": "abc"}, "'abc' is not a whole number"),
    ({"runs": "1.5"}, "'1.5' is not a whole number"),
    ({"seed": "9" * 40}, "less than or equal to"),
    ({"seed": "9" * 5000}, "digits is too large"),
    ({"safety_checker": "maybe"}, "'maybe' is not true or false"),
    ({"prompt_mode": "sideways"}, "not a valid choice"),
    ({"machine": "nowhere"}, "no factory machine has the slug 'nowhere'"),
    ({"sweeps": '[{"x": 1}]'}, "sweeps"),
    ({"tokens": '{"a": "\\u0007"}'}, "U+0007"),
])
def test_wrong_types_and_huge_numbers_are_row_errors(catalog, client, cells, words):
    import csv

    row = {"name": "Harbour", "machine": "demo-image", "prompt": "a harbour",
           "runs": "1", "seed": "", "safety_checker": "false",
           "prompt_mode": "combinatorial", **cells}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(list(row))
    writer.writerow(list(row.values()))
    errors = refused(client, "template", CSV, out.getvalue().encode())
    assert words in errors


@pytest.mark.django_db
def test_hostile_xlsx_files_are_refused_before_unpacking(catalog, client):
    import zipfile

    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/workbook.xml", "<x/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * 5_000_000)
    assert "zip bomb" in refused(client, "tag", XLSX, bomb.getvalue())
    renamed = refused(client, "tag", XLSX, b"name\nsea\n", name="tags.xlsx")
    assert "not an XLSX workbook" in renamed and "choose the csv format" in renamed


@pytest.mark.django_db
def test_a_utf8_bom_csv_imports(catalog, client):
    import_file(client, "tag", CSV, "\ufeffname\nmer\n".encode("utf-8"))
    assert Tag.objects.filter(name="mer").exists()


@pytest.mark.django_db
@pytest.mark.once
def test_ten_thousand_rows_import_in_seconds(catalog, client):
    import time

    content = ("name\n" + "".join(f"tag-{n}\n" for n in range(10_000))).encode()
    started = time.monotonic()
    import_file(client, "tag", CSV, content)
    assert Tag.objects.count() == 10_000
    assert time.monotonic() - started < 40  # dry run, page and confirm


@pytest.mark.django_db
def test_a_dry_run_reads_a_bounded_number_of_queries(catalog, client, django_assert_max_num_queries):
    Tag.objects.bulk_create(Tag(name=f"old-{n}") for n in range(100))
    content = ("name\n" + "".join(f"old-{n}\nnew-{n}\n" for n in range(100))).encode()
    with django_assert_max_num_queries(25):
        response = dry_run(client, "tag", CSV, content)
    assert response.context["result"].totals == {
        "new": 100, "update": 0, "delete": 0, "skip": 100, "error": 0, "invalid": 0}

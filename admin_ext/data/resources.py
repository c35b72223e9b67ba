"""What moves in and out of the admin as CSV, XLSX or JSON, one resource per model.

Every import goes through ``DataResource``: the header is checked first
(unknown, missing or duplicate columns give one file-level error and touch
nothing), then every row: each cell for size, control characters, NaN and
nesting, the JSON columns parsed strictly, each value converted by a strict
widget, keys seen twice refused, then the model's own checks. A row's
errors name its columns, and any error rolls the whole import back.
"""
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db.models import Model, QuerySet
from django.utils import timezone
from import_export import fields, resources
from import_export.instance_loaders import ModelInstanceLoader
from import_export.results import Error, Result

from admin_ext.data.widgets import (
    BooleanCell, DecimalCell, IntegerCell, JSONCell, KeyCell, NamesCell, TextCell,
)
from factory import datafiles
from factory.datafiles import ABSENT, DataFileError
from factory.models import (
    FactoryMachine, Order, OrderStatus, Product, Project, Provider, SpendEntry, Tag,
    Template, Wildcard,
)
from factory.models.inventory import clean_favorite, clean_rating
from factory.ordering import plan_order
from factory.parameters.schema import ParameterError
from factory.parameters.sweeps import check_sweeps
from factory.seed_files import entry_fields, entry_problems


def column(name: str, widget: Any = None, attribute: str | None = "", **kwargs: Any) -> fields.Field:
    """A field whose column is its attribute unless told otherwise."""
    return fields.Field(
        attribute=name if attribute == "" else attribute, column_name=name,
        widget=widget or TextCell(), **kwargs,
    )


LOAD_CHUNK = 2000


class KeyLoader(ModelInstanceLoader):
    """Every row's existing instance from a few queries, by its key column,
    instead of one query per row; cells that are no key are left to the
    row checks."""

    def __init__(self, resource: "DataResource", dataset: Any = None) -> None:
        super().__init__(resource, dataset)
        (name,) = resource.get_import_id_fields()
        self.field = resource.fields[name]
        keys = [] if dataset is None or self.field.column_name not in (dataset.headers or []) \
            else list({_key(value) for value in dataset[self.field.column_name]} - {""})
        queryset = self.get_queryset()
        self.found: dict[str, Model] = {}
        for start in range(0, len(keys), LOAD_CHUNK):
            chunk = keys[start:start + LOAD_CHUNK]
            for instance in queryset.filter(**{f"{self.field.attribute}__in": chunk}):
                self.found[_key(getattr(instance, self.field.attribute))] = instance

    def get_instance(self, row: dict[str, Any]) -> Model | None:
        return self.found.get(_key(row.get(self.field.column_name)))


def _key(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


class Computed(fields.Field):
    """A column worked out from the instance, shown in exports and in the
    dry run's table alike (a ``dehydrate_`` method reaches only exports)."""

    def __init__(self, name: str, getter: Any, widget: Any) -> None:
        super().__init__(attribute=None, column_name=name, widget=widget)
        self.getter = getter

    def get_value(self, instance: Model) -> Any:
        return self.getter(instance)


class DataResource(resources.ModelResource):
    """The checks every import shares; subclasses declare their columns.

    Rows are written in batches (``use_bulk``) unless a resource saves
    many-to-many values or per-row hooks; every row is still checked one
    by one first, and key clashes are caught by the row checks, so the
    database's unique check is not asked again per row.
    """

    #: Whether an import may add rows (then it needs the add permission too).
    creates_rows = True
    #: Columns a file must have; the import id columns always are.
    required_columns: tuple[str, ...] = ()

    class Meta:
        skip_unchanged = True
        report_skipped = True
        clean_model_instances = True
        use_transactions = True
        use_bulk = True
        batch_size = 1000
        instance_loader_class = KeyLoader

    # ------------------------------------------------------------ file level
    def column_names(self) -> list[str]:
        return [field.column_name for field in self.get_export_fields()]

    def header_problem(self, headers: list[str]) -> str | None:
        """Why a file with these columns cannot be imported, or None."""
        known = self.column_names()
        unknown = [name for name in headers if name not in known]
        if unknown:
            return (f"Unknown columns {unknown}; the columns are {known}.")
        needed = [*self.get_import_id_fields(), *self.required_columns]
        missing = [name for name in dict.fromkeys(needed)
                   if name in known and name not in headers]
        if missing and not self.matches_without(missing, headers):
            return f"Missing columns {missing}; the columns are {known}."
        return None

    def matches_without(self, missing: list[str], headers: list[str]) -> bool:
        """Whether rows can still be matched without the missing columns."""
        return False

    def import_data(self, dataset, dry_run=False, raise_errors=False, **kwargs) -> Result:
        """Refuse a bad header before any row is read; otherwise import."""
        problem = self.header_problem(list(dataset.headers or []))
        if problem:
            result = self.get_result_class()()
            result.total_rows = len(dataset)
            result.append_base_error(Error(DataFileError(problem)))
            return result
        self._seen: dict[tuple, int] = {}
        return super().import_data(dataset, dry_run=dry_run, raise_errors=raise_errors,
                                   **kwargs)

    def validate_instance(self, instance, import_validation_errors=None, validate_unique=True):
        # Keys are unique by the loader and duplicate_problems; the model's
        # unique check would ask the database once more for every row.
        super().validate_instance(instance, import_validation_errors, validate_unique=False)

    def get_bulk_update_fields(self) -> list[str]:
        """The model fields an import writes, for bulk_update."""
        names = [field.attribute for name, field in self.fields.items()
                 if field.attribute and not field.readonly
                 and name not in self.get_import_id_fields()]
        if any(f.name == "updated_at" for f in self._meta.model._meta.fields):
            names.append("updated_at")
        return names

    def before_save_instance(self, instance: Model, row, **kwargs: Any) -> None:
        if hasattr(instance, "updated_at"):
            instance.updated_at = timezone.now()  # bulk_update skips auto_now

    # ------------------------------------------------------------ row level
    def before_import_row(self, row: dict[str, Any], **kwargs: Any) -> None:
        """Check every cell and value of the row; raise its errors by column."""
        for name in [name for name, value in row.items() if value is ABSENT]:
            del row[name]  # a JSON entry left it out: the field is not touched
        errors: dict[str, str] = {}
        for name, value in row.items():
            problem = datafiles.cell_problem(value, name)
            if problem:
                errors[name] = problem
        by_column = {field.column_name: field for field in self.get_import_fields()}
        parsed: dict[str, Any] = {}
        for name, field in by_column.items():
            if name in errors or name not in row or field.readonly:
                continue
            try:
                value = field.clean(row)
            except ValueError as exc:
                errors[name] = str(exc)
            else:
                if isinstance(field.widget, JSONCell):
                    parsed[name] = value
        if not errors:
            errors.update(self.duplicate_problems(row, kwargs.get("row_number", 0)))
        if not errors:
            # JSON text is parsed once; a failing row keeps the file's text.
            original = {name: row[name] for name in parsed}
            row.update(parsed)
            errors.update(self.row_problems(row, by_column))
            if errors:
                row.update(original)
        if errors:
            raise ValidationError({name: [message] for name, message in errors.items()})

    def duplicate_problems(self, row: dict[str, Any], number: int) -> dict[str, str]:
        """A key already used by an earlier row of the same file."""
        names = [name for name in self.get_import_id_fields() if name in row]
        key = tuple(str(row[name]).strip() for name in names)
        if not names or not any(key):
            return {}
        first = self._seen.setdefault(key, number)
        if first == number:
            return {}
        shown = ", ".join(f"{name} {value!r}" for name, value in zip(names, key))
        return {names[0]: f"{shown} is also in row {first}; each row needs its own"}

    def row_problems(self, row: dict[str, Any], by_column: dict) -> dict[str, str]:
        """Checks of a whole row, once every cell is sound; per model."""
        return {}

    def cleaned(self, row: dict[str, Any], by_column: dict) -> dict[str, Any]:
        """The row's values as the widgets convert them."""
        return {name: by_column[name].clean(row) for name in row if name in by_column}

    def export(self, queryset: QuerySet | None = None, **kwargs: Any):
        dataset = super().export(queryset, **kwargs)
        dataset.title = self._meta.model._meta.verbose_name_plural.title()
        return dataset


def located(problems: list[str], columns: list[str]) -> dict[str, str]:
    """Problems keyed by the column each one is about, as far as it says."""
    found: dict[str, list[str]] = {}
    for problem in problems:
        found.setdefault(_column_of(problem, columns), []).append(problem)
    return {name: "; ".join(messages) for name, messages in found.items()}


_PREFIXES = {"alias": "aliases", "unknown provider": "provider"}


def _column_of(problem: str, columns: list[str]) -> str:
    for prefix, name in _PREFIXES.items():
        if problem.startswith(prefix) and name in columns:
            return name
    for name in sorted(columns, key=len, reverse=True):
        if problem.startswith((name, name.replace("_", " "))) or f"'{name}'" in problem:
            return name
    return NON_FIELD_ERRORS


# ---------------------------------------------------------------- catalog
class ProviderResource(DataResource):
    """A provider's limits and flags; keys live in the environment, never here."""

    slug = column("slug")
    name = column("name")
    concurrency_limit = column("concurrency_limit", IntegerCell())
    is_active = column("is_active", BooleanCell())
    description = column("description")
    required_columns = ("name",)

    class Meta:
        model = Provider
        import_id_fields = ["slug"]
        fields = ["slug", "name", "concurrency_limit", "is_active", "description"]

    def row_problems(self, row, by_column):
        """The seed files' own checks of a provider entry."""
        return located(entry_problems("provider", self.cleaned(row, by_column), ()),
                       list(row))


PRICE_FIELDS = ("price_amount", "price_unit", "price_currency", "price_source",
                "typical_run_seconds")


def price_of(machine: FactoryMachine) -> dict[str, str]:
    """A machine's price as the seed files write it, amount as exact text."""
    price = {"amount": f"{machine.price_amount.normalize():f}",
             "unit": machine.price_unit, "currency": machine.price_currency}
    if machine.price_source:
        price["source"] = machine.price_source
    if machine.typical_run_seconds is not None:
        price["typical_seconds"] = f"{machine.typical_run_seconds.normalize():f}"
    return price


class MachineResource(DataResource):
    """A machine in the seed files' shape: ``machines/*.json`` entries are rows."""

    slug = column("slug")
    provider = column("provider", KeyCell(Provider, "slug"))
    name = column("name")
    endpoint_id = column("endpoint_id")
    version = column("version")
    modality = column("modality")
    input_schema = column("input_schema", JSONCell(dict))
    defaults = column("defaults", JSONCell(dict))
    aliases = column("aliases", JSONCell(dict))
    safety = column("safety", JSONCell(dict))
    output_key = column("output_key")
    price = Computed("price", price_of, JSONCell(dict))
    description = column("description")
    concurrency_limit = column("concurrency_limit", IntegerCell())
    is_active = column("is_active", BooleanCell())
    required_columns = ("provider", "name", "endpoint_id", "modality",
                        "input_schema", "price")

    class Meta:
        model = FactoryMachine
        import_id_fields = ["slug"]
        fields = ["slug", "provider", "name", "endpoint_id", "version", "modality",
                  "input_schema", "defaults", "aliases", "safety", "output_key",
                  "price", "description", "concurrency_limit", "is_active"]

    def get_queryset(self) -> QuerySet:
        return super().get_queryset().select_related("provider")

    def filter_export(self, queryset, **kwargs):
        return queryset.select_related("provider")

    def get_bulk_update_fields(self) -> list[str]:
        return [*super().get_bulk_update_fields(), *PRICE_FIELDS]

    def row_problems(self, row, by_column):
        """The seed files' checks: schema against the meta-schema, defaults
        against the schema, aliases, safety switch and price."""
        entry = self.cleaned(row, by_column)
        providers = [row["provider"]] if "provider" in row else []
        entry["provider"] = row.get("provider")
        return located(entry_problems("machine", entry, providers), list(row))

    def import_instance(self, instance: FactoryMachine, row, **kwargs) -> None:
        super().import_instance(instance, row, **kwargs)
        price = self.fields["price"].clean(row) if "price" in row else None
        if price:
            for name, value in entry_fields({"price": price}).items():
                setattr(instance, name, value)

    def skip_row(self, instance, original, row, import_validation_errors=None) -> bool:
        same_price = original.pk is None or price_of(instance) == price_of(original)
        return same_price and super().skip_row(
            instance, original, row, import_validation_errors)


# ---------------------------------------------------------------- recipes
RECIPE_COLUMNS = [
    "prompt", "prompt_mode", "prompt_samples", "tokens", "base_parameters",
    "required_parameters", "sweeps", "runs", "seed_strategy", "seed",
    "safety_checker",
]


class RecipeColumns(DataResource):
    """The columns a template and an order share."""

    machine = column("machine", KeyCell(FactoryMachine, "slug"))
    prompt = column("prompt")
    prompt_mode = column("prompt_mode")
    prompt_samples = column("prompt_samples", IntegerCell())
    tokens = column("tokens", JSONCell(dict))
    base_parameters = column("base_parameters", JSONCell(dict))
    required_parameters = column("required_parameters", JSONCell(list))
    sweeps = column("sweeps", JSONCell(list))
    runs = column("runs", IntegerCell())
    seed_strategy = column("seed_strategy")
    seed = column("seed", IntegerCell())
    safety_checker = column("safety_checker", BooleanCell())

    def get_queryset(self) -> QuerySet:
        return super().get_queryset().select_related("machine")

    def filter_export(self, queryset, **kwargs):
        return queryset.select_related("machine")

    def row_problems(self, row, by_column):
        if "sweeps" in row:
            try:
                check_sweeps(by_column["sweeps"].clean(row))
            except ParameterError as exc:
                return {"sweeps": str(exc)}
        return {}


class TemplateResource(RecipeColumns):
    name = column("name")
    description = column("description")
    required_columns = ("machine",)

    class Meta:
        model = Template
        import_id_fields = ["name"]
        fields = ["name", "description", "machine", *RECIPE_COLUMNS]


class WildcardResource(DataResource):
    name = column("name")
    values = column("values", JSONCell(list))
    description = column("description")
    required_columns = ("values",)

    class Meta:
        model = Wildcard
        import_id_fields = ["name"]
        fields = ["name", "values", "description"]

    def row_problems(self, row, by_column):
        values = by_column["values"].clean(row) if "values" in row else []
        if not all(isinstance(v, str) for v in values):
            return {"values": "values must be a list of text fragments"}
        return {}


class OrderResource(RecipeColumns):
    """An order's recipe; an import always adds drafts, never places one."""

    id = column("id", IntegerCell(), readonly=True)
    title = column("title")
    project = column("project", KeyCell(Project, "name"))
    template = column("template", KeyCell(Template, "name"))
    required_columns = ("machine",)

    class Meta:
        model = Order
        import_id_fields = ["id"]
        fields = ["id", "title", "machine", "project", "template", *RECIPE_COLUMNS]
        use_bulk = False  # each draft is planned, counted and priced
        instance_loader_class = ModelInstanceLoader

    def filter_export(self, queryset, **kwargs):
        return queryset.select_related("machine", "project", "template")

    def get_or_init_instance(self, instance_loader, row):
        return self.init_instance(row), True

    def duplicate_problems(self, row, number):
        return {}  # every row is a new draft

    def before_save_instance(self, instance: Order, row, **kwargs) -> None:
        """A draft, written by the importing user, counted and priced like
        one saved from the order form."""
        instance.status = OrderStatus.DRAFT
        user = kwargs.get("user")
        instance.created_by = user if user is not None and user.pk else None
        try:
            plan = plan_order(instance)
        except (ParameterError, ValidationError) as exc:
            messages = exc.messages if isinstance(exc, ValidationError) else [str(exc)]
            raise ValidationError({NON_FIELD_ERRORS: messages}) from None
        instance.item_count, instance.estimated_cost = plan.count, plan.estimated_cost


# ---------------------------------------------------------------- projects
class ProjectResource(DataResource):
    name = column("name")
    description = column("description")
    budget = column("budget", DecimalCell())
    is_archived = column("is_archived", BooleanCell())

    class Meta:
        model = Project
        import_id_fields = ["name"]
        fields = ["name", "description", "budget", "is_archived"]


class TagResource(DataResource):
    name = column("name")

    class Meta:
        model = Tag
        import_id_fields = ["name"]
        fields = ["name"]


# ---------------------------------------------------------------- products
class RatingCell(IntegerCell):
    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> int | None:
        try:
            return clean_rating(value)
        except ValidationError as exc:
            raise ValueError(" ".join(exc.messages)) from None


class FavoriteCell(BooleanCell):
    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> bool:
        try:
            return clean_favorite(value)
        except ValidationError as exc:
            raise ValueError(" ".join(exc.messages)) from None


PRODUCT_COLUMNS = [
    "id", "content_hash", "file_url", "machine", "order", "prompt", "seed",
    "parameters", "rating", "favorite", "tags", "project", "notes",
]


class ProductResource(DataResource):
    """A product's metadata out; only its curation (rating, favorite, tags,
    project, notes) back in, matched by id or content hash."""

    creates_rows = False
    id = column("id", IntegerCell(), readonly=True)
    content_hash = column("content_hash", attribute="media__content_hash", readonly=True)
    file_url = Computed("file_url", lambda product: product.media.file.url
                        if product.media.file else "", TextCell())
    machine = column("machine", attribute="machine__slug", readonly=True)
    order = column("order", IntegerCell(), attribute="item__order_id", readonly=True)
    prompt = column("prompt", readonly=True)
    seed = column("seed", IntegerCell(), readonly=True)
    parameters = column("parameters", JSONCell(dict), readonly=True)
    rating = column("rating", RatingCell())
    favorite = column("favorite", FavoriteCell(), attribute="is_favorite")
    tags = column("tags", NamesCell(Tag, field="name"))
    project = column("project", KeyCell(Project, "name"))
    notes = column("notes")

    class Meta:
        model = Product
        import_id_fields = ["id"]
        fields = PRODUCT_COLUMNS
        clean_model_instances = False  # only curation changes; each is checked
        use_bulk = False  # tags are many-to-many
        instance_loader_class = ModelInstanceLoader

    def matches_without(self, missing, headers):
        return missing == ["id"] and "content_hash" in headers

    def filter_export(self, queryset, **kwargs):
        return queryset.select_related(
            "media", "machine", "project", "item"
        ).prefetch_related("tags")

    def duplicate_problems(self, row, number):
        names = ["id"] if str(row.get("id") or "").strip() else ["content_hash"]
        key = tuple(str(row.get(name) or "").strip() for name in names)
        if not any(key):
            return {"id": "give the product's id or content_hash"}
        first = self._seen.setdefault((names[0], *key), number)
        if first == number:
            return {}
        return {names[0]: f"{names[0]} {key[0]!r} is also in row {first}; "
                          "each product needs one row"}

    def get_or_init_instance(self, instance_loader, row):
        """The product the row names; an import never adds one."""
        products = Product.objects.select_related("media")
        ident = str(row.get("id") or "").strip()
        if ident:
            product = products.filter(pk=int(ident)).first()
            if product is None:
                raise ValidationError({"id": [f"no product has the id {ident}"]})
            return product, False
        digest = str(row.get("content_hash") or "").strip()
        found = list(products.filter(media__content_hash=digest)[:2])
        if not found:
            raise ValidationError({"content_hash": [f"no product has the content hash {digest[:70]!r}"]})
        if len(found) > 1:
            raise ValidationError({"content_hash": [
                "several products share this content hash; give the id"]})
        return found[0], False


# ------------------------------------------------------------------- spend
class SpendEntryResource(DataResource):
    """The ledger out, one row per entry; nothing comes back in."""

    creates_rows = False
    id = column("id", IntegerCell(), readonly=True)
    time = column("time", attribute="created_at", readonly=True)
    source = column("source", readonly=True)
    project = column("project", attribute="project__name", readonly=True)
    order = column("order", IntegerCell(), attribute="order_id", readonly=True)
    item = column("item", IntegerCell(), attribute="item_id", readonly=True)
    machine = column("machine", attribute="machine__slug", readonly=True)
    provider = column("provider", attribute="provider__slug", readonly=True)
    user = column("user", attribute="user__username", readonly=True)
    request_id = column("request_id", readonly=True)
    units = column("units", DecimalCell(), readonly=True)
    unit = column("unit", readonly=True)
    unit_price = column("unit_price", DecimalCell(), readonly=True)
    amount = column("amount", DecimalCell(), readonly=True)
    currency = column("currency", readonly=True)
    note = column("note", readonly=True)

    class Meta:
        model = SpendEntry
        import_id_fields = ["id"]
        fields = ["id", "time", "source", "project", "order", "item", "machine",
                  "provider", "user", "request_id", "units", "unit", "unit_price",
                  "amount", "currency", "note"]

    def filter_export(self, queryset, **kwargs):
        return queryset.select_related("project", "machine", "provider", "user")

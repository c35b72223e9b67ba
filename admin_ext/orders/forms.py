"""The order form: the machine's own parameters, every refusal located.

Saving a draft plans it with the same code that places it, so a saved
draft is one that can be placed, and the preview shows the same messages.
"""
import json
import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.db.models import Q
from django.forms.fields import InvalidJSONInput, JSONString
from django.urls import reverse
from django_jsonform.forms.fields import JSONFormField
from django_jsonform.widgets import JSONFormWidget
from unfold.widgets import UnfoldAdminIntegerFieldWidget, UnfoldAdminTextareaWidget

from admin_ext.orders import parameters
from admin_ext.orders.editors import EDITED_FIELDS, editor_widgets
from factory.models import FactoryMachine, Order
from factory.models.orders import SEED_LIMIT
from factory.ordering import MAX_COUNT, OrderPlan, plan_order
from factory.parameters.prompts import MAX_PROMPT_CHARS
from factory.parameters.schema import (
    MAX_JSON_DEPTH, ParameterError, check_plain_json, check_text,
)

MAX_JSON_CHARS = 200_000
_SURROGATE = re.compile("[\ud800-\udfff]")
JSON_FIELDS = ("base_parameters", "sweeps", "tokens", "required_parameters")
TEXT_FIELDS = ("title", "prompt")
COUNT_FIELDS = ("runs", "prompt_samples", "item_ceiling")
# Where an engine message belongs, by how it starts.
_PREFIXES = (
    ("sweeps", "sweeps"), ("tokens", "tokens"), ("required_parameters",
    "required_parameters"), ("base_parameters", "base_parameters"),
    ("prompt", "prompt"), ("runs", "runs"), ("this order expands", "runs"),
    ("estimated cost", "project"), ("machine", "machine"),
)


def _nesting(text: str) -> int:
    """The deepest bracket nesting of JSON text, strings skipped."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            escaped = not escaped and char == "\\"
            in_string = escaped or char != '"'
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows; use a finite number")


def load_json(text: str, where: str) -> Any:
    """Parse JSON typed by a user; every refusal is a ValidationError."""
    if len(text) > MAX_JSON_CHARS:
        raise ValidationError(
            f"{len(text):,} characters of JSON is over the {MAX_JSON_CHARS:,} allowed.")
    if _nesting(text) > MAX_JSON_DEPTH:
        raise ValidationError(f"Nested deeper than {MAX_JSON_DEPTH} levels.")
    try:
        value = json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"Not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
        ) from None
    except ValueError as exc:
        raise ValidationError(f"{str(exc)[:1].upper()}{str(exc)[1:]}.") from None
    try:
        check_plain_json(value, where)
    except ParameterError as exc:
        raise ValidationError(str(exc)) from None
    return value


class SafeJSONMixin:
    """A JSON form field that refuses hostile input with a message."""

    expected: type = object
    where = "value"

    def to_python(self, value: Any) -> Any:
        if self.disabled:
            return value
        if value in self.empty_values:
            return None
        if isinstance(value, (list, dict, int, float, JSONString)):
            converted = value
        else:
            converted = load_json(value, self.where)
        if not isinstance(converted, self.expected):
            kind = {dict: "an object {…}", list: "a list […]"}[self.expected]
            raise ValidationError(f"Expected {kind}.")
        return JSONString(converted) if isinstance(converted, str) else converted

    def bound_data(self, data: Any, initial: Any) -> Any:
        if self.disabled:
            return initial
        if data is None:
            return None
        try:
            return load_json(data, "")
        except ValidationError:
            return InvalidJSONInput(data)

    def prepare_value(self, value: Any) -> Any:
        text = super().prepare_value(value)
        if isinstance(text, str) and _SURROGATE.search(text):
            # Stored before such text was refused: show it escaped, so the
            # page still opens and saving names the problem.
            return json.dumps(value)
        return text

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            return super().has_changed(initial, data)
        except (ValueError, RecursionError):
            return True


class SafeJSONField(SafeJSONMixin, forms.JSONField):
    def __init__(self, *, expected: type = object, **kwargs: Any) -> None:
        self.expected = expected
        kwargs.setdefault("widget", UnfoldAdminTextareaWidget(attrs={"rows": 3}))
        super().__init__(**kwargs)


class ParametersField(SafeJSONMixin, JSONFormField):
    """The machine's parameter form, drawn from its JSON Schema.

    Values are checked by planning the order, which names item and key, so
    jsonform's own validator (which wants every key present) is skipped.
    """

    expected = dict

    def validate(self, value: Any) -> None:
        forms.JSONField.validate(self, value)


class ParametersWidget(JSONFormWidget):
    """jsonform's editor in a box that says which machine it belongs to."""

    template_name = "admin_ext/orders/widgets/parameters.html"

    def __init__(self, machine: FactoryMachine | None, dropped: list[str]) -> None:
        schema = parameters.form_schema(machine) if machine else {
            "type": "object", "properties": {}}
        super().__init__(schema=schema)
        self.machine = machine
        self.dropped = dropped

    def get_context(self, name: str, value: Any, attrs: Any) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        context.update(machine=self.machine, dropped=self.dropped)
        return context


class OrderForm(forms.ModelForm):
    """Every order field, with the machine's own parameter form."""

    machine_for_parameters: FactoryMachine | None = None
    dropped_keys: list[str] = []

    seed = forms.IntegerField(
        required=False, min_value=0, max_value=SEED_LIMIT - 1,
        widget=UnfoldAdminIntegerFieldWidget,
        help_text="The seed of a fixed strategy, or the first of a counting one.",
    )
    seed_base = forms.IntegerField(
        required=False, min_value=0, max_value=SEED_LIMIT - 1,
        widget=forms.HiddenInput,
    )
    base_parameters = ParametersField(required=False, label="Parameters", initial=dict)
    sweeps = SafeJSONField(required=False, expected=list, initial=list)
    tokens = SafeJSONField(required=False, expected=dict, initial=dict)
    required_parameters = SafeJSONField(required=False, expected=list, initial=list)

    class Meta:
        model = Order
        fields = "__all__"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.plan: OrderPlan | None = None
        self.plan_error = ""
        machine = self.machine_for_parameters
        if "base_parameters" in self.fields:
            self.fields["base_parameters"].widget = ParametersWidget(
                machine, self.dropped_keys)
            if machine is not None:
                self.initial["base_parameters"] = parameters.form_values(
                    machine, self.instance.base_parameters or {})
        if "machine" in self.fields:
            self._offer_machines()
        if any(name in self.fields for name in EDITED_FIELDS):
            for name, widget in editor_widgets(machine).items():
                if name in self.fields:
                    self.fields[name].widget = widget
        if "seed_base" in self.fields:
            self.fields["seed_base"].initial = self.instance.seed_base
        for name in COUNT_FIELDS:
            if name in self.fields:  # the same bound on SQLite as on PostgreSQL
                self.fields[name].max_value = MAX_COUNT
                self.fields[name].validators.append(MaxValueValidator(MAX_COUNT))
                self.fields[name].widget.attrs["max"] = MAX_COUNT
        for name in TEXT_FIELDS:
            if not self.is_bound and isinstance(self.initial.get(name), str):
                self.initial[name] = _SURROGATE.sub("\ufffd", self.initial[name])
        for name, field in self.fields.items():
            if name in JSON_FIELDS:
                field.where = name
            if name in JSON_FIELDS and name != "base_parameters":
                field.help_text = Order._meta.get_field(name).help_text

    def _offer_machines(self) -> None:
        """Active machines only; choosing one re-draws the parameter form."""
        field = self.fields["machine"]
        current = self.instance.machine_id if self.instance.pk else None
        field.queryset = FactoryMachine.objects.select_related("provider").filter(
            Q(is_active=True, provider__is_active=True) | Q(pk=current))
        select = getattr(field.widget, "widget", field.widget)
        url = (reverse("admin:factory_order_switch_machine_change", args=[self.instance.pk])
               if self.instance.pk else reverse("admin:factory_order_switch_machine"))
        select.attrs.update({
            "hx-post": url, "hx-trigger": "change", "hx-target": "#order-parameters",
            "hx-swap": "outerHTML",
        })

    def _clean_text(self, name: str) -> str:
        value = self.cleaned_data.get(name) or ""
        try:
            check_text(value, name)
        except ParameterError as exc:
            raise ValidationError(str(exc)) from None
        return value

    def clean_title(self) -> str:
        return self._clean_text("title")

    def clean_prompt(self) -> str:
        value = self._clean_text("prompt")
        if len(value) > MAX_PROMPT_CHARS:
            raise ValidationError(
                f"The prompt has {len(value):,} characters; at most "
                f"{MAX_PROMPT_CHARS:,} are allowed.")
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for name, field in self.fields.items():
            if field.widget.is_hidden and name in self.errors:
                # The page shows no hidden field's own errors: say it here.
                self.add_error(None, f"{name}: {' '.join(self.errors[name])}")
        for name, empty in (("base_parameters", dict), ("sweeps", list),
                            ("tokens", dict), ("required_parameters", list)):
            if name in self.fields and cleaned.get(name) is None and name not in self.errors:
                cleaned[name] = empty()
        machine = cleaned.get("machine")
        values = cleaned.get("base_parameters")
        if machine is not None and isinstance(values, dict):
            lacking = [k for k in values if k in parameters.OWN_FIELDS]
            if lacking:
                self.add_error("base_parameters", (
                    f"{', '.join(lacking)} has a field of its own on the order; "
                    "set it there."))
            else:
                cleaned["base_parameters"] = parameters.overrides(machine, values)
        return cleaned

    def _post_clean(self) -> None:
        super()._post_clean()
        if not self.instance.pk and self.cleaned_data.get("seed_base") is not None:
            self.instance.seed_base = self.cleaned_data["seed_base"]
        if self.errors or getattr(self.instance, "machine_id", None) is None:
            return
        try:
            self.plan = plan_order(self.instance)
        except ParameterError as exc:
            self.plan_error = str(exc)
            if "'prompt' is a required property" in self.plan_error:
                self.plan_error = (
                    f"{self.instance.machine.name} needs a prompt: write one.")
            self.add_error(self._field_of(self.plan_error), self.plan_error)

    def _field_of(self, message: str) -> str | None:
        """The form field an engine message is about, if it is shown."""
        if message.endswith("needs a prompt: write one."):
            return "prompt"
        body = message.split(": ", 1)[1] if message.startswith("item ") else message
        if message.startswith("item ") and body.startswith("/"):
            key = body[1:].split("/", 1)[0].split(":", 1)[0]
            swept = {e.get("field") for g in self.instance.sweeps for e in g}
            body = "sweeps" if key in swept else (
                "prompt" if key == "prompt" else "base_parameters")
        for prefix, name in _PREFIXES:
            if body.startswith(prefix) and name in self.fields:
                return name
        if message.startswith("item ") and "base_parameters" in self.fields:
            return "base_parameters"
        return None

"""Cell converters for imports: strict, with a message fit to show per cell.

import-export's own widgets turn "maybe" into False and "abc" into a
decimal.InvalidOperation; these raise ValueError with the reason, which the
resource shows against the column. Exports hand native values to the
formats (admin_ext/data/formats.py), which write them per file type.
"""
from decimal import Decimal, InvalidOperation
import json
import re
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db.models import Model
from import_export import widgets

from factory.datafiles import MAX_INTEGER_DIGITS, DataFileError, cell_problem, parse_json
from factory.models.inventory import FAVORITE_WORDS

_WHOLE = re.compile(r"-?\d+")


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _shown(value: Any, kwargs: dict[str, Any]) -> Any:
    """Native for the export formats; words for the dry run's table."""
    if kwargs.get("force_native_type"):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


class TextCell(widgets.CharWidget):
    """Text; a number typed into a spreadsheet cell is read as its digits."""

    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> str:
        if _blank(value):
            return ""
        if isinstance(value, (dict, list, bool)):
            raise ValueError(f"expected text, not {type(value).__name__}")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return str(value)

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> str:
        return "" if value is None else str(value)


class IntegerCell(widgets.IntegerWidget):
    """A whole number, or None when blank; ranges are the model's to check."""

    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> int | None:
        if _blank(value):
            return None
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not a whole number")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        text = str(value).strip()
        if not _WHOLE.fullmatch(text):
            raise ValueError(f"{text[:40]!r} is not a whole number")
        if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
            raise ValueError(f"a number of {len(text.lstrip('-')):,} digits is too large")
        return int(text)

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> Any:
        return _shown(value, kwargs)


class DecimalCell(widgets.DecimalWidget):
    """An exact decimal, or None when blank."""

    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> Decimal | None:
        if _blank(value):
            return None
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not a number")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(f"{str(value)[:40]!r} is not a number") from None
        if not number.is_finite():
            raise ValueError(f"{value!r} is not a finite number")
        return number

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> Any:
        return _shown(value, kwargs)


class BooleanCell(widgets.BooleanWidget):
    """true or false (also 1/0, on/off); blank is refused, not read as false."""

    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        flag = FAVORITE_WORDS.get(str(value).strip().lower())
        if flag is None:
            raise ValueError(f"{str(value)[:40]!r} is not true or false")
        return flag

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> Any:
        return _shown(value, kwargs)


class JSONCell(widgets.Widget):
    """A JSON value: native in a JSON file, JSON text in a spreadsheet cell,
    read as strictly as a whole JSON file."""

    def __init__(self, kind: type = dict) -> None:
        super().__init__()
        self.kind = kind

    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> Any:
        if _blank(value):
            return self.kind()
        if isinstance(value, str):
            try:
                value = parse_json(value, where="The cell's JSON")
            except DataFileError as exc:
                raise ValueError(str(exc)) from None
            problem = cell_problem(value, "")
            if problem:
                raise ValueError(problem)
        if not isinstance(value, self.kind):
            raise ValueError(f"expected a JSON {_KIND_NAMES[self.kind]}, "
                             f"not {type(value).__name__}")
        return value

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> Any:
        """Native for the export formats; JSON text for the dry run's diff."""
        if kwargs.get("force_native_type"):
            return value
        return json.dumps(value, ensure_ascii=False)


_KIND_NAMES = {dict: "object", list: "list"}


class KeyCell(widgets.ForeignKeyWidget):
    """A related row named by its slug or name; unknown names are refused."""

    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> Model | None:
        if _blank(value):
            return None
        try:
            return self.get_queryset(value, row, **kwargs).get(**{self.field: str(value).strip()})
        except ObjectDoesNotExist:
            raise ValueError(
                f"no {self.model._meta.verbose_name} has the {self.field} "
                f"{str(value)[:60]!r}"
            ) from None

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> Any:
        return None if value is None else getattr(value, self.field)


class NamesCell(widgets.ManyToManyWidget):
    """Comma-separated names; a name not yet in use is created."""

    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> list[Model]:
        if _blank(value):
            return []
        names = list(dict.fromkeys(
            name.strip() for name in str(value).split(self.separator) if name.strip()
        ))
        name_field = self.model._meta.get_field(self.field)
        for name in names:
            try:
                name_field.clean(name, None)
            except ValidationError as exc:
                raise ValueError(f"{name[:40]!r}: {' '.join(exc.messages)}") from None
        found = {getattr(obj, self.field): obj for obj in
                 self.model.objects.filter(**{f"{self.field}__in": names})}
        return [found.get(name) or self.model.objects.create(**{self.field: name})
                for name in names]

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> str:
        return self.separator.join(getattr(item, self.field) for item in value.all())

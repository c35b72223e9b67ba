"""Finding products by the parameters they were made with.

People search the inventory the way they wrote the call: ``seed=42``,
``guidance_scale>=3``, ``image_size.width=1024``, ``num_inference_steps
20..40``. ``parse_conditions`` turns such text into ``Condition`` objects
that filter a product queryset and label themselves for the filter chips.

Numbers compare as numbers on every database: SQLite's ``json_extract``
and PostgreSQL's ``jsonb`` order a string after any number, so a bare
``parameters__key__gte`` would let ``"abc"`` pass ``>= 3``. ``JSONNumber``
reads the value only when it is a JSON number. A key a product lacks
matches nothing.
"""
import json
import re
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db.models import F, FloatField, Func, Q, QuerySet
from django.db.models.lookups import (
    Exact, GreaterThan, GreaterThanOrEqual, LessThan, LessThanOrEqual,
)

SEPARATOR = ";"
SEED_KEY = "seed"
SEED_LIMIT = 2**63
OPERATORS = {"=": Exact, ">=": GreaterThanOrEqual, "<=": LessThanOrEqual,
             ">": GreaterThan, "<": LessThan}
SYMBOLS = {"=": "=", ">=": "≥", "<=": "≤", ">": ">", "<": "<"}
TYPED = {"≥": ">=", "≤": "<=", "==": "="}
WORDS = {"true": True, "false": False, "null": None}
KEY = r"[A-Za-z_][\w-]*(?:\.[\w-]+)*"
COMPARISON = re.compile(
    rf"^(?P<key>{KEY})\s*(?P<op>>=|<=|==|≥|≤|=|>|<)\s*(?P<value>.*)$", re.S
)
RANGE = re.compile(
    rf"^(?P<key>{KEY})(?:\s*=\s*|\s+)(?P<low>\S*?)\s*\.\.\s*(?P<high>\S*)$"
)
SYNTAX_HELP = ("Write key=value, key>=number (also <=, >, <) or key low..high, "
               "e.g. seed=42, guidance_scale>=3, num_inference_steps 20..40.")


class JSONNumber(Func):
    """The number at a path inside a JSON column; NULL when it is no number.

    Booleans, strings, objects and missing keys all read as NULL, so a
    comparison with them is never true.
    """

    output_field = FloatField()

    def __init__(self, column: str, path: tuple[str, ...]) -> None:
        super().__init__(F(column))
        self.path = path

    def as_sqlite(self, compiler, connection, **extra):
        column, params = compiler.compile(self.source_expressions[0])
        path = "$" + "".join(f".{json.dumps(key)}" for key in self.path)
        sql = (f"CASE WHEN json_type({column}, %s) IN ('integer', 'real') "
               f"THEN json_extract({column}, %s) END")
        return sql, (*params, path, *params, path)

    def as_postgresql(self, compiler, connection, **extra):
        column, params = compiler.compile(self.source_expressions[0])
        sql = (f"CASE WHEN jsonb_typeof({column} #> %s) = 'number' "
               f"THEN ({column} #>> %s)::double precision END")
        path = list(self.path)
        return sql, (*params, path, *params, path)


@dataclass(frozen=True)
class Condition:
    """One parsed expression: a parameter key compared with a value.

    ``op`` is one of ``OPERATORS`` or ``".."`` for an inclusive range,
    whose ``value`` is a (low, high) pair with either end possibly None.
    """

    key: str
    op: str
    value: object
    text: str

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.key.split("."))

    @property
    def label(self) -> str:
        """How the chip names it: ``guidance_scale ≥ 3``."""
        if self.op == "..":
            low, high = (_show(end) for end in self.value)
            if self.value[1] is None:
                return f"{self.key} ≥ {low}"
            if self.value[0] is None:
                return f"{self.key} ≤ {high}"
            return f"{self.key} {low}–{high}"
        return f"{self.key} {SYMBOLS[self.op]} {_show(self.value)}"

    def apply(self, queryset: QuerySet) -> QuerySet:
        """The products of ``queryset`` this condition holds for."""
        if self.op == "..":
            low, high = self.value
            for op, end in ((">=", low), ("<=", high)):
                if end is not None:
                    queryset = queryset.filter(self._compare(op, end))
            return queryset
        return queryset.filter(self._compare(self.op, self.value))

    def _compare(self, op: str, value: object):
        """A filter for one comparison, on the seed column for ``seed``."""
        if self.key == SEED_KEY:
            return _seed_comparison(op, value)
        if isinstance(value, Decimal):
            number = OPERATORS[op](JSONNumber("parameters", self.path), float(value))
            if op == "=":
                return Q(number) | Q(**{self._lookup(): str(value)})
            return number
        return Q(**{self._lookup(): value})

    def _lookup(self) -> str:
        """A JSON key path ending in ``exact``, so a key named like a lookup
        (``contains``, ``in``) still reads as a key."""
        return "__".join(("parameters", *self.path, "exact"))


def _show(value: object) -> str:
    """A value as the user would type it back."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return str(value)


def _seed_comparison(op: str, value: object) -> Q:
    """Seeds are a whole-number column: compare there, or match nothing."""
    if not isinstance(value, Decimal) or value != value.to_integral_value() \
            or abs(value) >= SEED_LIMIT:
        return Q(pk__in=[])
    lookup = {"=": "exact", ">=": "gte", "<=": "lte", ">": "gt", "<": "lt"}[op]
    return Q(**{f"seed__{lookup}": int(value)})


def _number(text: str) -> Decimal | None:
    """``text`` as a finite number, or None."""
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _value(text: str) -> object:
    """A typed value: number, true/false/null, a quoted or a bare string."""
    text = text.strip()
    number = _number(text)
    if number is not None:
        return number
    if text.lower() in WORDS:
        return WORDS[text.lower()]
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def parse_condition(text: str) -> Condition:
    """One expression; raises ValidationError saying what is wrong."""
    text = text.strip()
    found = RANGE.match(text) or COMPARISON.match(text)
    if not found:
        raise ValidationError(f"“{text}” is not a parameter expression. {SYNTAX_HELP}")
    if "__" in found["key"]:
        raise ValidationError(f"“{text}”: keys holding “__” cannot be searched.")
    if found.re is RANGE:
        return _range(found, text)
    op = TYPED.get(found["op"], found["op"])
    if not found["value"].strip():
        raise ValidationError(f"“{text}”: a value is missing after {found['op']}.")
    value = _value(found["value"])
    if op != "=" and not isinstance(value, Decimal):
        raise ValidationError(
            f"“{text}”: {found['op']} compares numbers; write a number after it.")
    return Condition(found["key"], op, value, text)


def _range(found: re.Match, text: str) -> Condition:
    """``key low..high``, either end left open but not both."""
    low, high = (_number(end) if end else None for end in (found["low"], found["high"]))
    if (found["low"] and low is None) or (found["high"] and high is None) \
            or (low is None and high is None):
        raise ValidationError(f"“{text}”: a range needs numbers, e.g. steps 20..40.")
    if low is not None and high is not None and low > high:
        raise ValidationError(f"“{text}”: the range starts above its end.")
    return Condition(found["key"], "..", (low, high), text)


def split_expressions(text: str) -> list[str]:
    """The non-blank expressions of a ``;``-separated text."""
    return [part.strip() for part in text.split(SEPARATOR) if part.strip()]


def parse_conditions(text: str) -> tuple[list[Condition], list[str]]:
    """Every expression of ``text``: the conditions and the error messages."""
    conditions, errors = [], []
    for part in split_expressions(text):
        try:
            conditions.append(parse_condition(part))
        except ValidationError as error:
            errors.extend(error.messages)
    return conditions, errors


def parameter_keys(parameter_sets: list[object], limit: int = 40) -> list[str]:
    """The dotted keys most of these parameter dicts hold, in name order.

    Nested objects give ``image_size.width``; lists are not walked. The
    ``limit`` most frequent keys are kept, then sorted, since PostgreSQL
    does not keep the order keys were written in.
    """
    counts: Counter[str] = Counter()

    def walk(value: object, prefix: str) -> None:
        if not isinstance(value, dict):
            return
        for key, inner in value.items():
            dotted = f"{prefix}{key}"
            if isinstance(inner, dict):
                walk(inner, dotted + ".")
            elif re.fullmatch(KEY, dotted):
                counts[dotted] += 1

    for parameters in parameter_sets:
        walk(parameters, "")
    return sorted(key for key, _ in counts.most_common(limit))

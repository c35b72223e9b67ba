"""Read uploaded CSV, JSON and XLSX files into checked tables, and keep
exported spreadsheet cells from running as formulas.

Everything here happens before a row reaches the database. A file that
cannot be read as a table at all raises ``DataFileError`` with a message
fit to show as it is (the line and column, the encoding found and the one
expected, the limit crossed); a readable file gives a ``Table`` whose cells
are then checked row by row with ``cell_problem``.
"""
import codecs
import csv
from dataclasses import dataclass, field
import io
import json
import math
import re
from typing import Any
import zipfile

from factory.parameters.schema import MAX_JSON_DEPTH, ParameterError, check_plain_json

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_ROWS = 50_000
MAX_COLUMNS = 100
MAX_CELL_CHARS = 100_000
MAX_INTEGER_DIGITS = 100
# An XLSX file is a zip of XML; these caps apply to the sizes its members
# declare, checked before anything is unpacked.
MAX_XLSX_UNPACKED_BYTES = 100 * 1024 * 1024
MAX_XLSX_MEMBERS = 200
MAX_XLSX_RATIO = 200
XLSX_RATIO_FLOOR_BYTES = 1024 * 1024  # small members may compress well

# OWASP CSV injection: a spreadsheet runs a cell that starts with one of
# these. A leading quote makes it text; quotes already there are doubled so
# that restoring is exact.
_FORMULA = re.compile(r"'*[=+\-@\t\r]")
_NEUTRALISED = re.compile(r"'+[=+\-@\t\r]")

EXPECTED_ENCODING = "UTF-8"


class DataFileError(ValueError):
    """A file that cannot be read as a table; the message says why and where."""


class _Absent:
    """A key a JSON entry left out, told apart from an explicit null."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()


@dataclass
class Table:
    """Column names and rows of cells, every row as long as the header."""

    headers: list[str]
    rows: list[list[Any]] = field(default_factory=list)


# ---------------------------------------------------------------- formulas
def neutralise(value: Any) -> Any:
    """Text a spreadsheet would run as a formula, made inert with a leading
    quote; numbers and other values pass unchanged."""
    if isinstance(value, str) and _FORMULA.match(value):
        return "'" + value
    return value


def restore(value: Any) -> Any:
    """Undo ``neutralise`` on an imported cell."""
    if isinstance(value, str) and _NEUTRALISED.match(value):
        return value[1:]
    return value


# ---------------------------------------------------------------- cells
def cell_problem(value: Any, column: str) -> str | None:
    """Why one cell cannot be imported, or None: too long, NaN or Infinity,
    control characters, lone surrogates or nesting too deep."""
    if isinstance(value, str) and len(value) > MAX_CELL_CHARS:
        return (f"{len(value):,} characters; a cell holds at most "
                f"{MAX_CELL_CHARS:,}")
    try:
        check_plain_json(value, column)
    except ParameterError as exc:
        return str(exc)
    return None


MAX_FILE_DEPTH = MAX_JSON_DEPTH + 2  # a list of rows of cells


def parse_json(text: str, where: str = "The JSON") -> Any:
    """JSON as the standard allows it: no NaN or Infinity, no key twice in
    one object, no integer of more than MAX_INTEGER_DIGITS digits, and no
    nesting deeper than MAX_FILE_DEPTH levels."""
    try:
        value = json.loads(
            text, parse_constant=_refuse_constant, parse_float=_finite_float,
            parse_int=_bounded_int, object_pairs_hook=_unique_keys,
        )
    except json.JSONDecodeError as exc:
        raise DataFileError(
            f"{where}: line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise DataFileError(
            f"{where}: nested deeper than {MAX_FILE_DEPTH} levels"
        ) from None
    except DataFileError as exc:
        raise DataFileError(f"{where}: {exc}") from None
    if _depth(value) > MAX_FILE_DEPTH:
        raise DataFileError(
            f"{where}: nested deeper than {MAX_FILE_DEPTH} levels"
        )
    return value


def _depth(value: Any) -> int:
    """How deeply lists and objects nest, counted without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in
                         (item.values() if isinstance(item, dict) else item))
    return deepest


def _refuse_constant(name: str) -> None:
    raise DataFileError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise DataFileError(f"{text} is too large a number")
    return number


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise DataFileError(
            f"an integer of {len(text.lstrip('-')):,} digits is too large"
        )
    return int(text)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise DataFileError(f"the key {key!r} appears twice in one object")
        found[key] = value
    return found


# ---------------------------------------------------------------- text files
def check_size(data: bytes) -> None:
    """Refuse an empty file or one over MAX_FILE_BYTES."""
    if not data.strip():
        raise DataFileError("The file is empty.")
    if len(data) > MAX_FILE_BYTES:
        raise DataFileError(
            f"The file is {len(data):,} bytes; the limit is {MAX_FILE_BYTES:,}."
        )


def decode_text(data: bytes) -> str:
    """UTF-8 text, with or without a byte-order mark; any other encoding is
    refused, naming the one found and the one expected."""
    check_size(data)
    for bom, name in ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
                      (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16")):
        if data.startswith(bom):
            raise DataFileError(
                f"The file is encoded as {name} (it starts with a {name} "
                f"byte-order mark); {EXPECTED_ENCODING} is expected. Save it as "
                f"{EXPECTED_ENCODING} and upload it again."
            )
    head = data[:2000]
    if head.count(0) * 4 >= len(head):
        raise DataFileError(
            "The file looks encoded as UTF-16 (every other byte is zero); "
            f"{EXPECTED_ENCODING} is expected. Save it as {EXPECTED_ENCODING} "
            "and upload it again."
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        found = ("Windows-1252" if any(0x80 <= b <= 0x9F for b in data)
                 else "Latin-1 (ISO-8859-1)")
        raise DataFileError(
            f"The file is not {EXPECTED_ENCODING}: byte 0x{data[exc.start]:02X} on "
            f"line {line} is not valid {EXPECTED_ENCODING}, and the file looks "
            f"encoded as {found}. Save it as {EXPECTED_ENCODING} and upload it "
            "again."
        ) from None


def read_csv(data: bytes) -> Table:
    """A CSV file's header and rows; quoted cells may hold commas and
    newlines, and every row must have as many cells as the header."""
    reader = csv.reader(io.StringIO(decode_text(data), newline=""), strict=True)
    lines: list[tuple[int, list[str]]] = []
    try:
        for cells in reader:
            if cells:
                lines.append((reader.line_num, cells))
            if len(lines) > MAX_ROWS + 1:
                raise DataFileError(f"The file has more than {MAX_ROWS:,} rows.")
    except csv.Error as exc:
        raise DataFileError(f"CSV line {reader.line_num}: {_csv_reason(exc)}.") from None
    if not lines:
        raise DataFileError("The file is empty.")
    table = Table(_headers([cell.strip() for cell in lines[0][1]]))
    for line, cells in lines[1:]:
        if len(cells) != len(table.headers):
            raise DataFileError(
                f"CSV line {line} has {len(cells)} cells; the header has "
                f"{len(table.headers)}."
            )
        table.rows.append([restore(cell) for cell in cells])
    return _with_rows(table)


def _csv_reason(exc: csv.Error) -> str:
    """The csv module's complaint in words a spreadsheet user knows."""
    text = str(exc)
    if "field larger than field limit" in text:
        return f"a cell is longer than {csv.field_size_limit():,} characters"
    if "unexpected end of data" in text or "EOF" in text:
        return "a quoted cell is never closed (unbalanced quotes)"
    if "expected after" in text:
        return f"a quote inside a cell must be doubled ({text})"
    return text


def read_json(data: bytes) -> Table:
    """A JSON list of objects, or one key holding it (``{"machines": [...]}``,
    the seed files' shape), as a table; a key an entry leaves out is ABSENT
    in its row."""
    entries = parse_json(decode_text(data))
    if (isinstance(entries, dict) and len(entries) == 1
            and isinstance(next(iter(entries.values())), list)):
        entries = next(iter(entries.values()))
    if not isinstance(entries, list):
        raise DataFileError(
            'The file must hold a list of objects, [{...}, ...], or one key '
            'holding that list, {"machines": [...]}.'
        )
    if len(entries) > MAX_ROWS:
        raise DataFileError(f"The file has more than {MAX_ROWS:,} entries.")
    headers: dict[str, None] = {}
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise DataFileError(f"Entry {number} is not an object.")
        headers.update(dict.fromkeys(entry))
    table = Table(_headers(list(headers)))
    table.rows = [[entry.get(name, ABSENT) for name in table.headers]
                  for entry in entries]
    return _with_rows(table)


# ---------------------------------------------------------------- XLSX
def check_xlsx(data: bytes) -> None:
    """Refuse what is not a workbook, or would unpack too large, from the
    sizes the zip's members declare, before anything is unpacked."""
    check_size(data)
    if not data.startswith(b"PK\x03\x04"):
        hint = ""
        try:
            data[:1000].decode("utf-8")
            hint = " It looks like text: if it is CSV, choose the csv format."
        except UnicodeDecodeError:
            pass
        raise DataFileError(
            "The file is not an XLSX workbook (an XLSX file is a zip archive "
            f"and this one is not).{hint}"
        )
    try:
        members = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError):
        raise DataFileError("The workbook is damaged: its zip archive cannot be read.") from None
    if len(members) > MAX_XLSX_MEMBERS:
        raise DataFileError(
            f"The workbook holds {len(members):,} files; at most "
            f"{MAX_XLSX_MEMBERS:,} are accepted."
        )
    unpacked = sum(member.file_size for member in members)
    if unpacked > MAX_XLSX_UNPACKED_BYTES:
        raise DataFileError(
            f"The workbook would unpack to {unpacked:,} bytes; the limit is "
            f"{MAX_XLSX_UNPACKED_BYTES:,}."
        )
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > XLSX_RATIO_FLOOR_BYTES and ratio > MAX_XLSX_RATIO:
            raise DataFileError(
                f"The workbook's {member.filename} is compressed {ratio:,.0f} to 1; "
                f"more than {MAX_XLSX_RATIO} to 1 is refused as a zip bomb."
            )
    if "xl/workbook.xml" not in {member.filename for member in members}:
        raise DataFileError("The file is a zip archive but not an XLSX workbook.")


def read_xlsx(data: bytes) -> Table:
    """The first sheet of a checked workbook as a table; formula cells give
    their cached values, never their formulas."""
    check_xlsx(data)
    import openpyxl  # only XLSX needs it

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        rows = _sheet_rows(book.worksheets[0])
    except DataFileError:
        raise
    except Exception as exc:  # openpyxl raises many kinds on a damaged workbook
        raise DataFileError(
            f"The workbook cannot be read ({type(exc).__name__}); save it again "
            "from a spreadsheet program as .xlsx."
        ) from None
    if not rows:
        raise DataFileError("The file is empty.")
    header = list(rows[0])
    while header and header[-1] is None:
        header.pop()
    table = Table(_headers([_header_text(cell) for cell in header]))
    width = len(table.headers)
    for number, cells in enumerate(rows[1:], 2):
        if any(cell is not None for cell in cells[width:]):
            raise DataFileError(f"Sheet row {number} has cells beyond the last named column.")
        cells = list(cells[:width]) + [None] * (width - len(cells))
        table.rows.append([restore(cell) for cell in cells])
    return _with_rows(table)


def _sheet_rows(sheet: Any) -> list[tuple]:
    """Non-blank rows of a sheet, refusing too many rows or columns."""
    rows = []
    for cells in sheet.iter_rows(values_only=True):
        if len(cells) > MAX_COLUMNS and any(c is not None for c in cells[MAX_COLUMNS:]):
            raise DataFileError(f"The sheet has more than {MAX_COLUMNS} columns.")
        if any(cell is not None and cell != "" for cell in cells):
            rows.append(cells[:MAX_COLUMNS])
        if len(rows) > MAX_ROWS + 1:
            raise DataFileError(f"The sheet has more than {MAX_ROWS:,} rows.")
    return rows


def _header_text(cell: Any) -> str:
    return "" if cell is None else str(cell).strip()


# ---------------------------------------------------------------- shared
def _headers(names: list[str]) -> list[str]:
    """Column names, refusing blank, duplicate or too many."""
    if len(names) > MAX_COLUMNS:
        raise DataFileError(f"The file has {len(names)} columns; at most {MAX_COLUMNS}.")
    seen: dict[str, int] = {}
    for number, name in enumerate(names, 1):
        if not name:
            raise DataFileError(f"Column {number} of the header has no name.")
        if name in seen:
            raise DataFileError(
                f"The column {name!r} appears twice in the header (columns "
                f"{seen[name]} and {number})."
            )
        seen[name] = number
    return names


def _with_rows(table: Table) -> Table:
    if not table.rows:
        raise DataFileError("The file has a header but no rows to import.")
    return table

"""The three file formats the admin imports and exports: CSV, XLSX, JSON.

Each reads raw bytes through ``factory.datafiles`` (size, encoding, zip and
structure checks) and writes the native values the resources export:
spreadsheets get JSON text for nested values and a leading quote on text
that would run as a formula; JSON stays exact.
"""
import csv
from decimal import Decimal
import io
import json
from typing import Any

from import_export.formats.base_formats import Format
import tablib

from factory import datafiles
from factory.datafiles import neutralise


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _spreadsheet_cell(value: Any) -> Any:
    """One exported value as a spreadsheet holds it."""
    if isinstance(value, (dict, list)):
        return _json_text(value)
    return neutralise(value)


class DataFormat(Format):
    """A format that reads bytes itself, whatever import-export would decode."""

    title = ""
    extension = ""
    content_type = "application/octet-stream"

    def __init__(self, encoding: str | None = None) -> None:
        # The bytes are decoded by factory.datafiles, which insists on UTF-8.
        self.encoding = encoding

    def get_title(self) -> str:
        return self.title

    def get_extension(self) -> str:
        return self.extension

    def get_content_type(self) -> str:
        return self.content_type

    def can_import(self) -> bool:
        return True

    def can_export(self) -> bool:
        return True

    def create_dataset(self, in_stream: bytes | str) -> tablib.Dataset:
        """The file as a Dataset; DataFileError says why it cannot be one."""
        if isinstance(in_stream, str):
            in_stream = in_stream.encode("utf-8")
        table = self.read(in_stream)
        return tablib.Dataset(*table.rows, headers=table.headers)

    def read(self, data: bytes) -> datafiles.Table:
        raise NotImplementedError


class CSVFormat(DataFormat):
    title, extension, content_type = "csv", "csv", "text/csv; charset=utf-8"

    def read(self, data: bytes) -> datafiles.Table:
        return datafiles.read_csv(data)

    def export_data(self, dataset: tablib.Dataset, **kwargs: Any) -> str:
        """UTF-8 with a byte-order mark, so spreadsheets pick the encoding."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(dataset.headers)
        for row in dataset:
            writer.writerow(["" if v is None else _csv_text(v) for v in row])
        return "\ufeff" + out.getvalue()


def _csv_text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _spreadsheet_cell(value)


class XLSXFormat(DataFormat):
    title, extension = "xlsx", "xlsx"
    content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

    def read(self, data: bytes) -> datafiles.Table:
        return datafiles.read_xlsx(data)

    def export_data(self, dataset: tablib.Dataset, **kwargs: Any) -> bytes:
        """One sheet; numbers stay numbers, text never becomes a formula."""
        import openpyxl  # only XLSX needs it

        book = openpyxl.Workbook(write_only=True)
        sheet = book.create_sheet(title=(dataset.title or "Export")[:31])
        sheet.append(list(dataset.headers))
        for row in dataset:
            sheet.append([_spreadsheet_cell(value) for value in row])
        out = io.BytesIO()
        book.save(out)
        return out.getvalue()


class JSONFormat(DataFormat):
    title, extension, content_type = "json", "json", "application/json"

    def read(self, data: bytes) -> datafiles.Table:
        return datafiles.read_json(data)

    def export_data(self, dataset: tablib.Dataset, **kwargs: Any) -> str:
        """A list of objects; decimals as strings, so amounts stay exact."""
        rows = [dict(zip(dataset.headers, row)) for row in dataset]
        return json.dumps(rows, ensure_ascii=False, indent=2, default=_exact) + "\n"


def _exact(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


FORMATS = [CSVFormat, XLSXFormat, JSONFormat]

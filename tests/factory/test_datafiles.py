"""Reading uploaded tables: every hostile file gets a clear, located refusal."""
import io
import json
import zipfile

from hypothesis import given, strategies as st
import pytest

from factory import datafiles
from factory.datafiles import ABSENT, DataFileError, neutralise, restore
from factory.parameters.wildcard_files import load_wildcard_file


def _refused(reader, data: bytes) -> str:
    with pytest.raises(DataFileError) as exc:
        reader(data)
    return str(exc.value)


# ---------------------------------------------------------------- formulas
@given(st.text())
def test_neutralised_text_never_starts_a_formula_and_restores_exactly(text):
    safe = neutralise(text)
    assert not safe[:1] in ("=", "+", "-", "@", "\t", "\r")
    assert restore(safe) == text


@pytest.mark.parametrize("text", ["=1+2", "+33 1", "-x", "@SUM(A1)", "\tcmd", "\rx", "'=x"])
def test_formula_text_gets_one_leading_quote(text):
    assert neutralise(text) == "'" + text


@pytest.mark.parametrize("value", [-5, -1.5, 0, "plain", "'quoted", None, True])
def test_numbers_and_plain_text_are_left_alone(value):
    assert neutralise(value) == value
    assert restore(value) == value


# ---------------------------------------------------------------- encodings
def test_a_utf8_byte_order_mark_is_accepted():
    table = datafiles.read_csv(b"\xef\xbb\xbfname\nsea\n")
    assert table.headers == ["name"] and table.rows == [["sea"]]


def test_latin1_is_refused_naming_both_encodings():
    message = _refused(datafiles.read_csv, "name\ncafé\n".encode("latin-1"))
    assert "not UTF-8" in message and "Latin-1" in message and "line 2" in message


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le"])
def test_utf16_is_refused_naming_both_encodings(encoding):
    message = _refused(datafiles.read_csv, "name\nsea\n".encode(encoding))
    assert "UTF-16" in message and "UTF-8 is expected" in message


@pytest.mark.parametrize("data", [b"", b"   \n", b"\xef\xbb\xbf"])
def test_an_empty_file_is_refused(data):
    assert "empty" in _refused(datafiles.read_csv, data)


def test_an_oversized_file_is_refused(monkeypatch):
    monkeypatch.setattr(datafiles, "MAX_FILE_BYTES", 10)
    assert "limit is 10" in _refused(datafiles.read_csv, b"name\n" + b"x" * 20)


# ---------------------------------------------------------------- CSV
def test_csv_header_only_is_refused():
    assert "no rows" in _refused(datafiles.read_csv, b"name,values\n")


def test_csv_duplicate_and_blank_columns_are_refused():
    assert "appears twice" in _refused(datafiles.read_csv, b"name,name\na,b\n")
    assert "Column 2" in _refused(datafiles.read_csv, b"name,,x\na,b,c\n")


def test_csv_unbalanced_quotes_name_the_line():
    message = _refused(datafiles.read_csv, b'name\n"ok"\n"never closed\nmore\n')
    assert "never closed" in message and "CSV line" in message


def test_csv_rows_must_match_the_header():
    assert "line 3 has 3 cells" in _refused(datafiles.read_csv, b"a,b\n1,2\n1,2,3\n")


def test_csv_oversized_cell_is_refused_with_its_line():
    data = b"name\n" + b"x" * 200_000 + b"\n"
    assert "longer than" in _refused(datafiles.read_csv, data)


def test_csv_quoted_cells_keep_commas_newlines_and_restore_formulas():
    table = datafiles.read_csv(b'name,note\n"a, b","line1\nline2"\n\'=1+2,x\n')
    assert table.rows == [["a, b", "line1\nline2"], ["=1+2", "x"]]


# ---------------------------------------------------------------- JSON
def test_json_truncated_names_line_and_column():
    message = _refused(datafiles.read_json, b'[\n  {"name": "a"},\n  {"name": ')
    assert "line 3" in message and "column" in message


@pytest.mark.parametrize("text, words", [
    ('[{"a": NaN}]', "NaN"), ('[{"a": Infinity}]', "Infinity"),
    ('[{"a": 1e400}]', "too large"), ('[{"a": 1' + "0" * 200 + "}]", "digits"),
    ('[{"a": 1, "a": 2}]', "appears twice"), ('"text"', "list of objects"),
    ('[1, 2]', "Entry 1 is not an object"),
])
def test_json_outside_the_standard_is_refused(text, words):
    assert words in _refused(datafiles.read_json, text.encode())


@pytest.mark.parametrize("depth", [30, 5000, 200_000])
def test_json_nested_deeply_is_refused_not_crashing(depth):
    data = ('[{"a": ' + "[" * depth + "]" * depth + "}]").encode()
    assert "nested deeper" in _refused(datafiles.read_json, data)


def test_json_takes_a_list_or_the_seed_files_wrapper_and_marks_absent_keys():
    table = datafiles.read_json(b'{"machines": [{"slug": "a", "x": 1}, {"slug": "b"}]}')
    assert table.headers == ["slug", "x"]
    assert table.rows == [["a", 1], ["b", ABSENT]]


def test_the_wildcard_file_import_refuses_deep_json_without_crashing():
    deep = ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}").encode()
    with pytest.raises(ValueError, match="nested deeper"):
        load_wildcard_file("deep.json", deep)


# ---------------------------------------------------------------- cells
def test_cell_problems_name_the_column_and_reason():
    assert "U+0000" in datafiles.cell_problem("a\x00b", "notes")
    assert "U+001B" in datafiles.cell_problem({"k": "\x1b[31m"}, "tokens")
    assert "not a finite number" in datafiles.cell_problem(float("nan"), "budget")
    assert "200,000 characters" in datafiles.cell_problem("x" * 200_000, "notes")
    assert datafiles.cell_problem("tab\tand\nnewline", "notes") is None


# ---------------------------------------------------------------- XLSX
def _xlsx(rows: list[list]) -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_xlsx_reads_the_first_sheet_and_restores_formula_text():
    table = datafiles.read_xlsx(_xlsx([["name", "seed"], ["'=1+2", -5], [None, None]]))
    assert table.headers == ["name", "seed"] and table.rows == [["=1+2", -5]]


def test_a_csv_renamed_xlsx_is_refused_as_text():
    message = _refused(datafiles.read_xlsx, b"name\nsea\n")
    assert "not an XLSX workbook" in message and "CSV" in message


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return out.getvalue()


def test_an_xlsx_zip_bomb_is_refused_before_unpacking():
    bomb = _zip({"xl/workbook.xml": b"<x/>", "xl/worksheets/sheet1.xml": b"\0" * 5_000_000})
    assert "zip bomb" in _refused(datafiles.read_xlsx, bomb)


def test_an_xlsx_that_would_unpack_too_large_is_refused(monkeypatch):
    monkeypatch.setattr(datafiles, "MAX_XLSX_UNPACKED_BYTES", 1000)
    big = _zip({"xl/workbook.xml": b"<x/>", "xl/a.xml": b"ab" * 1000})
    assert "would unpack to" in _refused(datafiles.read_xlsx, big)


def test_a_zip_that_is_not_a_workbook_or_is_damaged_is_refused():
    assert "not an XLSX" in _refused(datafiles.read_xlsx, _zip({"a.txt": b"x"}))
    damaged = _xlsx([["a"], [1]])[:400]
    assert "damaged" in _refused(datafiles.read_xlsx, damaged)


def test_an_xlsx_with_broken_xml_is_refused_clearly():
    broken = _zip({"[Content_Types].xml": b"<nope", "xl/workbook.xml": b"<nope"})
    assert "cannot be read" in _refused(datafiles.read_xlsx, broken)


def test_parse_json_reports_where():
    with pytest.raises(DataFileError, match="line 1, column"):
        datafiles.parse_json('{"a": ', where="The cell")
    assert datafiles.parse_json(json.dumps({"a": [1, {"b": None}]})) == {"a": [1, {"b": None}]}

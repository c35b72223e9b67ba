"""The labelled contact sheet: layout, wrapped headers, caps, empty cells."""
import io

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from factory.media import contact_sheet
from factory.media.contact_sheet import (
    SheetCell, SheetSpec, SheetTooLarge, _font, _wrap, plan_layout,
    render_contact_sheet,
)

RED, BLUE = (200, 30, 30), (30, 60, 200)


def _thumb(name: str, rgb: tuple[int, int, int], size=(96, 64)) -> str:
    out = io.BytesIO()
    Image.new("RGB", size, rgb).save(out, "WEBP")
    return default_storage.save(name, ContentFile(out.getvalue()))


def _spec(cells, columns=("a", "b"), rows=("1",)) -> SheetSpec:
    return SheetSpec("Title", "X: a   ·   Y: b", list(columns), list(rows), cells)


def _centre(layout, row: int, column: int, slot: int = 0) -> tuple[int, int]:
    top = contact_sheet.MARGIN + layout.title_height + layout.column_header
    left = contact_sheet.MARGIN + layout.row_header
    x = left + column * (layout.cell_width + contact_sheet.GAP) \
        + slot * (layout.tile + contact_sheet.PAD) + layout.tile // 2
    return x, top + row * (layout.tile + contact_sheet.GAP) + layout.tile // 2


def test_thumbnails_land_in_their_cells_side_by_side(media_root):
    red, blue = _thumb("thumbs/red.webp", RED), _thumb("thumbs/blue.webp", BLUE)
    spec = _spec([[SheetCell((red, blue)), SheetCell(note="failed")]])
    sheet = Image.open(io.BytesIO(render_contact_sheet(spec)))
    layout = plan_layout(spec)
    assert sheet.size == (layout.width, layout.height)
    assert layout.per_cell == 2 and layout.tile == contact_sheet.TILES[0]
    assert sheet.getpixel(_centre(layout, 0, 0, 0)) == pytest.approx(RED, abs=8)
    assert sheet.getpixel(_centre(layout, 0, 0, 1)) == pytest.approx(BLUE, abs=8)
    x, y = _centre(layout, 0, 1)
    empty = sheet.crop((x - layout.tile // 2, y - layout.tile // 2,
                        x + layout.tile // 2, y + layout.tile // 2))
    colours = {rgb for _, rgb in empty.getcolors(1_000_000)}
    assert contact_sheet.EMPTY in colours and len(colours) > 2  # the note's text


def test_a_missing_file_is_drawn_as_such_not_raised(media_root):
    spec = _spec([[SheetCell(("thumbs/gone.webp",)), SheetCell()]])
    sheet = Image.open(io.BytesIO(render_contact_sheet(spec)))
    layout = plan_layout(spec)
    x, y = _centre(layout, 0, 0)
    corner = (x - layout.tile // 2 + 3, y - layout.tile // 2 + 3)
    assert sheet.getpixel(corner) == contact_sheet.EMPTY


def test_long_headers_wrap_and_are_cut_with_an_ellipsis():
    font = _font(contact_sheet.TEXT_SIZE)
    text = "a lighthouse keeper " * 20
    lines = _wrap(text, font, 200, 3)
    assert len(lines) == 3 and lines[-1].endswith("…")
    assert all(font.getlength(line) <= 200 for line in lines)
    assert _wrap("x" * 300, font, 100, 10)[0] and all(
        font.getlength(line) <= 100 for line in _wrap("x" * 300, font, 100, 10))


def test_too_many_cells_are_refused_before_drawing():
    columns = [str(n) for n in range(21)]
    rows = [str(n) for n in range(20)]
    spec = SheetSpec("t", "s", columns, rows, [[SheetCell()] * 21] * 20)
    with pytest.raises(SheetTooLarge, match="420 cells; one PNG holds at most 400"):
        plan_layout(spec)


def test_big_sheets_shrink_their_tiles_then_are_refused(monkeypatch):
    spec = SheetSpec("t", "s", [str(n) for n in range(10)], ["r"],
                     [[SheetCell(("a", "b", "c", "d"))] * 10])
    monkeypatch.setattr(contact_sheet, "MAX_SIDE", 9_000)
    assert plan_layout(spec).tile == 192
    monkeypatch.setattr(contact_sheet, "MAX_SIDE", 4_000)
    with pytest.raises(SheetTooLarge, match=r"even with 128 px thumbnails, over the limit"):
        plan_layout(spec)


def test_a_cell_with_pictures_notes_its_items_without_any(media_root):
    red = _thumb("thumbs/red.webp", RED, size=(96, 96))
    spec = _spec([[SheetCell((red,), note="1 failed"), SheetCell((red,))]])
    sheet = Image.open(io.BytesIO(render_contact_sheet(spec)))
    layout = plan_layout(spec)
    for column, noted in ((0, True), (1, False)):
        x, y = _centre(layout, 0, column)
        corner = (x - layout.tile // 2 + 3, y + layout.tile // 2 - 3)
        assert (sheet.getpixel(corner) == contact_sheet.INK) is noted

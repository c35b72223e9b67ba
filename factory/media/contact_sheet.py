"""A labelled contact sheet: a grid of thumbnails as one PNG, as A1111 saves
its X/Y plots. Column and row headers carry the axis values, wrapped.

Thumbnails are read from storage (never the full files), and the sheet's
size is bounded before anything is decoded: too many cells or pixels is
refused with a sentence saying what to change.
"""
import io
from dataclasses import dataclass
from math import ceil

from django.core.files.storage import Storage, default_storage
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

MAX_CELLS = 400
MAX_SIDE = 12_000
MAX_PIXELS = 48_000_000
TILES = (256, 192, 128)  # the largest tile that keeps the sheet in bounds wins
PER_CELL = 4  # thumbnails drawn side by side in one cell
MARGIN, GAP, PAD = 28, 24, 8  # a cell's own thumbnails sit closer than cells
ROW_HEADER = 240
TITLE_SIZE, TEXT_SIZE, NOTE_SIZE = 30, 18, 15
HEADER_LINES = 4

PAPER = (255, 255, 255)
INK = (17, 24, 39)
MUTED = (107, 114, 128)
EMPTY = (243, 244, 246)
RULE = (209, 213, 219)


class SheetTooLarge(ValueError):
    """The sheet asked for is over the cell or pixel cap."""


@dataclass(frozen=True)
class SheetCell:
    """What one cell shows: thumbnails, and a note on items that show none."""

    thumbnails: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class SheetSpec:
    title: str
    subtitle: str
    columns: list[str]
    rows: list[str]  # one blank row header when there is no Y axis
    cells: list[list[SheetCell]]  # rows of cells, one per column


@dataclass(frozen=True)
class Layout:
    tile: int
    per_cell: int
    cell_width: int
    row_header: int
    column_header: int
    title_height: int
    width: int
    height: int


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def plan_layout(spec: SheetSpec) -> Layout:
    """The largest tile size that fits the caps, or SheetTooLarge."""
    cells = len(spec.columns) * len(spec.rows)
    if cells > MAX_CELLS:
        raise SheetTooLarge(
            f"This sheet would have {cells:,} cells; one PNG holds at most "
            f"{MAX_CELLS:,}. Choose axes with fewer values, or split the "
            "grid into pages with a third axis and export one page."
        )
    per_cell = max(1, min(PER_CELL, max(
        (len(c.thumbnails) for row in spec.cells for c in row), default=1)))
    row_header = _row_header_width(spec.rows)
    for tile in TILES:
        layout = _layout(spec, tile, per_cell, row_header)
        if _fits(layout):
            return layout
    raise SheetTooLarge(
        f"This sheet would be {layout.width:,} × {layout.height:,} pixels even "
        f"with {tile} px thumbnails, over the limit of {MAX_SIDE:,} px a side "
        f"and {MAX_PIXELS // 1_000_000} megapixels. Choose axes with fewer "
        "values, or split the grid with a third axis."
    )


def _row_header_width(rows: list[str]) -> int:
    """As wide as the longest row label, up to ROW_HEADER (longer ones wrap)."""
    if not any(rows):
        return 0
    font = _font(TEXT_SIZE)
    widest = max(font.getlength(label) for label in rows)
    return min(ROW_HEADER, ceil(widest) + 3 * PAD)


def _fits(layout: Layout) -> bool:
    return (layout.width <= MAX_SIDE and layout.height <= MAX_SIDE
            and layout.width * layout.height <= MAX_PIXELS)


def _layout(spec: SheetSpec, tile: int, per_cell: int, row_header: int) -> Layout:
    cell_width = per_cell * tile + (per_cell - 1) * PAD
    line = _line_height(_font(TEXT_SIZE))
    lines = max((len(_wrap(text, _font(TEXT_SIZE), cell_width, HEADER_LINES))
                 for text in spec.columns), default=1)
    column_header = lines * line + 2 * PAD
    title_height = _line_height(_font(TITLE_SIZE)) + line + 3 * PAD
    columns, rows = len(spec.columns), len(spec.rows)
    width = 2 * MARGIN + row_header + columns * (cell_width + GAP) - GAP
    height = 2 * MARGIN + title_height + column_header + rows * (tile + GAP) - GAP
    return Layout(tile, per_cell, cell_width, row_header, column_header,
                  title_height, width, height)


def _line_height(font: ImageFont.FreeTypeFont) -> int:
    return ceil(font.size * 1.3)


def _wrap(
    text: str, font: ImageFont.FreeTypeFont, width: int, max_lines: int
) -> list[str]:
    """Greedy word wrap to ``width`` pixels; the last line ends in … if cut."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        while font.getlength(word) > width:  # a word longer than the line
            cut = max(1, int(len(word) * width / font.getlength(word)) - 1)
            if current:
                lines.append(current)
                current = ""
            lines.append(word[:cut])
            word = word[cut:]
        candidate = f"{current} {word}".strip()
        if font.getlength(candidate) <= width:
            current = candidate
        else:
            lines.append(current)
            current = word
    if current or not lines:
        lines.append(current)
    if len(lines) > max_lines:
        last = lines[max_lines - 1]
        while last and font.getlength(last + "…") > width:
            last = last[:-1]
        lines = lines[:max_lines - 1] + [last.rstrip() + "…"]
    return lines


def _text_block(
    draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], text: str,
    font: ImageFont.FreeTypeFont, fill: tuple[int, int, int], *, centre: bool,
) -> None:
    """Wrapped text inside ``box``, centred, or left-aligned and vertically centred."""
    left, top, right, bottom = box
    line = _line_height(font)
    lines = _wrap(text, font, right - left, max(1, (bottom - top) // line))
    y = top + (bottom - top - line * len(lines)) // 2
    for part in lines:
        x = left + (right - left - font.getlength(part)) / 2 if centre else left
        draw.text((x, y), part, font=font, fill=fill)
        y += line


def _thumbnail(storage: Storage, name: str, tile: int) -> Image.Image | None:
    """The stored thumbnail fitted in ``tile``; None when it cannot be read."""
    try:
        with storage.open(name, "rb") as handle, Image.open(handle) as image:
            image.draft("RGB", (tile, tile))
            return ImageOps.contain(image.convert("RGB"), (tile, tile))
    except (OSError, UnidentifiedImageError, ValueError):
        return None


def render_contact_sheet(spec: SheetSpec, storage: Storage | None = None) -> bytes:
    """The sheet as PNG bytes; raises SheetTooLarge before drawing anything."""
    storage = storage or default_storage
    layout = plan_layout(spec)
    sheet = Image.new("RGB", (layout.width, layout.height), PAPER)
    draw = ImageDraw.Draw(sheet)
    title = _font(TITLE_SIZE)
    draw.text((MARGIN, MARGIN), spec.title, font=title, fill=INK)
    draw.text((MARGIN, MARGIN + _line_height(title) + PAD), spec.subtitle,
              font=_font(TEXT_SIZE), fill=MUTED)
    top = MARGIN + layout.title_height
    left = MARGIN + layout.row_header
    text = _font(TEXT_SIZE)
    for n, label in enumerate(spec.columns):
        x = left + n * (layout.cell_width + GAP)
        _text_block(draw, (x, top, x + layout.cell_width, top + layout.column_header - PAD),
                    label, text, INK, centre=True)
    draw.line((left, top + layout.column_header - PAD // 2,
               layout.width - MARGIN, top + layout.column_header - PAD // 2), fill=RULE)
    top += layout.column_header
    for r, label in enumerate(spec.rows):
        y = top + r * (layout.tile + GAP)
        if layout.row_header:
            _text_block(draw, (MARGIN, y, left - 2 * PAD, y + layout.tile),
                        label, text, INK, centre=False)
        for c, cell in enumerate(spec.cells[r]):
            x = left + c * (layout.cell_width + GAP)
            _draw_cell(sheet, draw, storage, cell, (x, y), layout)
    out = io.BytesIO()
    sheet.save(out, "PNG", compress_level=6)
    return out.getvalue()


def _draw_cell(
    sheet: Image.Image, draw: ImageDraw.ImageDraw, storage: Storage,
    cell: SheetCell, origin: tuple[int, int], layout: Layout,
) -> None:
    x, y = origin
    tile = layout.tile
    shown = cell.thumbnails[:layout.per_cell]
    if not shown:
        draw.rectangle((x, y, x + layout.cell_width - 1, y + tile - 1), fill=EMPTY)
        _text_block(draw, (x + PAD, y + PAD, x + layout.cell_width - PAD, y + tile - PAD),
                    cell.note or "no item", _font(NOTE_SIZE), MUTED, centre=True)
        return
    used = len(shown) * tile + (len(shown) - 1) * PAD
    start = x + (layout.cell_width - used) // 2
    for n, name in enumerate(shown):
        left = start + n * (tile + PAD)
        picture = _thumbnail(storage, name, tile)
        if picture is None:
            draw.rectangle((left, y, left + tile - 1, y + tile - 1), fill=EMPTY)
            _text_block(draw, (left + PAD, y, left + tile - PAD, y + tile),
                        "file missing", _font(NOTE_SIZE), MUTED, centre=True)
            continue
        sheet.paste(picture, (left + (tile - picture.width) // 2,
                              y + (tile - picture.height) // 2))
    hidden = len(cell.thumbnails) - len(shown)
    if hidden:
        _badge(draw, f"+{hidden}", (start + used, y + tile), right=True)
    if cell.note:
        _badge(draw, cell.note, (start, y + tile), right=False)


def _badge(
    draw: ImageDraw.ImageDraw, label: str, corner: tuple[int, int], *, right: bool
) -> None:
    """A small dark label in a bottom corner of a cell's pictures."""
    font = _font(NOTE_SIZE)
    width = font.getlength(label) + 2 * PAD
    x, bottom = corner
    left = x - width if right else x
    height = _line_height(font) + PAD
    draw.rectangle((left, bottom - height, left + width, bottom), fill=INK)
    draw.text((left + PAD, bottom - height + PAD // 2), label, font=font, fill=PAPER)

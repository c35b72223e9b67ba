"""Generation parameters inside PNG, JPEG and WebP files, readable by A1111 tools.

Chunks and segments are spliced into the original bytes, so pixels are never
re-encoded. PNG gets a ``parameters`` text chunk (A1111) and an
``artfactory`` iTXt chunk with the full JSON; JPEG and WebP get the text in
EXIF UserComment (A1111) and the JSON in XMP; in JPEG either is left out
if it exceeds one 64 KB segment.

A provider's file is untrusted: a picture can carry HTML in a text chunk,
or a ZIP after its end, and be served as both. So only the picture and the
project's own metadata are kept: PNG keeps the chunks that draw it (up to
IEND), JPEG the segments that decode it (up to EOI) and its orientation,
WebP the chunks its RIFF header counts; other text, EXIF, XMP, comments and
trailing bytes are dropped. Other image formats are re-encoded in their own
format by Pillow, which writes the picture alone. Audio and video pass
unchanged.
"""

import io
import json
import re
import struct
import zlib
from typing import Any
from xml.etree import ElementTree

from PIL import Image, UnidentifiedImageError

from factory.media.inspect import PNG_SIGNATURE, MediaError, MediaInfo, png_chunks

EXIF_IFD, USER_COMMENT = 0x8769, 0x9286
UNICODE_PREFIX = b"UNICODE\x00"  # EXIF 8-byte character code, as piexif writes
EXIF_HEADER = b"Exif\x00\x00"
XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
XMP_NS = "https://artfactory.invalid/ns/1.0/"
XMP_PACKET = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF'
    ' xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
)
MAX_SEGMENT = 65533  # a JPEG segment's payload limit
VP8X_FLAGS = {b"EXIF": 0x08, b"XMP ": 0x04}
# PNG chunks that draw the picture (APNG's included); the rest is dropped.
PNG_PICTURE_CHUNKS = frozenset({
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"cHRM", b"gAMA", b"iCCP",
    b"sBIT", b"sRGB", b"cICP", b"mDCV", b"cLLI", b"bKGD", b"pHYs", b"acTL",
    b"fcTL", b"fdAT",
})
# JPEG segments before the first scan that decoding needs: JFIF (APP0),
# the ICC profile (APP2), Adobe's colour transform (APP14), tables, frames.
JPEG_KEPT_APPS = (0xE0, 0xE2, 0xEE)
WEBP_PICTURE_CHUNKS = frozenset({b"VP8X", b"VP8 ", b"VP8L", b"ALPH", b"ANIM",
                                 b"ANMF", b"ICCP"})
ORIENTATION = 0x0112
RE_ENCODED = {"gif": "GIF", "bmp": "BMP", "tiff": "TIFF", "avif": "AVIF"}


def a1111_text(
    prompt: str, negative_prompt: str | None, params: dict[str, Any]
) -> str:
    """Parameters as A1111 writes them: prompt, negatives, then key: value pairs."""
    lines = [prompt]
    if negative_prompt:
        lines.append(f"Negative prompt: {negative_prompt}")
    fields = {
        "Steps": _first(params, "steps", "num_inference_steps"),
        "Sampler": _first(params, "sampler", "sampler_name"),
        "CFG scale": _first(params, "cfg_scale", "guidance_scale", "guidance"),
        "Seed": _first(params, "seed"),
        "Size": _size(params),
        "Model": _first(params, "model", "model_name"),
    }
    pairs = [
        f"{key}: {_quote(value)}" for key, value in fields.items() if value is not None
    ]
    if pairs:
        lines.append(", ".join(pairs))
    return "\n".join(lines)


def _first(params: dict[str, Any], *keys: str) -> Any:
    """The value of the first key present and not None."""
    return next((params[key] for key in keys if params.get(key) is not None), None)


def _size(params: dict[str, Any]) -> str | None:
    """``WxH`` from width/height or an explicit image_size, else None."""
    size = params.get("image_size")
    if isinstance(size, dict):
        size = (size.get("width"), size.get("height"))
    elif isinstance(size, str) and re.fullmatch(r"\d+x\d+", size):
        return size
    else:
        size = (params.get("width"), params.get("height"))
    return f"{size[0]}x{size[1]}" if None not in size else None


def _quote(value: Any) -> str:
    """Quote a value the way A1111 does when it would break the list."""
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if re.search(r"[,:\n]", text) else text


def embed_parameters(
    data: bytes, info: MediaInfo, parameters_text: str, parameters_json: dict
) -> bytes:
    """Return ``data`` with both forms of the parameters embedded."""
    json_text = json.dumps(parameters_json, ensure_ascii=False, sort_keys=True)
    writers = {"png": _embed_png, "jpg": _embed_jpeg, "webp": _embed_webp}
    if info.media_type != "image":
        return data
    writer = writers.get(info.extension, _re_encode)
    try:
        return writer(data, info, parameters_text, json_text)
    except (struct.error, IndexError, ValueError, OSError) as exc:
        raise MediaError(f"cannot embed parameters in {info.extension}: {exc}") from exc


def _re_encode(data: bytes, info: MediaInfo, text: str, json_text: str) -> bytes:
    """The picture alone, written again by Pillow in its own format."""
    out = io.BytesIO()
    with Image.open(io.BytesIO(data)) as image:
        frames = getattr(image, "n_frames", 1) > 1
        image.save(out, RE_ENCODED[info.extension], save_all=frames)
    return out.getvalue()


def read_parameters(data: bytes) -> dict[str, Any]:
    """The A1111 text and the JSON embedded by ``embed_parameters``, if any."""
    try:
        with Image.open(io.BytesIO(data), formats=("PNG", "JPEG", "WEBP")) as image:
            if image.format == "PNG":
                return {
                    "parameters": image.info.get("parameters"),
                    "json": _json_or_none(image.info.get("artfactory")),
                }
            comment = image.getexif().get_ifd(EXIF_IFD).get(USER_COMMENT)
            xmp = image.info.get("xmp")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return {"parameters": None, "json": None}
    return {"parameters": _decode_comment(comment), "json": _json_from_xmp(xmp)}


def _json_or_none(text: str | bytes | None) -> dict | None:
    """The parsed JSON object, or None if absent or not an object."""
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _decode_comment(comment: bytes | str | None) -> str | None:
    """Text of an EXIF UserComment in its declared character code."""
    if comment is None or isinstance(comment, str):
        return comment
    if comment.startswith(UNICODE_PREFIX):
        return comment[8:].decode("utf-16-be", errors="replace")
    return comment[8:].decode("utf-8", errors="replace").rstrip("\x00")


def _user_comment(text: str) -> bytes:
    """An EXIF UserComment holding ``text`` in UTF-16BE, as A1111 writes it."""
    return UNICODE_PREFIX + text.encode("utf-16-be")


def _json_from_xmp(xmp: bytes | str | None) -> dict | None:
    """The JSON stored under the artfactory namespace in an XMP packet."""
    if not xmp:
        return None
    try:
        root = ElementTree.fromstring(xmp)
    except ElementTree.ParseError:
        return None
    node = root.find(f".//{{{XMP_NS}}}json")
    return _json_or_none(node.text if node is not None else None)


def _xmp_packet(json_text: str) -> bytes:
    """An XMP packet holding the JSON and nothing else."""
    escaped = json_text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    description = (
        f'<rdf:Description rdf:about="" xmlns:artfactory="{XMP_NS}">'
        f"<artfactory:json>{escaped}</artfactory:json></rdf:Description>"
    )
    return XMP_PACKET.replace("</rdf:RDF>", description + "</rdf:RDF>", 1).encode("utf-8")


def _exif_with_comment(data: bytes, text: str) -> bytes:
    """Fresh EXIF (after the Exif header): the comment and the picture's
    orientation, which draws it upright; the provider's other tags go."""
    with Image.open(io.BytesIO(data)) as image:
        orientation = image.getexif().get(ORIENTATION)
    exif = Image.Exif()
    if orientation is not None:
        exif[ORIENTATION] = orientation
    exif.get_ifd(EXIF_IFD)[USER_COMMENT] = _user_comment(text)
    return exif.tobytes().removeprefix(EXIF_HEADER)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk with its length and CRC."""
    crc = zlib.crc32(kind + body)
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def _embed_png(data: bytes, info: MediaInfo, text: str, json_text: str) -> bytes:
    """The picture's chunks up to IEND, both of ours right after IHDR."""
    kept = [chunk for kind, chunk in png_chunks(data) if kind in PNG_PICTURE_CHUNKS]
    if not kept or kept[0][4:8] != b"IHDR":
        raise ValueError("PNG does not start with IHDR")
    try:
        parameters = _png_chunk(b"tEXt", b"parameters\0" + text.encode("latin-1"))
    except UnicodeEncodeError:  # tEXt is Latin-1 only; iTXt carries UTF-8
        body = b"parameters\0\0\0\0\0" + text.encode("utf-8")
        parameters = _png_chunk(b"iTXt", body)
    packed = zlib.compress(json_text.encode("utf-8"))
    full = _png_chunk(b"iTXt", b"artfactory\0\1\0\0\0" + packed)
    return PNG_SIGNATURE + kept[0] + parameters + full + b"".join(kept[1:])


def _embed_jpeg(data: bytes, info: MediaInfo, text: str, json_text: str) -> bytes:
    """Replace the EXIF and XMP APP1 segments, keeping every other segment."""
    exif = _exif_with_comment(data, text)
    payloads = (EXIF_HEADER + exif, XMP_HEADER + _xmp_packet(json_text))
    # A payload over one segment's limit is left out rather than failing the
    # file; the database keeps the full parameters either way.
    segments = [_jpeg_segment(p) for p in payloads if len(p) <= MAX_SEGMENT]
    offset, kept = 2, []
    while data[offset] == 0xFF and data[offset + 1] not in (0xDA, 0xD9):
        (length,) = struct.unpack(">H", data[offset + 2:offset + 4])
        segment = data[offset:offset + 2 + length]
        application = 0xE0 <= segment[1] <= 0xEF or segment[1] == 0xFE
        if not application or segment[1] in JPEG_KEPT_APPS:
            kept.append(segment)
        offset += 2 + length
    app0 = [s for s in kept if s[1] == 0xE0]  # JFIF must stay first
    rest = [s for s in kept if s[1] != 0xE0]
    scans = data[offset:_jpeg_end(data, offset)]
    return data[:2] + b"".join(app0 + segments + rest) + scans


def _jpeg_end(data: bytes, offset: int) -> int:
    """Where the image ends: just after its EOI marker, found by walking the
    segments and the entropy-coded scans from the first scan at ``offset``."""
    while offset + 1 < len(data):
        marker = data[offset + 1]
        if marker == 0xD9:
            return offset + 2
        if marker == 0xFF:  # fill byte
            offset += 1
            continue
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            offset += 2
            continue
        (length,) = struct.unpack(">H", data[offset + 2:offset + 4])
        offset += 2 + length
        if marker == 0xDA:  # the scan's data runs to the next real marker
            while offset + 1 < len(data) and not (
                    data[offset] == 0xFF and data[offset + 1] not in _IN_SCAN):
                offset += 1
    return len(data)


# After 0xFF inside scan data: a stuffed zero or a restart marker.
_IN_SCAN = frozenset({0x00, *range(0xD0, 0xD8)})


def _jpeg_segment(payload: bytes) -> bytes:
    """An APP1 segment around ``payload``."""
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def _embed_webp(data: bytes, info: MediaInfo, text: str, json_text: str) -> bytes:
    """Replace the EXIF and XMP chunks, upgrading a simple file to VP8X."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ValueError("missing RIFF WEBP header")
    exif = _exif_with_comment(data, text)
    chunks = [chunk for chunk in _riff_chunks(data)
              if chunk[0] in WEBP_PICTURE_CHUNKS]
    if chunks[0][0] != b"VP8X":
        chunks.insert(0, (b"VP8X", _vp8x_body(chunks[0], info)))
    head = bytearray(chunks[0][1])
    head[0] |= VP8X_FLAGS[b"EXIF"] | VP8X_FLAGS[b"XMP "]
    chunks[0] = (b"VP8X", bytes(head))
    chunks += [(b"EXIF", exif), (b"XMP ", _xmp_packet(json_text))]
    body = b"WEBP" + b"".join(
        kind + struct.pack("<I", len(part)) + part + b"\0" * (len(part) & 1)
        for kind, part in chunks
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _riff_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """Each WebP chunk's FourCC and payload, in file order, within the
    length the RIFF header gives (bytes after it are not the picture's)."""
    (riff_size,) = struct.unpack("<I", data[4:8])
    end = min(len(data), 8 + riff_size)
    chunks, offset = [], 12
    while offset + 8 <= end:
        (length,) = struct.unpack("<I", data[offset + 4:offset + 8])
        chunks.append((data[offset:offset + 4], data[offset + 8:offset + 8 + length]))
        offset += 8 + length + (length & 1)  # payloads are padded to even
    return chunks


def _vp8x_body(image_chunk: tuple[bytes, bytes], info: MediaInfo) -> bytes:
    """A VP8X header for a simple WebP: alpha flag and canvas size."""
    kind, body = image_chunk
    alpha = kind == b"VP8L" and (int.from_bytes(body[1:5], "little") >> 28) & 1
    sides = (info.width, info.height)
    canvas = b"".join((side - 1).to_bytes(3, "little") for side in sides)
    return bytes([0x10 if alpha else 0]) + b"\0\0\0" + canvas

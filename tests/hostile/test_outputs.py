"""Hostile output files: refused with a precise message and nothing stored,
or, for a picture carrying a payload, stored as the picture alone."""
import base64
import hashlib
import io
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from PIL import Image

from factory.media.inspect import MediaError, probe
from factory.media.metadata import read_parameters
from factory.models import FactoryMachine, ItemStatus, Order, OrderItem
from factory.production.collect import store_output
from factory.providers.base import RemoteOutput
from tests.hostile.conftest import Case, assert_clear, case

KIND = "output file"
URL_KIND = "output URL"
CLEAN_KIND = "polyglot output (stored clean)"
HTML = b"<html><script>alert(document.cookie)</script></html>"


def picture(fmt: str = "PNG", size: tuple[int, int] = (24, 16), **save) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 40, 90)).save(out, fmt, **save)
    return out.getvalue()


def zipped() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("index.html", HTML)
    return out.getvalue()


def chunk(kind: bytes, body: bytes, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + body) if crc is None else crc
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def with_chunk(png: bytes, extra: bytes) -> bytes:
    """``extra`` inserted right after IHDR (8 + 25 bytes in)."""
    return png[:33] + extra + png[33:]


def bad_crc(png: bytes, kind: bytes) -> bytes:
    at = png.index(kind) - 4
    (length,) = struct.unpack(">I", png[at:at + 4])
    end = at + 12 + length
    return png[:end - 4] + bytes(b ^ 0xFF for b in png[end - 4:end]) + png[end:]


def huge_png() -> bytes:
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
    return png + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def exif_with(text: bytes) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = text.decode()  # the camera maker's name
    return exif.tobytes()


PNG = picture()
JPEG = picture("JPEG")


def data_url(media_type: str, payload: bytes = PNG) -> str:
    return f"data:{media_type};base64,{base64.b64encode(payload).decode()}"


BYTES = [
    case(KIND, "empty file", b"", "empty file: 0 bytes"),
    case(KIND, "HTML page", HTML, "not a decodable image/video/audio file"),
    case(KIND, "SVG with a script", b'<svg xmlns="http://www.w3.org/2000/svg">'
         b"<script>alert(1)</script></svg>", "not a decodable image/video/audio file"),
    case(KIND, "PDF", b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF",
         "not a decodable image/video/audio file"),
    case(KIND, "ZIP archive", zipped(), "not a decodable image/video/audio file"),
    case(KIND, "random bytes", bytes(range(256)) * 4, "not a decodable image/video/audio file"),
    case(KIND, "PNG signature alone", PNG[:8], "the PNG has no IEND chunk"),
    case(KIND, "PNG bad CRC in IHDR", bad_crc(PNG, b"IHDR"),
         "corrupt PNG: chunk 'IHDR' at byte 8 has a bad CRC (stored"),
    case(KIND, "PNG bad CRC in IDAT", bad_crc(PNG, b"IDAT"), "chunk 'IDAT'", "has a bad CRC"),
    case(KIND, "PNG bad CRC in IEND", bad_crc(PNG, b"IEND"), "chunk 'IEND'", "has a bad CRC"),
    case(KIND, "PNG bad CRC in a text chunk",
         with_chunk(PNG, chunk(b"tEXt", b"Comment\0" + HTML, crc=1)),
         "corrupt PNG: chunk 'tEXt' at byte 33 has a bad CRC (stored 00000001"),
    case(KIND, "PNG chunk longer than the file",
         PNG[:33] + struct.pack(">I", 2**31) + PNG[37:],
         "runs past the end of the file"),
    case(KIND, "PNG cut inside IDAT", PNG[:45], "truncated image"),
    case(KIND, "PNG cut before IEND", PNG[:-12], "the PNG has no IEND chunk"),
    case(KIND, "PNG decompression bomb", huge_png(), "decompression bomb: 10000000000 pixels"),
    case(KIND, "JPEG cut in half", JPEG[: len(JPEG) // 2], "truncated image"),
    case(KIND, "JPEG header alone", JPEG[:20], "image"),
    case(KIND, "GIF cut short", picture("GIF")[:20], "image"),
    case(KIND, "WebP cut short", picture("WEBP")[:30], "image"),
    case(KIND, "HTML in a data: URL typed image/png", data_url("image/png", HTML),
         "not a decodable image/video/audio file"),
]

URLS = [
    case(URL_KIND, "credentials", "https://user:secret@cdn.example.com/a.png",
         "URLs carrying a user name or password (user:pass@) are never fetched",
         never=("secret",)),
    case(URL_KIND, "user name only", "https://admin@cdn.example.com/a.png",
         "user name or password", never=("admin@",)),
    case(URL_KIND, "credentials on a private address", "https://u:p@10.0.0.1/a.png",
         "user name or password"),
    case(URL_KIND, "credentials on ftp", "ftp://u:hunter2@files.example.com/a.png",
         "user name or password", never=("hunter2",)),
    case(URL_KIND, "file URL", "file:///etc/passwd", "file URLs are not fetched"),
    case(URL_KIND, "ftp URL", "ftp://files.example.com/a.png", "ftp URLs are not fetched"),
    case(URL_KIND, "plain http", "http://cdn.example.com/a.png", "http URLs are not fetched"),
    case(URL_KIND, "javascript URL", "javascript:alert(1)", "are not fetched"),
    case(URL_KIND, "loopback", "https://127.0.0.1/a.png", "loopback address"),
    case(URL_KIND, "IPv6 loopback", "https://[::1]/a.png", "loopback address"),
    case(URL_KIND, "cloud metadata", "https://169.254.169.254/latest/", "link-local address"),
    case(URL_KIND, "private network", "https://10.1.2.3/a.png", "private address"),
    case(URL_KIND, "IPv4-mapped loopback", "https://[::ffff:127.0.0.1]/a.png", "loopback"),
    case(URL_KIND, "unspecified", "https://0.0.0.0/a.png", "unspecified address"),
    case(URL_KIND, "no host", "https:///a.png", "refused download from"),
    case(URL_KIND, "data: HTML", data_url("text/html", HTML),
         "refused a data: URI of type 'text/html'", "only the image, video and audio types"),
    case(URL_KIND, "data: SVG", data_url("image/svg+xml", b"<svg/>"), "'image/svg+xml'"),
    case(URL_KIND, "data: ZIP", data_url("application/zip", zipped()), "'application/zip'"),
    case(URL_KIND, "data: octet stream", data_url("application/octet-stream"),
         "'application/octet-stream'"),
    case(URL_KIND, "data: JavaScript", data_url("text/javascript", b"alert(1)"),
         "'text/javascript'"),
    case(URL_KIND, "data: without a type", "data:;base64," + base64.b64encode(PNG).decode(),
         "of type 'text/plain'"),
    case(URL_KIND, "data: not base64", "data:image/png,rawbytes",
         "refused a data: URI that is not base64"),
    case(URL_KIND, "data: malformed base64", "data:image/png;base64,!!!!",
         "malformed data: URI"),
    case(URL_KIND, "data: image type with parameters", data_url("text/html;charset=utf-8", HTML),
         "'text/html'"),
]


@pytest.fixture
def item(untouched) -> OrderItem:
    machine = FactoryMachine.objects.get(slug="demo-image")
    order = Order.objects.create(machine=machine, prompt="a kite", status="running")
    return OrderItem.objects.create(
        order=order, machine=machine, index=0, status=ItemStatus.COLLECTING,
        parameters={"prompt": "a kite", "seed": 3, "width": 24, "height": 16})


def stored_files(root: Path) -> list[Path]:
    return [p for p in Path(root).rglob("*") if p.is_file()] if Path(root).exists() else []


@pytest.mark.parametrize("refusal", BYTES + URLS, ids=[c.id for c in BYTES + URLS])
def test_hostile_outputs_are_refused_and_nothing_is_stored(
    refusal, item, untouched, media_root
):
    value = refusal.value
    output = RemoteOutput(url=value) if isinstance(value, str) else RemoteOutput(content=value)
    with untouched():
        with pytest.raises(MediaError) as refused:
            store_output(item, 0, output)
    assert_clear(str(refused.value), refusal)
    assert stored_files(media_root) == []


def png_text(png: bytes) -> bytes:
    return with_chunk(png, chunk(b"tEXt", b"Comment\0" + HTML)
                      + chunk(b"zTXt", b"Description\0\0" + zlib.compress(HTML))
                      + chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + HTML)
                      + chunk(b"prVt", HTML))


def jpeg_comment(jpeg: bytes) -> bytes:
    com = b"\xff\xfe" + struct.pack(">H", len(HTML) + 2) + HTML
    app9 = b"\xff\xe9" + struct.pack(">H", len(HTML) + 2) + HTML
    return jpeg[:2] + com + app9 + jpeg[2:]


def webp_chunk(webp: bytes, extra: bytes) -> bytes:
    body = webp[12:] + b"JUNK" + struct.pack("<I", len(extra)) + extra + b"\0" * (len(extra) & 1)
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


POLYGLOTS = [
    case(CLEAN_KIND, "PNG with HTML in text chunks", png_text(PNG)),
    case(CLEAN_KIND, "PNG with HTML after IEND", PNG + HTML),
    case(CLEAN_KIND, "PNG with a ZIP appended", PNG + zipped()),
    case(CLEAN_KIND, "PNG with an eXIf chunk", with_chunk(PNG, chunk(b"eXIf", b"MM\0*" + HTML))),
    case(CLEAN_KIND, "PNG with our own keys forged", with_chunk(
        PNG, chunk(b"tEXt", b"parameters\0" + HTML))),
    case(CLEAN_KIND, "JPEG with HTML in a comment and APP9", jpeg_comment(JPEG)),
    case(CLEAN_KIND, "JPEG with a ZIP appended", JPEG + zipped()),
    case(CLEAN_KIND, "JPEG with HTML in EXIF", picture("JPEG", exif=exif_with(HTML))),
    case(CLEAN_KIND, "progressive JPEG with a ZIP appended",
         picture("JPEG", progressive=True) + zipped()),
    case(CLEAN_KIND, "WebP with HTML in a foreign chunk", webp_chunk(picture("WEBP"), HTML)),
    case(CLEAN_KIND, "WebP with a ZIP appended", picture("WEBP") + zipped()),
    case(CLEAN_KIND, "GIF with a ZIP appended", picture("GIF") + zipped()),
    case(CLEAN_KIND, "BMP with HTML appended", picture("BMP") + HTML),
]


@pytest.mark.parametrize("polyglot", POLYGLOTS, ids=[c.id for c in POLYGLOTS])
def test_a_polyglot_is_stored_as_the_picture_alone_and_hashed_so(polyglot, item, media_root):
    product = store_output(item, 0, RemoteOutput(content=polyglot.value))
    stored = Path(media_root, product.media.file.name).read_bytes()
    assert HTML not in stored and b"<script>" not in stored
    assert b"PK\x03\x04" not in stored and b"index.html" not in stored
    assert product.media.content_hash == hashlib.sha256(stored).hexdigest()
    info = probe(stored)
    assert (info.width, info.height) == (24, 16)
    assert info.content_type == probe(polyglot.value).content_type
    if info.extension in ("png", "jpg", "webp"):
        assert read_parameters(stored)["json"]["prompt"] == "a kite"
    with Image.open(io.BytesIO(stored)) as image:
        assert image.convert("RGB").getpixel((3, 3))[0] > 150  # still the picture

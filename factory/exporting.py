"""Products as a zip: each media file beside a JSON sidecar of its metadata.

The archive is produced as a stream of byte chunks, so a download of many
large files never holds the archive, or even one whole file, in memory.
Python's zipfile writes to an unseekable stream by putting each entry's
sizes and CRC in a data descriptor after its bytes; ``_Pipe`` is that
stream, handing over what zipfile wrote since the last chunk. Media files
are read in chunks through their storage (local disk or S3); those
compressed already (PNG, JPEG, WebP, MP4, MP3…) are stored as they are,
the rest (WAV, sidecars) deflated.

Entry names are ``<product id>-<machine slug>.<ext>`` and the same stem
with ``.json``; the product id makes every name unique. Reads nothing
but the products' rows: iterating the queryset costs a fixed number of
queries per chunk of products, whatever their number.
"""
from collections.abc import Iterator
from dataclasses import dataclass
import json
from pathlib import PurePosixPath
from typing import Any
import zipfile

from django.conf import settings
from django.db.models import Count, Sum
from django.utils import timezone

from factory.models import Product

READ_CHUNK = 256 * 1024
# Already compressed: deflating them again costs time and saves nothing.
COMPRESSED = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".avif", ".mp4",
              ".webm", ".mov", ".mp3", ".ogg", ".m4a", ".aac", ".flac"}
ITERATE_CHUNK = 200


@dataclass(frozen=True)
class ZipPlan:
    """What a zip of some products will hold, counted before it starts."""

    count: int
    total_bytes: int
    limit: int

    @property
    def too_many(self) -> bool:
        return self.count > self.limit

    @property
    def refusal(self) -> str:
        """Why the zip is refused, or empty when it may start."""
        if not self.count:
            return "No products to download."
        if self.too_many:
            return (f"{self.count} products match; a zip holds at most "
                    f"{self.limit}. Select fewer or narrow the filter.")
        return ""


def plan_zip(products) -> ZipPlan:
    """Count the products and sum their media sizes in one query."""
    totals = products.order_by().aggregate(
        count=Count("pk"), total=Sum("media__size")
    )
    return ZipPlan(totals["count"], totals["total"] or 0,
                   settings.ZIP_MAX_PRODUCTS)


def entry_stem(product: Product) -> str:
    return f"{product.pk}-{product.machine.slug}"


def sidecar(product: Product) -> dict[str, Any]:
    """Everything known about how ``product`` was made and curated."""
    media, item = product.media, product.item
    return {
        "product_id": product.pk,
        "file": entry_stem(product) + _extension(product),
        "media_type": product.media_type,
        "content_type": media.content_type,
        "size": media.size,
        "content_hash": media.content_hash,
        "prompt": product.prompt,
        "parameters": product.parameters,
        "seed": product.seed,
        "machine": {"slug": product.machine.slug, "name": product.machine.name},
        "provider": product.machine.provider.slug,
        "order": {"id": item.order_id, "name": str(item.order)},
        "item_id": item.pk,
        "rating": product.rating,
        "favorite": product.is_favorite,
        "tags": sorted(tag.name for tag in product.tags.all()),
        "project": product.project.name if product.project else None,
        "notes": product.notes,
        "created_at": product.created_at.isoformat(),
    }


def _extension(product: Product) -> str:
    return PurePosixPath(product.media.file.name).suffix.lower()


class _Pipe:
    """A write-only stream whose bytes are taken out as they arrive."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        """Nothing to flush: written bytes wait in ``take``."""

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


def stream_zip(products) -> Iterator[bytes]:
    """The zip of ``products``, chunk by chunk (none larger than a read)."""
    rows = products.select_related(
        "media", "machine__provider", "item__order", "project"
    ).prefetch_related("tags").iterator(chunk_size=ITERATE_CHUNK)
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, "w", allowZip64=True) as archive:
        for product in rows:
            yield from _write_media(archive, pipe, product)
            meta = json.dumps(sidecar(product), indent=2, ensure_ascii=False)
            info = _info(product, ".json", zipfile.ZIP_DEFLATED)
            archive.writestr(info, meta)
            yield pipe.take()
    yield pipe.take()  # the central directory, written on close


def _info(
    product: Product, extension: str, compression: int, size: int = 0
) -> zipfile.ZipInfo:
    """An entry dated when the product was made."""
    made = timezone.localtime(product.created_at).timetuple()[:6]
    info = zipfile.ZipInfo(entry_stem(product) + extension, date_time=made)
    info.compress_type = compression
    info.file_size = size  # a known size lets zipfile choose zip64 up front
    return info


def _write_media(
    archive: zipfile.ZipFile, pipe: _Pipe, product: Product
) -> Iterator[bytes]:
    media, extension = product.media, _extension(product)
    compression = (zipfile.ZIP_STORED if extension in COMPRESSED
                   else zipfile.ZIP_DEFLATED)
    info = _info(product, extension, compression, media.size)
    with media.file.storage.open(media.file.name, "rb") as source, \
            archive.open(info, "w") as entry:
        while chunk := source.read(READ_CHUNK):
            entry.write(chunk)
            yield pipe.take()

"""Content-addressed files through Django's storage API: each file once.

Paths depend only on the bytes, never on a provider or its URLs, so the
same output fetched twice, or by two workers, lands on one path.

Django's FileSystemStorage does not write through a temporary file and a
rename: it opens the final path with O_EXCL and streams into it, so a
crash mid-write leaves a short file there. ``store_once`` therefore trusts
an existing file only when its size matches and otherwise writes it again.
A concurrent writer of the same bytes makes Django pick another name;
that duplicate is deleted and the content path kept. S3 uploads through
django-storages are atomic per object.
"""

import hashlib
import re
from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.core.files.storage import Storage, default_storage

DIGEST = re.compile(r"[0-9a-f]{64}")
NAME_PART = re.compile(r"[a-z0-9]{1,16}")


@dataclass(frozen=True)
class StoredFile:
    """Where a file's content lives and whether this call wrote it."""

    path: str
    digest: str
    size: int
    created: bool


def content_hash(data: bytes) -> str:
    """The SHA-256 of ``data`` as 64 lowercase hex digits."""
    return hashlib.sha256(data).hexdigest()


def content_path(digest: str, extension: str, kind: str = "files") -> str:
    """A path such as ``files/ab/cd/abcd…ef.png``, fanned out by digest."""
    suffix = extension.lower().removeprefix(".")
    if not DIGEST.fullmatch(digest):
        raise ValueError(f"digest must be 64 lowercase hex digits, got {digest!r}")
    for name, value, given in (("extension", suffix, extension), ("kind", kind, kind)):
        if not NAME_PART.fullmatch(value):
            raise ValueError(
                f"{name} must be 1-16 lowercase letters or digits, got {given!r}"
            )
    return f"{kind}/{digest[:2]}/{digest[2:4]}/{digest}.{suffix}"


def store_once(
    data: bytes,
    extension: str,
    kind: str = "files",
    storage: Storage | None = None,
) -> StoredFile:
    """Save ``data`` under its content path unless an intact copy is there."""
    storage = storage if storage is not None else default_storage
    digest = content_hash(data)
    path = content_path(digest, extension, kind)
    if _intact_copy_exists(storage, path, len(data)):
        return StoredFile(path, digest, len(data), created=False)
    saved = storage.save(path, ContentFile(data))
    if saved != path:  # another writer created the path meanwhile
        storage.delete(saved)
        return StoredFile(path, digest, len(data), created=False)
    return StoredFile(path, digest, len(data), created=True)


def _intact_copy_exists(storage: Storage, path: str, size: int) -> bool:
    """True if ``path`` holds ``size`` bytes; removes a short leftover."""
    if not storage.exists(path):
        return False
    if storage.size(path) == size:
        return True
    storage.delete(path)  # a write cut short; same path, same bytes again
    return False

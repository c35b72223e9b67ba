"""Content-addressed storage: one file per content, on a neutral path."""

import pytest
from django.conf import settings
from django.core.files.storage import FileSystemStorage

from factory.media.storage import StoredFile, content_hash, content_path, store_once

HELLO_DIGEST = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"


@pytest.fixture
def storage(tmp_path) -> FileSystemStorage:
    """A file-system storage rooted in the test's temporary directory."""
    if not settings.configured:  # FileSystemStorage reads defaults from settings
        settings.configure()
    return FileSystemStorage(location=tmp_path)


class RacingStorage(FileSystemStorage):
    """Answers the first ``exists`` with False, as if a writer raced ahead."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.stale_answers = 1

    def exists(self, name: str) -> bool:
        if self.stale_answers:
            self.stale_answers -= 1
            return False
        return super().exists(name)


def _files(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_content_hash_is_sha256_hex():
    assert content_hash(b"hello") == HELLO_DIGEST


def test_content_path_fans_out_by_digest():
    assert content_path(HELLO_DIGEST, "png") == f"files/2c/f2/{HELLO_DIGEST}.png"
    thumb = content_path(HELLO_DIGEST, ".WEBP", kind="thumbs")
    assert thumb == f"thumbs/2c/f2/{HELLO_DIGEST}.webp"


@pytest.mark.parametrize(
    ("digest", "extension", "kind", "message"),
    [
        ("abc", "png", "files", "digest must be 64 lowercase hex digits, got 'abc'"),
        (HELLO_DIGEST.upper(), "png", "files", "digest must be 64 lowercase hex digits"),
        (HELLO_DIGEST, "../png", "files", r"extension must be .* got '\.\./png'"),
        (HELLO_DIGEST, "", "files", "extension must be 1-16 lowercase letters or digits, got ''"),
        (HELLO_DIGEST, "png", "a/b", "kind must be 1-16 lowercase letters or digits, got 'a/b'"),
    ],
)
def test_content_path_refuses_unsafe_parts(digest, extension, kind, message):
    with pytest.raises(ValueError, match=message):
        content_path(digest, extension, kind)


def test_same_content_is_stored_once(storage, tmp_path):
    first = store_once(b"hello", "png", storage=storage)
    second = store_once(b"hello", "png", storage=storage)
    path = f"files/2c/f2/{HELLO_DIGEST}.png"
    assert first == StoredFile(path, HELLO_DIGEST, 5, created=True)
    assert second == StoredFile(path, HELLO_DIGEST, 5, created=False)
    assert _files(tmp_path) == [path]
    assert (tmp_path / path).read_bytes() == b"hello"


def test_different_content_gets_different_paths(storage, tmp_path):
    store_once(b"hello", "png", storage=storage)
    other = store_once(b"world", "png", storage=storage)
    assert other.created is True
    assert len(_files(tmp_path)) == 2


def test_thumbnails_live_apart_from_files(storage, tmp_path):
    stored = store_once(b"hello", "webp", kind="thumbs", storage=storage)
    assert stored.path == f"thumbs/2c/f2/{HELLO_DIGEST}.webp"
    assert _files(tmp_path) == [stored.path]


def test_short_leftover_of_a_failed_write_is_replaced(storage, tmp_path):
    path = tmp_path / content_path(HELLO_DIGEST, "png")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"he")
    stored = store_once(b"hello", "png", storage=storage)
    assert stored.created is True
    assert path.read_bytes() == b"hello"


def test_racing_writer_leaves_one_copy(storage, tmp_path):
    store_once(b"hello", "png", storage=storage)
    racing = RacingStorage(location=tmp_path)
    stored = store_once(b"hello", "png", storage=racing)
    assert stored.created is False
    assert stored.path == f"files/2c/f2/{HELLO_DIGEST}.png"
    assert _files(tmp_path) == [stored.path]


def test_default_storage_is_used_without_one(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "default"
    stored = store_once(b"hello", "png")
    assert (tmp_path / "default" / stored.path).read_bytes() == b"hello"

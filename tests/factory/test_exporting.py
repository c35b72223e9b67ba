"""Products as a streamed zip: entries, sidecars, compression, memory, queries."""
import io
import json
import os
import subprocess
import sys
import tracemalloc
import zipfile

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from factory.exporting import plan_zip, sidecar, stream_zip
from factory.models import MediaFile, Product, Project, Tag
from tests.artfactory.test_settings import _start
from tests.conftest import ROOT
from tests.factory.media.test_s3_storage import bucket, keys, moto_url  # noqa: F401
from tests.gallery import bulk_products, produce


def _unzip(products) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(b"".join(stream_zip(products))))


def large_products(count: int, size: int) -> list[Product]:
    """``count`` products, each with its own ``size``-byte stored file."""
    template = bulk_products(count)
    for index, product in enumerate(template):
        name = default_storage.save(f"files/big-{index}.png", ContentFile(os.urandom(size)))
        product.media = MediaFile.objects.create(
            content_hash=f"b{index:063x}", file=name, media_type="image",
            content_type="image/png", size=size,
        )
        product.save(update_fields=["media"])
    return template


@pytest.mark.django_db
def test_zip_holds_each_file_beside_a_sidecar_matching_the_product(catalog):
    images = produce("demo-image", 2)
    clip = produce("demo-video", 1)[0]
    tune = produce("demo-audio", 1)[0]
    project = Project.objects.create(name="Harbour")
    first = images[0]
    first.set_rating(4)
    first.set_favorite(True)
    first.project = project
    first.notes = "keep"
    first.save(update_fields=["project", "notes"])
    first.tags.set([Tag.objects.create(name="sea"), Tag.objects.create(name="dawn")])

    archive = _unzip(Product.objects.all())
    names = archive.namelist()
    assert len(names) == len(set(names)) == 8
    for product in [*images, clip, tune]:
        stem = f"{product.pk}-{product.machine.slug}"
        extension = os.path.splitext(product.media.file.name)[1]
        with product.media.file.open("rb") as stored:
            assert archive.read(stem + extension) == stored.read()
        meta = json.loads(archive.read(stem + ".json"))
        assert meta["file"] == stem + extension
        assert meta["seed"] == product.seed
        assert meta["parameters"] == product.parameters
        assert meta["machine"] == {"slug": product.machine.slug,
                                   "name": product.machine.name}
        assert meta["provider"] == "demo"
        assert meta["order"] == {"id": product.item.order_id,
                                 "name": str(product.item.order)}
        assert meta["item_id"] == product.item_id
        assert meta["content_hash"] == product.media.content_hash

    meta = json.loads(archive.read(f"{first.pk}-demo-image.json"))
    assert (meta["rating"], meta["favorite"], meta["project"], meta["notes"]) == (
        4, True, "Harbour", "keep")
    assert meta["tags"] == ["dawn", "sea"]
    assert meta["prompt"] == first.prompt
    assert meta["created_at"] == first.created_at.isoformat()
    kinds = {info.filename.rsplit(".", 1)[1]: info.compress_type
             for info in archive.infolist()}
    assert kinds["png"] == kinds["mp4"] == zipfile.ZIP_STORED
    assert kinds["json"] == kinds["wav"] == zipfile.ZIP_DEFLATED
    assert archive.testzip() is None


@pytest.mark.django_db
def test_sidecar_of_a_product_without_project_or_curation(catalog):
    product = produce("demo-image", 1)[0]
    meta = sidecar(Product.objects.select_related(
        "media", "machine__provider", "item__order", "project").get(pk=product.pk))
    assert (meta["project"], meta["rating"], meta["favorite"], meta["tags"]) == (
        None, None, False, [])


@pytest.mark.django_db
def test_plan_counts_and_sums_media_sizes_and_knows_the_cap(catalog, settings):
    large_products(3, 1000)
    settings.ZIP_MAX_PRODUCTS = 2
    plan = plan_zip(Product.objects.all())
    assert (plan.count, plan.total_bytes, plan.too_many) == (3, 3000, True)
    assert plan.refusal == ("3 products match; a zip holds at most 2. "
                            "Select fewer or narrow the filter.")
    assert plan_zip(Product.objects.none()).refusal == "No products to download."
    settings.ZIP_MAX_PRODUCTS = 3
    assert plan_zip(Product.objects.all()).refusal == ""


@pytest.mark.django_db
def test_zip_streams_without_holding_the_archive_in_memory(catalog):
    size, count = 2 * 1024 * 1024, 12
    large_products(count, size)
    total, chunks, biggest = 0, 0, 0
    tracemalloc.start()
    try:
        for chunk in stream_zip(Product.objects.all()):
            total += len(chunk)
            chunks += 1
            biggest = max(biggest, len(chunk))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total > count * size
    assert chunks > count * 4  # progressively, many chunks per file
    assert biggest <= 300 * 1024
    assert peak < 4 * 1024 * 1024, peak  # the archive is 24 MB


@pytest.mark.django_db
def test_zip_queries_do_not_grow_with_the_products(
    catalog, django_assert_max_num_queries
):
    large_products(30, 10)
    with django_assert_max_num_queries(4):
        archive = b"".join(stream_zip(Product.objects.all()))
    assert len(zipfile.ZipFile(io.BytesIO(archive)).namelist()) == 60


@pytest.mark.django_db
def test_zip_reads_media_from_s3_in_chunks(catalog, bucket, monkeypatch, settings):
    monkeypatch.setattr("factory.exporting.READ_CHUNK", 64 * 1024)
    settings.STORAGES["default"]["OPTIONS"]["max_memory_size"] = 100 * 1024
    data = os.urandom(300 * 1024)
    product = large_products(1, 10)[0]
    name = default_storage.save("files/on-s3.png", ContentFile(data))
    MediaFile.objects.filter(pk=product.media_id).update(file=name, size=len(data))
    assert keys(bucket) == sorted(["files/big-0.png", "files/on-s3.png"])
    chunks = list(stream_zip(Product.objects.all()))
    assert len(chunks) > 4
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert archive.read(f"{product.pk}-demo-image.png") == data
    assert json.loads(archive.read(f"{product.pk}-demo-image.json"))["size"] == len(data)


def test_zip_cap_and_s3_spooling_come_from_settings():
    bad = _start(ZIP_MAX_PRODUCTS="many")
    assert "ZIP_MAX_PRODUCTS='many' is malformed" in bad.stderr
    shown = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); "
         "from django.conf import settings as s; print(s.ZIP_MAX_PRODUCTS, "
         "s.STORAGES['default']['OPTIONS']['max_memory_size'])"],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "artfactory.settings",
             "ZIP_MAX_PRODUCTS": "50", "AWS_STORAGE_BUCKET_NAME": "art"},
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert shown.stdout.split() == ["50", str(8 * 1024 * 1024)], shown.stderr

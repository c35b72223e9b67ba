"""Content-addressed storage and a whole collection on S3, served by moto."""
import uuid

import boto3
import pytest
from django.db import DatabaseError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from moto.server import ThreadedMotoServer

from factory.media.storage import content_hash, content_path, store_once
from factory.models import (
    FactoryMachine,
    ItemStatus,
    MediaFile,
    Order,
    OrderItem,
    OrderStatus,
    Product,
)
from factory.production.collect import collect_outputs
from factory.providers.demo import DemoBackend

REGION = "us-east-1"


@pytest.fixture(scope="module")
def moto_url():
    """An S3-compatible server on a free 127.0.0.1 port."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(moto_url, settings, monkeypatch, tmp_path):
    """A fresh bucket, made the default storage as settings.py would."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
    }.items():
        monkeypatch.setenv(name, value)
    name = f"art-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=moto_url, region_name=REGION)
    client.create_bucket(Bucket=name)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {"bucket_name": name, "endpoint_url": moto_url,
                        "region_name": REGION, "file_overwrite": False},
        },
    }
    return client, name


def keys(bucket) -> list[str]:
    client, name = bucket
    listing = client.list_objects_v2(Bucket=name)
    return sorted(entry["Key"] for entry in listing.get("Contents", []))


def read(bucket, key: str) -> bytes:
    client, name = bucket
    return client.get_object(Bucket=name, Key=key)["Body"].read()


def test_default_storage_is_the_bucket(bucket):
    default_storage.save("probe.txt", ContentFile(b"x"))
    assert keys(bucket) == ["probe.txt"]


def test_store_once_writes_one_object_per_content(bucket):
    first = store_once(b"hello", "png")
    second = store_once(b"hello", "png")

    path = content_path(content_hash(b"hello"), "png")
    assert (first.path, first.created) == (path, True)
    assert (second.path, second.created) == (path, False)
    assert keys(bucket) == [path]
    assert read(bucket, path) == b"hello"


def test_store_once_replaces_a_short_object(bucket):
    client, name = bucket
    path = content_path(content_hash(b"hello world"), "png")
    client.put_object(Bucket=name, Key=path, Body=b"hello")

    stored = store_once(b"hello world", "png")

    assert stored.created is True
    assert keys(bucket) == [path]
    assert read(bucket, path) == b"hello world"


@pytest.fixture
def demo_item(catalog, lead, redis_db):
    """A two-image demo item in ``collecting``, its request already done."""
    machine = FactoryMachine.objects.get(slug="demo-image")
    params = {"prompt": "a quiet harbour at dawn", "width": 96, "height": 64,
              "num_images": 2, "seed": 3}
    order = Order.objects.create(machine=machine, prompt=params["prompt"],
                                 status=OrderStatus.RUNNING, created_by=lead)
    return OrderItem.objects.create(
        order=order, machine=machine, index=0, parameters=params, seed=3,
        status=ItemStatus.COLLECTING,
        request_id=DemoBackend().submit(machine, params),
    )


@pytest.mark.django_db
def test_demo_item_is_collected_into_the_bucket(bucket, demo_item):
    collect_outputs(demo_item)

    demo_item.refresh_from_db()
    assert demo_item.status == ItemStatus.COMPLETED, demo_item.last_error
    media = [p.media for p in Product.objects.filter(item=demo_item)]
    assert len(media) == 2
    assert keys(bucket) == sorted(
        [m.file.name for m in media] + [m.thumbnail.name for m in media])
    for row in media:
        assert content_hash(read(bucket, row.file.name)) == row.content_hash
        with row.file.open("rb") as handle:  # through Django's storage API
            assert content_hash(handle.read()) == row.content_hash


@pytest.mark.django_db
def test_collecting_again_adds_nothing_to_the_bucket(bucket, demo_item):
    collect_outputs(demo_item)
    before = keys(bucket)

    collect_outputs(demo_item)

    assert Product.objects.filter(item=demo_item).count() == 2
    assert MediaFile.objects.count() == 2
    assert keys(bucket) == before


@pytest.mark.django_db
def test_objects_of_a_product_that_failed_to_save_are_deleted(
    bucket, demo_item, monkeypatch
):
    create = Product.objects.create

    def lose_connection_on_second(**fields):
        if fields["output_index"] == 1:
            raise DatabaseError("server closed the connection unexpectedly")
        return create(**fields)

    monkeypatch.setattr(Product.objects, "create", lose_connection_on_second)

    with pytest.raises(DatabaseError):
        collect_outputs(demo_item)

    first = Product.objects.get(item=demo_item).media
    assert keys(bucket) == sorted([first.file.name, first.thumbnail.name])


@pytest.fixture
def stable_bucket(bucket, settings):
    """The bucket behind the storage settings.py picks for S3."""
    settings.STORAGES["default"]["BACKEND"] = "factory.media.s3.StableUrlS3Storage"
    settings.STORAGES["default"]["OPTIONS"]["querystring_expire"] = 3600
    settings.MEDIA_URL_WINDOW_SECONDS = 600
    return bucket


def _storage():
    from django.core.files.storage import storages

    return storages.create_storage(storages.backends["default"])


def test_signed_urls_stay_the_same_within_a_window(stable_bucket, monkeypatch):
    storage = _storage()
    storage.save("thumbs/a.webp", ContentFile(b"thumb"))
    start = 1_800_000_000  # a window boundary: divisible by 600
    monkeypatch.setattr("factory.media.s3.time.time", lambda: start + 5)
    first = storage.url("thumbs/a.webp")
    monkeypatch.setattr("factory.media.s3.time.time", lambda: start + 595)
    assert storage.url("thumbs/a.webp") == first
    assert "X-Amz-Expires=4200" in first  # the window plus querystring_expire
    monkeypatch.setattr("factory.media.s3.time.time", lambda: start + 605)
    assert storage.url("thumbs/a.webp") != first


def test_a_stable_url_downloads_the_file_now(stable_bucket):
    import httpx

    storage = _storage()
    storage.save("thumbs/b.webp", ContentFile(b"thumb-b"))
    response = httpx.get(storage.url("thumbs/b.webp"))
    assert response.status_code == 200 and response.content == b"thumb-b"


def test_only_the_signing_thread_sees_the_frozen_clock():
    import threading

    import botocore.auth

    from factory.media.s3 import signing_clock

    seen = []
    with signing_clock(0):
        assert botocore.auth.get_current_datetime().year == 1970
        thread = threading.Thread(target=lambda: seen.append(
            botocore.auth.get_current_datetime().year))
        thread.start()
        thread.join()
    assert seen[0] > 2000
    assert botocore.auth.get_current_datetime().year > 2000


def test_s3_settings_cache_objects_for_good_and_sign_for_long():
    import json
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = ("import django, json; django.setup(); from django.conf import settings; "
            "print(json.dumps(settings.STORAGES['default']))")
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "artfactory.settings",
             "AWS_STORAGE_BUCKET_NAME": "art"}, timeout=60, check=True,
    )
    storage = json.loads(out.stdout.strip().splitlines()[-1])
    assert storage["BACKEND"] == "factory.media.s3.StableUrlS3Storage"
    assert storage["OPTIONS"]["querystring_expire"] == 24 * 3600
    assert "immutable" in storage["OPTIONS"]["object_parameters"]["CacheControl"]

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

"""Collecting fal items whose outputs are hostile fails them and stores nothing."""
import re
import socket
from pathlib import Path
from typing import Any

import pytest
from django.db import DatabaseError
from django.utils import timezone

from factory.models import (
    EventKind,
    FactoryMachine,
    ItemStatus,
    MediaFile,
    Order,
    OrderItem,
    OrderStatus,
    Product,
)
from factory.production.collect import collect_outputs
from factory.providers.fal import FalBackend
from tests.fakes.base import Fault
from tests.fakes.fal import FakeFal, Job
from tests.states import put

MB = 1024 * 1024


class HostileFal(FakeFal):
    """FakeFal with more output faults: cut-off files and file:// URLs.

    "truncated" halves every file; "second_truncated" only output 1;
    "file_url" lists ``file:///etc/passwd`` as the output URL.
    """

    def _file(self, job: Job, index: int, data: bytes, content_type: str,
              ext: str) -> dict[str, Any]:
        if job.fault == "truncated" or (job.fault == "second_truncated" and index):
            data = data[: len(data) // 2]
        entry = super()._file(job, index, data, content_type, ext)
        if job.fault == "file_url":
            entry["url"] = "file:///etc/passwd"
        return entry


@pytest.fixture
def decoy():
    """A listening port on 127.0.0.1 that a hostile redirect points at."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        yield listener


def was_reached(listener: socket.socket) -> bool:
    """Whether anything connected to ``listener``."""
    try:
        listener.accept()[0].close()
    except BlockingIOError:
        return False
    return True


@pytest.fixture
def fal(settings, monkeypatch, decoy):
    """A HostileFal that finishes at once; only its own port is downloadable."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    fake = HostileFal(key="test-key", polls_per_stage=0).start()
    fake.oversize_bytes = 2 * MB
    # The fake redirects to its own port by default, which tests exempt.
    port = decoy.getsockname()[1]
    fake.loopback_target = f"http://127.0.0.1:{port}/files/{{name}}"
    settings.FAL_KEY = "test-key"
    settings.FAL_QUEUE_URL = fake.url + "/"
    settings.FAL_API_URL = fake.url
    settings.DOWNLOAD_ALLOW_HTTP = True
    settings.DOWNLOAD_ALLOWED_PRIVATE_HOSTS = [fake.url.removeprefix("http://")]
    settings.DOWNLOAD_MAX_BYTES = 1 * MB
    settings.DOWNLOAD_TIMEOUT_SECONDS = 10
    yield fake
    fake.stop()


@pytest.fixture
def collecting_item(catalog, lead, fal):
    """Make a fal item in ``collecting`` whose request the fake has finished."""

    def make(fault: str | None = None, images: int = 1) -> OrderItem:
        machine = FactoryMachine.objects.get(slug="fal-flux-dev")
        params = {**machine.defaults, "prompt": "a lighthouse at dusk",
                  "image_size": "square", "num_images": images,
                  "output_format": "png", "seed": 5}
        request_id = FalBackend().submit(machine, params)
        fal.jobs[request_id].fault = fault
        order = Order.objects.create(
            machine=machine, prompt=params["prompt"], status=OrderStatus.RUNNING,
            created_by=lead,
        )
        return OrderItem.objects.create(
            order=order, machine=machine, index=0, parameters=params, seed=5,
            status=ItemStatus.COLLECTING, request_id=request_id,
        )

    return make


def stored_files(media_root: Path) -> list[str]:
    if not Path(media_root).exists():
        return []
    return sorted(str(p.relative_to(media_root))
                  for p in Path(media_root).rglob("*") if p.is_file())


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("redirect_loopback", r"output 0: refused redirect to 127\.0\.0\.1: "
                              r"loopback address"),
        ("redirect_metadata", r"output 0: refused redirect to 169\.254\.169\.254: "
                              r"link-local address"),
        ("file_url", r"output 0: refused download from file:///etc/passwd: "
                     r"file URLs are not fetched, only https and http"),
        ("oversized", r"output 0: output larger than 1 MB: 127\.0\.0\.1 announced "
                      r"\d+ bytes"),
        ("html", r"output 0: not a decodable image/video/audio file"),
        ("truncated", r"output 0: truncated image"),
        ("broken", r"output 0: (corrupt image|corrupt PNG|not a decodable)"),
        ("bomb", r"output 0: decompression bomb: 100000000 pixels \(limit \d+\)"),
        ("second_truncated", r"output 1: truncated image"),
    ],
)
def test_hostile_output_fails_the_item_and_stores_nothing(
    collecting_item, media_root, decoy, fault, message
):
    item = collecting_item(fault, images=2)

    collect_outputs(item)

    item.refresh_from_db()
    assert item.status == ItemStatus.FAILED
    assert re.fullmatch(message + ".*", item.last_error), item.last_error
    assert Product.objects.count() == 0
    assert MediaFile.objects.count() == 0
    assert stored_files(media_root) == []
    assert was_reached(decoy) is False
    order = Order.objects.get(pk=item.order_id)
    assert order.status == OrderStatus.DONE_WITH_FAILURES


@pytest.mark.django_db
def test_redirect_to_a_file_url_fails_the_item(collecting_item, fal, media_root):
    fal.metadata_target = "file:///etc/passwd"
    item = collecting_item("redirect_metadata")

    collect_outputs(item)

    item.refresh_from_db()
    assert item.status == ItemStatus.FAILED
    assert item.last_error == (
        "output 0: refused redirect to file:///etc/passwd: "
        "file URLs are not fetched, only https and http"
    )
    assert stored_files(media_root) == []


@pytest.mark.django_db
def test_two_good_images_become_two_products(collecting_item, media_root):
    item = collecting_item(images=2)

    collect_outputs(item)

    item.refresh_from_db()
    assert item.status == ItemStatus.COMPLETED, item.last_error
    assert Order.objects.get(pk=item.order_id).status == OrderStatus.DONE
    products = list(Product.objects.filter(item=item).order_by("output_index"))
    assert [p.output_index for p in products] == [0, 1]
    assert [p.seed for p in products] == [5, 5]
    media = {p.media.file.name for p in products} | {
        p.media.thumbnail.name for p in products}
    assert stored_files(media_root) == sorted(media)
    assert len(media) == 4
    assert all(p.media.width == 128 and p.media.content_type == "image/png"
               for p in products)


@pytest.mark.django_db
def test_collecting_again_adds_nothing(collecting_item, media_root):
    item = collecting_item(images=2)
    collect_outputs(item)
    files = stored_files(media_root)

    collect_outputs(item)

    assert Product.objects.filter(item=item).count() == 2
    assert MediaFile.objects.count() == 2
    assert stored_files(media_root) == files


@pytest.mark.django_db
def test_files_of_a_product_that_failed_to_save_are_removed(
    collecting_item, media_root, monkeypatch
):
    item = collecting_item(images=2)
    create = Product.objects.create

    def lose_connection_on_second(**fields):
        if fields["output_index"] == 1:
            raise DatabaseError("server closed the connection unexpectedly")
        return create(**fields)

    monkeypatch.setattr(Product.objects, "create", lose_connection_on_second)

    with pytest.raises(DatabaseError, match="server closed the connection"):
        collect_outputs(item)

    first = Product.objects.get(item=item)
    assert first.output_index == 0
    assert MediaFile.objects.count() == 1
    assert stored_files(media_root) == sorted(
        [first.media.file.name, first.media.thumbnail.name])


def busy_files(fal: FakeFal, times: int, **headers: str) -> None:
    """The fake's file host answers 503 to the next ``times`` downloads."""
    fal.faults.push("file", *[Fault("status", status=503, body={"detail": "busy"},
                                    headers=headers)] * times)


@pytest.mark.django_db
def test_a_busy_file_host_sends_the_item_back_to_be_collected_later(
    collecting_item, fal, media_root
):
    """A 503 on the download is no verdict on the output: the item goes back
    to be polled and collected again, and completes with a clean record."""
    item = collecting_item()
    busy_files(fal, 1, **{"Retry-After": "12"})

    collect_outputs(item)

    item.refresh_from_db()
    assert item.status == ItemStatus.SUBMITTED
    assert item.last_error == ("download failed, trying again: "
                               "output 0: HTTP 503 from 127.0.0.1")
    wait = (item.lease_until - timezone.now()).total_seconds()
    assert 10 < wait <= 12  # the host's Retry-After
    assert Product.objects.count() == 0 and stored_files(media_root) == []

    put(item, ItemStatus.COLLECTING)  # the foreman's next poll
    collect_outputs(OrderItem.objects.get(pk=item.pk))

    item.refresh_from_db()
    assert item.status == ItemStatus.COMPLETED and item.last_error == ""
    assert Product.objects.filter(item=item).count() == 1
    assert list(item.events.values_list("kind", flat=True)) == [EventKind.READ]


@pytest.mark.django_db
def test_a_file_host_busy_for_good_fails_the_item_after_its_tries(
    collecting_item, fal, media_root, settings
):
    settings.PRODUCTION_DOWNLOAD_TRIES = 3
    item = collecting_item()
    busy_files(fal, 3)
    waits = []
    for _ in range(2):
        collect_outputs(OrderItem.objects.get(pk=item.pk))
        item.refresh_from_db()
        assert item.status == ItemStatus.SUBMITTED
        waits.append(round((item.lease_until - timezone.now()).total_seconds()))
        put(item, ItemStatus.COLLECTING)

    collect_outputs(OrderItem.objects.get(pk=item.pk))

    item.refresh_from_db()
    assert waits == [5, 20]  # PRODUCTION_RETRY_DELAYS
    assert item.status == ItemStatus.FAILED
    assert item.last_error == ("output 0: HTTP 503 from 127.0.0.1 "
                               "(gave up after 3 tries)")
    assert stored_files(media_root) == []

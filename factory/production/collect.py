"""Collect a completed item: fetch outputs, store each file once, record products.

Safe to rerun at any point: files are content-addressed and products are
unique per ``(item, output_index)``, so a second run adds nothing.
"""
import logging

from django.db import IntegrityError, transaction

from factory.media.inspect import MediaError, MediaInfo, probe
from factory.media.metadata import a1111_text, embed_parameters
from factory.media.storage import store_once
from factory.media.thumbnails import make_thumbnail
from factory.models import ItemStatus, MediaFile, OrderItem, Product
from factory.production.progress import refresh_order
from factory.production.queues import enqueue_follow
from factory.production.submit import fail_item
from factory.providers import get_backend
from factory.providers.base import ProviderError, RemoteOutput, TransientError

log = logging.getLogger(__name__)


def collect_outputs(item: OrderItem) -> None:
    """Store every output of a claimed ``collecting`` item and complete it."""
    backend = get_backend(item.machine.provider.slug)
    try:
        outputs = backend.result(item.machine, item.request_id)
    except TransientError as exc:
        item._transition(ItemStatus.SUBMITTED, last_error=str(exc))
        enqueue_follow(item.pk, delay=exc.retry_after or 5)
        return
    except ProviderError as exc:
        fail_item(item, str(exc))
        return
    if not outputs:
        fail_item(item, "the provider returned no outputs")
        return
    for index, output in enumerate(outputs):
        try:
            store_output(item, index, output)
        except MediaError as exc:
            fail_item(item, f"output {index}: {exc}")
            return
    item.mark_completed(cost=item.cost)
    refresh_order(item.order_id)


def _fetch(output: RemoteOutput) -> bytes:
    if output.content is not None:
        return output.content
    raise MediaError(f"remote download of {output.url!r} is not supported yet")


def _store_media(data: bytes, info: MediaInfo) -> MediaFile:
    stored = store_once(data, info.extension)
    thumb = store_once(make_thumbnail(data, info), "webp", kind="thumbs")
    media, _ = MediaFile.objects.get_or_create(
        content_hash=stored.digest,
        defaults={
            "file": stored.path, "thumbnail": thumb.path,
            "media_type": info.media_type, "content_type": info.content_type,
            "size": stored.size, "width": info.width, "height": info.height,
            "duration": info.duration_seconds,
        },
    )
    return media


def store_output(item: OrderItem, index: int, output: RemoteOutput) -> Product:
    """Decode-check, embed parameters, store once and record the product."""
    existing = Product.objects.filter(item=item, output_index=index).first()
    if existing is not None:
        return existing
    data = _fetch(output)
    info = probe(data)
    params = item.parameters
    if info.media_type == "image":
        text = a1111_text(
            str(params.get("prompt", "")), str(params.get("negative_prompt", "")),
            {**params, "model": item.machine.endpoint_id},
        )
        data = embed_parameters(data, info, text, params)
    media = _store_media(data, info)
    try:
        with transaction.atomic():
            return Product.objects.create(
                item=item, output_index=index, media=media, machine=item.machine,
                project=item.order.project, media_type=info.media_type,
                prompt=str(params.get("prompt", "")), parameters=params,
                seed=output.seed if output.seed is not None else item.seed,
                cost=item.cost if index == 0 else None,
            )
    except IntegrityError:
        return Product.objects.get(item=item, output_index=index)

"""Collect a completed item: fetch outputs, verify them, store each file once.

Every pending output is downloaded first (providers delete outputs soon,
Replicate after one hour), then decoded, annotated and thumbnailed; only
when all of them pass is anything stored. A hostile or broken output
therefore fails the item and leaves no file behind.

Safe to rerun at any point: files are content-addressed and products are
unique per ``(item, output_index)``, so a second run adds nothing. Files
this run wrote are deleted again if no MediaFile row references them once
its rows are saved or have failed to save.
"""
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Q

from factory.media.download import UnavailableError, fetch_output
from factory.media.inspect import MediaError, MediaInfo, probe
from factory.media.metadata import a1111_text, embed_parameters
from factory.media.storage import StoredFile, store_once
from factory.media.thumbnails import make_thumbnail
from factory.models import EventKind, ItemEvent, MediaFile, OrderItem, Product
from factory.production.finish import fail_item
from factory.production.progress import refresh_order
from factory.production.queues import enqueue_follow
from factory.providers import get_backend
from factory.spending import refused_charge, settle_completed
from factory.providers.base import ProviderError, RemoteOutput, TransientError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VerifiedOutput:
    """An output proven to decode, with parameters embedded and a preview."""

    data: bytes
    info: MediaInfo
    thumbnail: bytes
    seed: int | None


def collect_outputs(item: OrderItem) -> None:
    """Store every output of a claimed ``collecting`` item and complete it.

    Fails the item, storing nothing, when any output is refused.
    """
    outputs = _remote_outputs(item)
    if outputs is None:
        return
    try:
        verified = verify_outputs(item, outputs)
    except UnavailableError as exc:
        if _download_later(item, exc):
            return
        fail_item(item, f"{exc} (gave up after {settings.PRODUCTION_DOWNLOAD_TRIES} "
                        "tries)", refused_charge(item, outputs))
        return
    except MediaError as exc:
        # The provider finished, so it billed; only a unit the answer
        # itself measures (outputs, run time) can be charged here.
        fail_item(item, str(exc), refused_charge(item, outputs))
        return
    for index, output in verified.items():
        record_output(item, index, output)
    settle_completed(item, outputs)
    refresh_order(item.order_id)


DOWNLOAD_LATER = "download failed, trying again: "


def _download_later(item: OrderItem, exc: UnavailableError) -> bool:
    """Put the item back to be polled and collected again, unless it has
    used its tries; whether it was put back."""
    tried = ItemEvent.objects.filter(
        item_id=item.pk, kind=EventKind.READ, message__startswith=DOWNLOAD_LATER
    ).count() + 1
    if tried >= settings.PRODUCTION_DOWNLOAD_TRIES:
        return False
    delays = settings.PRODUCTION_RETRY_DELAYS
    delay = exc.retry_after if exc.retry_after is not None else delays[
        min(tried, len(delays)) - 1]
    message = DOWNLOAD_LATER + str(exc)
    if OrderItem.objects.filter(pk=item.pk).back_to_polling(message):
        ItemEvent.objects.record(item.pk, EventKind.READ, message)
        enqueue_follow(item.pk, delay=delay)
    return True


def _remote_outputs(item: OrderItem) -> list[RemoteOutput] | None:
    """The provider's output list, or None once a failure was handled."""
    backend = get_backend(item.machine.provider.slug)
    try:
        outputs = backend.result(item.machine, item.request_id)
    except TransientError as exc:
        # Polled again, and collected once the results can be read.
        if OrderItem.objects.filter(pk=item.pk).back_to_polling(str(exc)):
            ItemEvent.objects.record(item.pk, EventKind.READ, str(exc))
            enqueue_follow(item.pk, delay=exc.retry_after or 5)
        return None
    except ProviderError as exc:
        fail_item(item, str(exc))
        return None
    if not outputs:
        fail_item(item, "the provider returned no outputs")
        return None
    return outputs


def verify_outputs(
    item: OrderItem, outputs: list[RemoteOutput]
) -> dict[int, VerifiedOutput]:
    """Download every output not yet a product, then prove each decodes."""
    done = set(item.products.values_list("output_index", flat=True))
    fetched: dict[int, bytes] = {}
    for index, output in enumerate(outputs):
        if index not in done:
            with _naming_output(index):
                fetched[index] = _fetch(output)
    verified = {}
    for index, data in fetched.items():
        with _naming_output(index):
            verified[index] = verify_output(item, data, outputs[index].seed)
    return verified


@contextmanager
def _naming_output(index: int) -> Iterator[None]:
    """Prefix a MediaError's message with the output it concerns."""
    try:
        yield
    except UnavailableError as exc:
        raise UnavailableError(f"output {index}: {exc}", exc.retry_after) from exc
    except MediaError as exc:
        raise MediaError(f"output {index}: {exc}") from exc


def _fetch(output: RemoteOutput) -> bytes:
    """Inline bytes as given, otherwise a guarded download."""
    if output.content is not None:
        return output.content
    if not output.url:
        raise MediaError("the provider gave neither a URL nor content")
    return fetch_output(output.url)


def verify_output(item: OrderItem, data: bytes, seed: int | None) -> VerifiedOutput:
    """Decode-check, embed the item's parameters and make the preview."""
    info = probe(data)
    params = item.parameters
    if info.media_type == "image":
        text = a1111_text(
            str(params.get("prompt", "")), str(params.get("negative_prompt", "")),
            {**params, "model": item.machine.endpoint_id},
        )
        data = embed_parameters(data, info, text, params)
    return VerifiedOutput(data, info, make_thumbnail(data, info), seed)


def store_output(item: OrderItem, index: int, output: RemoteOutput) -> Product:
    """Fetch, verify, store once and record one output; rerun-safe."""
    existing = Product.objects.filter(item=item, output_index=index).first()
    if existing is not None:
        return existing
    return record_output(item, index, verify_output(item, _fetch(output), output.seed))


def record_output(item: OrderItem, index: int, output: VerifiedOutput) -> Product:
    """Store a verified output's files and record its product."""
    files = [(output.data, output.info.extension, "files"),
             (output.thumbnail, "webp", "thumbs")]
    written: list[StoredFile] = []
    product = None
    try:
        for file in files:
            written.append(store_once(*file))
        product = _create_product(item, index, output, *written)
    finally:
        created = [f for f in written if f.created]
        if product is not None:  # its media row names these: no need to ask
            named = {product.media.file.name, product.media.thumbnail.name}
            created = [f for f in created if f.path not in named]
        _remove_unreferenced(created)
    _restore_missing(product.media, files, written)
    return product


def _create_product(
    item: OrderItem, index: int, output: VerifiedOutput,
    stored: StoredFile, thumb: StoredFile,
) -> Product:
    """The media row (shared by content) and the product, in one transaction."""
    info, params = output.info, item.parameters
    try:
        with transaction.atomic():
            media, _ = MediaFile.objects.get_or_create(
                content_hash=stored.digest,
                defaults={
                    "file": stored.path, "thumbnail": thumb.path,
                    "media_type": info.media_type, "content_type": info.content_type,
                    "size": stored.size, "width": info.width, "height": info.height,
                    "duration": info.duration_seconds,
                },
            )
            return Product.objects.create(
                item=item, output_index=index, media=media, machine=item.machine,
                project=item.order.project, media_type=info.media_type,
                prompt=str(params.get("prompt", "")), parameters=params,
                seed=output.seed if output.seed is not None else item.seed,
                cost=item.cost if index == 0 else None,
            )
    except IntegrityError:  # another run recorded this output first
        return Product.objects.get(item=item, output_index=index)


def _remove_unreferenced(created: list[StoredFile]) -> None:
    """Delete files this run wrote that no MediaFile row points to."""
    if not created:
        return
    paths = [f.path for f in created]
    try:
        used = MediaFile.objects.filter(Q(file__in=paths) | Q(thumbnail__in=paths))
        kept = {p for row in used.values_list("file", "thumbnail") for p in row}
    except DatabaseError:
        log.warning("cannot tell whether %s are in use; keeping them", paths)
        return
    for path in set(paths) - kept:
        default_storage.delete(path)


def _restore_missing(
    media: MediaFile, files: list[tuple[bytes, str, str]], written: list[StoredFile]
) -> None:
    """Write again a shared file that a failed concurrent run removed."""
    referenced = {media.file.name, media.thumbnail.name}
    for file, stored in zip(files, written):
        if stored.path in referenced and not stored.created:
            if not default_storage.exists(stored.path):
                store_once(*file)

"""Follow a submitted item to its end; resume, never resubmit."""
import time

from factory.models import ItemStatus, OrderItem
from factory.production.collect import collect_outputs
from factory.production.progress import refresh_order
from factory.production.queues import enqueue_follow
from factory.production.submit import fail_item
from factory.providers import get_backend
from factory.providers.base import ProviderError, RemoteState, TransientError

POLL_SECONDS = 0.5
IN_JOB_SECONDS = 20.0


def follow_submitted_item(item_id: int, owner: str) -> None:
    """Poll for a while; re-queue itself rather than hold a worker forever."""
    item = OrderItem.objects.select_related("machine__provider").get(pk=item_id)
    if item.status != ItemStatus.SUBMITTED:
        return  # finished, or another process is collecting it
    backend = get_backend(item.machine.provider.slug)
    deadline = time.monotonic() + IN_JOB_SECONDS
    while True:
        try:
            status = backend.status(item.machine, item.request_id)
        except TransientError as exc:
            enqueue_follow(item.pk, delay=exc.retry_after or 5)
            return
        except ProviderError as exc:
            fail_item(item, str(exc))
            return
        if status.is_final:
            break
        if time.monotonic() > deadline:
            enqueue_follow(item.pk, delay=POLL_SECONDS)
            return
        time.sleep(POLL_SECONDS)
    _finish(item, status.state, status.error, owner)


def _finish(item: OrderItem, state: RemoteState, error: str, owner: str) -> None:
    if state == RemoteState.FAILED:
        fail_item(item, error or "the provider reported a failure")
    elif state == RemoteState.CANCELLED:
        item._transition(ItemStatus.CANCELLED)
        refresh_order(item.order_id)
    else:
        claimed = OrderItem.objects.claim(
            item.pk, frm=(ItemStatus.SUBMITTED,), to=ItemStatus.COLLECTING,
            owner=owner,
        )
        if claimed is not None:
            collect_outputs(claimed)

"""Drive one item start to finish in this process, for debugging.

The same claims, slots and leases as workers and foremen use, so running
it next to them is safe. With its limit full the item also waits in line,
so a worker woken by a freed slot may submit it first; this then follows.
"""
import time
from collections.abc import Callable
from datetime import timedelta

from django.utils import timezone

from factory.models import ItemStatus, OrderItem
from factory.production import follow, limits
from factory.production.collect import collect_outputs
from factory.production.submit import (
    submit_claimed_item,
    submit_lease,
)
from factory.providers.base import RemoteState, TransientError

Echo = Callable[[str], None]


def process_in_foreground(
    item_id: int, owner: str, *, poll_seconds: float = 0.5,
    timeout: float = 600, echo: Echo = print,
) -> OrderItem:
    """Submit, follow and collect one item, saying what happens."""
    deadline = time.monotonic() + timeout
    item = _load(item_id)
    echo(f"item {item.pk}: {item.status}")
    if item.status == ItemStatus.PENDING:
        _submit(item, owner, poll_seconds, deadline, echo)
    if _load(item_id).status == ItemStatus.SUBMITTED:
        _follow(_load(item_id), owner, poll_seconds, deadline, echo)
    if _load(item_id).status == ItemStatus.COLLECTING:
        _collect(item_id, owner, echo)
    item = _load(item_id)
    echo(f"item {item.pk}: {item.status}"
         + (f": {item.last_error}" if item.last_error else ""))
    return item


def _load(item_id: int) -> OrderItem:
    return OrderItem.objects.select_related("machine__provider", "order").get(
        pk=item_id
    )


def _submit(item: OrderItem, owner: str, pause: float, deadline: float,
            echo: Echo) -> None:
    while True:
        if (not limits.cooldown_remaining(item.machine.provider.slug)
                and limits.acquire(item)):
            claimed = OrderItem.objects.claim_for_submit(item.pk, owner, submit_lease())
            if claimed is None:
                echo(f"item {item.pk}: another process took it")
                return
            submit_claimed_item(claimed)
            echo(f"item {item.pk}: {_load(item.pk).status}")
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"item {item.pk}: no free slot before the timeout")
        echo(f"item {item.pk}: waiting for a free slot")
        time.sleep(pause)


def _follow(item: OrderItem, owner: str, pause: float, deadline: float,
            echo: Echo) -> None:
    # A lease up to the deadline keeps foremen away while this one polls.
    until = timezone.now() + timedelta(seconds=max(1, deadline - time.monotonic()))
    if not OrderItem.objects.filter(pk=item.pk, status=ItemStatus.SUBMITTED).update(
        lease_owner=owner, lease_until=until
    ):
        return
    while time.monotonic() < deadline:
        outcome = follow.poll_statuses([item], threads=1)[0]
        if isinstance(outcome, TransientError):
            echo(f"item {item.pk}: status call failed, trying again: {outcome}")
        elif isinstance(outcome, Exception) or outcome.is_final:
            if getattr(outcome, "state", None) == RemoteState.COMPLETED:
                follow.start_collection(item, owner, enqueue=False)
            else:
                follow.settle(item, outcome, owner)
            return
        else:
            echo(f"item {item.pk}: {outcome.state.value}")
        time.sleep(pause)
    raise TimeoutError(f"item {item.pk}: still running at the timeout")


def _collect(item_id: int, owner: str, echo: Echo) -> None:
    item = follow.claim_collection(item_id, owner)
    if item is None:
        echo(f"item {item_id}: a worker is collecting it")
        return
    echo(f"item {item_id}: collecting")
    collect_outputs(item)

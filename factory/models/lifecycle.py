"""An order item's life cycle: its states, the moves between them, and the
one way to make a move.

Every change of an item's state is a compare-and-set update through
``ItemLifecycleQuerySet.move``: it applies only to rows still in one of
the states the move may leave (and to whatever else the queryset was
filtered by, such as the lease owner), so of two processes racing for an
item exactly one wins, and the loser learns it from the count. A move the
table does not allow raises at once; it is a bug, not a race.

``TRANSITIONS`` is the whole state machine. docs/concepts.md shows the same
table, and a test compares the two.
"""
from datetime import timedelta
from typing import Any

from django.db import models
from django.db.models import F
from django.utils import timezone


class ItemStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUBMITTING = "submitting", "Submitting"
    SUBMITTED = "submitted", "Submitted"
    COLLECTING = "collecting", "Collecting"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    SUBMIT_UNKNOWN = "submit_unknown", "Submit outcome unknown"


S = ItemStatus
FINISHED = (S.COMPLETED, S.FAILED, S.CANCELLED)

# The states each state may move to. A failed item is never revived: a
# retry is a new item pointing back at it.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    S.PENDING: (S.SUBMITTING, S.CANCELLED),
    S.SUBMITTING: (S.SUBMITTED, S.SUBMIT_UNKNOWN, S.PENDING, S.FAILED, S.CANCELLED),
    S.SUBMIT_UNKNOWN: (S.SUBMITTED, S.PENDING, S.FAILED, S.CANCELLED),
    S.SUBMITTED: (S.COLLECTING, S.FAILED, S.CANCELLED),
    S.COLLECTING: (S.COMPLETED, S.SUBMITTED, S.FAILED),
    S.COMPLETED: (),
    S.FAILED: (),
    S.CANCELLED: (),
}


def sources(to: str) -> tuple[str, ...]:
    """Every state the table lets move to ``to``."""
    return tuple(state for state, targets in TRANSITIONS.items() if to in targets)


# Items a cancel stops: those not yet finished at the provider. Collecting
# items finish, since their generation is done and paid for.
STOPPABLE = sources(S.CANCELLED)


class TransitionError(ValueError):
    """A move the state machine does not have."""


class ItemLifecycleQuerySet(models.QuerySet):
    """The named moves of an item; each returns how many rows it moved."""

    def move(self, to: str, *, frm: tuple[str, ...] | None = None, **fields: Any) -> int:
        """Move the rows still in one of ``frm`` (default: every state that
        may reach ``to``) to ``to``, writing ``fields`` in the same update.

        Leaving for a state no process holds clears the lease unless
        ``fields`` set it.
        """
        frm = sources(to) if frm is None else tuple(frm)
        wrong = [state for state in frm if to not in TRANSITIONS[state]]
        if wrong or not frm:
            raise TransitionError(f"no move from {wrong or 'nowhere'} to {to}")
        now = timezone.now()
        if to not in (S.SUBMITTING, S.COLLECTING):
            fields = {"lease_owner": "", "lease_until": None, **fields}
        return self.filter(status__in=frm).update(
            status=to, updated_at=now, **fields)

    def claim(
        self, item_id: int, *, frm: tuple[str, ...], to: str, owner: str = "",
        lease: timedelta = timedelta(minutes=10), attempt: bool = False,
    ) -> Any:
        """Move one item into a state a process holds, under its lease.

        ``attempt`` counts a provider call in the same write as the claim,
        so a process that dies right after claiming still leaves the
        evidence that money may be spent. Returns the claimed item, or
        None when another process owns it.
        """
        counted = {"attempts": F("attempts") + 1} if attempt else {}
        if not self.filter(pk=item_id).move(
            to, frm=frm, lease_owner=owner, lease_until=timezone.now() + lease,
            **counted,
        ):
            return None
        return self.select_related("machine__provider").get(pk=item_id)

    def claim_for_submit(self, item_id: int, owner: str, lease: timedelta) -> Any:
        """pending → submitting, counting the attempt in the same write."""
        return self.claim(item_id, frm=(S.PENDING,), to=S.SUBMITTING,
                          owner=owner, lease=lease, attempt=True)

    def accepted(self, request_id: str, *, frm: tuple[str, ...] = (S.SUBMITTING,),
                 **fields: Any) -> int:
        """The provider has the request: submitting (or unknown) → submitted."""
        return self.move(S.SUBMITTED, frm=frm, request_id=request_id,
                         submitted_at=timezone.now(), **fields)

    def outcome_unknown(self, message: str) -> int:
        """submitting → submit_unknown: the call may have reached the provider."""
        return self.move(S.SUBMIT_UNKNOWN, frm=(S.SUBMITTING,),
                         last_error=message[:4000])

    def back_to_pending(
        self, message: str, *, due_at: Any = None,
        frm: tuple[str, ...] = (S.SUBMITTING,),
    ) -> int:
        """Give up a claim (or an unknown outcome) to submit again, at
        ``due_at`` or as soon as a worker takes it."""
        return self.move(S.PENDING, frm=frm, last_error=message[:4000], due_at=due_at)

    def to_collect(self, lease_until: Any) -> int:
        """submitted → collecting, for exactly one collect job to claim."""
        return self.move(S.COLLECTING, frm=(S.SUBMITTED,), lease_owner="",
                         lease_until=lease_until)

    def back_to_polling(self, message: str) -> int:
        """collecting → submitted: the results could not be read yet."""
        return self.move(S.SUBMITTED, frm=(S.COLLECTING,), last_error=message[:4000])

    def complete(self, cost: Any = None) -> int:
        """collecting → completed. Nothing is wrong any more: what went
        wrong on the way stays in the item's events."""
        return self.move(S.COMPLETED, frm=(S.COLLECTING,), cost=cost,
                         completed_at=timezone.now(), last_error="")

    def fail(self, message: str) -> int:
        """Any state still driven → failed, with the reason."""
        return self.move(S.FAILED, last_error=message[:4000],
                         completed_at=timezone.now())

    def cancel(self, *, frm: tuple[str, ...] = STOPPABLE) -> int:
        """Unfinished at the provider → cancelled."""
        return self.move(S.CANCELLED, frm=frm)

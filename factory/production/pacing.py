"""When a foreman next asks a provider about a generation under way.

A fixed interval spends status calls in proportion to the number in
flight times their run time. Here the next poll follows what is known:

- queued behind others: later the further back (one poll interval more
  per four places ahead);
- running, with a typical run time for the machine: at its expected end;
- running past it, or with nothing known: the poll interval, stretched to
  a tenth of the time it has run so far (a ten-minute video is polled
  every minute, not every two seconds);
- with a webhook coming (the provider was asked to call back): never
  sooner than the fallback interval; the webhook makes the item due at
  once, and the fallback only catches a webhook that was lost.

Always at least ``MIN_WAIT`` and at most the ceiling. The typical run time
is what this foreman saw: the median of a machine's recent turnarounds
(submitted to seen finished), else the catalog's typical run time.
"""
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from statistics import median

from django.conf import settings

from factory.providers.base import RemoteState, RemoteStatus

MIN_WAIT = 0.2
# Turnarounds remembered per machine, and how many make a typical one.
WINDOW = 50
MEASURED = 3
PLACES_PER_INTERVAL = 4


@dataclass
class Pacing:
    """Intervals in seconds; defaults from settings."""

    poll: float = field(default_factory=lambda: settings.FOREMAN_POLL_SECONDS)
    ceiling: float = field(default_factory=lambda: settings.FOREMAN_MAX_POLL_SECONDS)
    fallback: float = field(
        default_factory=lambda: settings.FOREMAN_WEBHOOK_POLL_SECONDS)

    def first_poll(self, ran: float, typical: float | None, webhook: bool) -> float:
        """Seconds until the first status call of an item accepted ``ran``
        seconds ago; 0: ask now."""
        wait = typical - ran if typical is not None else 0.0
        return self._bounded(wait, webhook, low=0.0)

    def next_poll(self, status: RemoteStatus, ran: float, typical: float | None,
                  webhook: bool) -> float:
        """Seconds until the next status call of an item the provider says
        is still queued or running, ``ran`` seconds after it was accepted."""
        position = status.queue_position
        if status.state == RemoteState.QUEUED and position:
            wait = self.poll * (1 + position / PLACES_PER_INTERVAL)
        elif typical is not None and ran < typical:
            wait = typical - ran
        else:
            wait = max(self.poll, ran / 10)
        return self._bounded(wait, webhook, low=min(MIN_WAIT, self.poll))

    def _bounded(self, wait: float, webhook: bool, low: float) -> float:
        ceiling = self.ceiling
        if webhook:
            wait, ceiling = max(wait, self.fallback), max(ceiling, self.fallback)
        return min(max(wait, low), ceiling)


class RunTimes:
    """Recent turnarounds per machine, as this process saw them end."""

    def __init__(self) -> None:
        self.seen: dict[int, deque[float]] = {}

    def record(self, machine_id: int, submitted_at: datetime | None,
               now: datetime) -> None:
        if submitted_at is None:
            return
        seconds = (now - submitted_at).total_seconds()
        if seconds >= 0:
            self.seen.setdefault(machine_id, deque(maxlen=WINDOW)).append(seconds)

    def typical(self, machine) -> float | None:
        """The median of the machine's recent turnarounds once there are a
        few, else its catalog run time, else None."""
        seen = self.seen.get(machine.pk)
        if seen is not None and len(seen) >= MEASURED:
            return median(seen)
        catalog = getattr(machine, "typical_run_seconds", None)
        return float(catalog) if catalog is not None else None

"""Show RQ workers, queue depths and the items in flight per provider."""
from typing import Any

import django_rq
from django.core.management.base import BaseCommand
from django.db.models import Count
from rq import Worker

from factory.models import ItemStatus, OrderItem
from factory.production import limits
from factory.production.queues import COLLECT_QUEUE, DEFAULT_QUEUE, SUBMIT_QUEUE

FLYING = (ItemStatus.SUBMITTING, ItemStatus.SUBMITTED, ItemStatus.SUBMIT_UNKNOWN,
          ItemStatus.COLLECTING)


class Command(BaseCommand):
    help = (
        "Show RQ workers and what they run, queue depths (queued, running, "
        "failed), pending items due later, items in flight per provider, slots "
        "and cool-downs."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        self._workers()
        self._queues()
        self._in_flight()

    def _workers(self) -> None:
        workers = Worker.all(connection=django_rq.get_connection("default"))
        self.stdout.write(f"Workers: {len(workers)}")
        for worker in sorted(workers, key=lambda w: w.name):
            job = worker.get_current_job_id() or "-"
            self.stdout.write(
                f"  {worker.name}  {worker.get_state()}  "
                f"queues={','.join(worker.queue_names())}  job={job}"
            )

    def _queues(self) -> None:
        self.stdout.write("Queues:")
        for name in (SUBMIT_QUEUE, COLLECT_QUEUE, DEFAULT_QUEUE):
            queue = django_rq.get_queue(name)
            self.stdout.write(
                f"  {name}: {queue.count} queued, "
                f"{queue.started_job_registry.count} running, "
                f"{queue.failed_job_registry.count} failed"
            )
        later = OrderItem.objects.filter(
            status=ItemStatus.PENDING, due_at__isnull=False
        ).count()
        self.stdout.write(f"  due later (retries and pauses): {later}")

    def _in_flight(self) -> None:
        rows = (OrderItem.objects.filter(status__in=FLYING)
                .values_list("machine__provider__slug", "status")
                .annotate(n=Count("id")).order_by())
        counts: dict[str, dict[str, int]] = {}
        for slug, status, n in rows:
            counts.setdefault(slug, {})[status] = n
        self.stdout.write("In flight per provider:")
        if not counts:
            self.stdout.write("  none")
        for slug, by_status in sorted(counts.items()):
            listed = ", ".join(f"{s} {by_status.get(s, 0)}" for s in FLYING)
            pause = limits.cooldown_remaining(slug)
            cooling = f"; cooling down {pause:.0f}s" if pause else ""
            self.stdout.write(f"  {slug}: {listed}{cooling}")
        self.stdout.write("Slots:")
        for scope, used, limit in limits.usage():
            self.stdout.write(f"  {scope}: {used}/{limit}")

"""A live terminal view of orders and what is in flight."""
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from factory.models import FINISHED, ItemStatus, Order, OrderItem, OrderStatus
from factory.production import limits

OPEN = (OrderStatus.PLACED, OrderStatus.RUNNING)
CLEAR = "\x1b[2J\x1b[H"
BAR = 20
SHORT = {
    ItemStatus.PENDING: "pend", ItemStatus.SUBMITTING: "sub…",
    ItemStatus.SUBMITTED: "run", ItemStatus.COLLECTING: "coll",
    ItemStatus.SUBMIT_UNKNOWN: "unkn", ItemStatus.COMPLETED: "done",
    ItemStatus.FAILED: "fail", ItemStatus.CANCELLED: "canc",
}


def bar(done: int, total: int) -> str:
    filled = BAR * done // total if total else 0
    return "[" + "#" * filled + "." * (BAR - filled) + "]"


def render(recent: int) -> str:
    """One screen: open orders, the latest finished ones, slots in use."""
    orders = list(Order.objects.filter(status__in=OPEN).order_by("pk")) + list(
        Order.objects.exclude(status__in=(*OPEN, OrderStatus.DRAFT))
        .order_by("-finished_at", "-pk")[:recent]
    )
    lines = [f"Art Factory orders  {timezone.localtime():%H:%M:%S}  (Ctrl-C quits)", ""]
    for order in orders:
        counts = OrderItem.objects.filter(order=order).progress()
        total = sum(counts.values())
        finished = sum(counts[s] for s in FINISHED)
        listed = " ".join(f"{SHORT[s]} {n}" for s, n in counts.items() if n)
        lines.append(
            f"#{order.pk:<5} {str(order)[:28]:<28} {order.status:<18} "
            f"{bar(finished, total)} {finished}/{total}  {listed}"
        )
    if not orders:
        lines.append("no orders yet")
    lines += ["", "Slots: " + ("  ".join(
        f"{scope} {used}/{limit}" for scope, used, limit in limits.usage()
    ) or "none")]
    return "\n".join(lines)


class Command(BaseCommand):
    help = (
        "Show open orders with progress bars and item states, the latest "
        "finished orders and the provider slots in use, redrawn until Ctrl-C."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true",
                            help="Print one screen and exit.")
        parser.add_argument("--interval", type=float, default=2.0,
                            help="Seconds between redraws.")
        parser.add_argument("--recent", type=int, default=5,
                            help="Finished orders to show below the open ones.")

    def handle(self, *args: Any, once: bool, interval: float, recent: int,
               **options: Any) -> None:
        if once:
            self.stdout.write(render(recent))
            return
        try:
            while True:
                self.stdout.write(CLEAR + render(recent))
                self.stdout.flush()
                time.sleep(interval)
        except KeyboardInterrupt:
            self.stdout.write("")

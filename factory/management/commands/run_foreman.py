"""Run the foreman: follow in-flight items and sweep stuck ones."""
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from factory.production.foreman import Tuning, foreman_name, run_foreman


class Command(BaseCommand):
    help = (
        "Follow every in-flight item: poll providers in batches, hand finished "
        "items to collect jobs, fail failed ones and sweep stuck ones. Any "
        "number may run at once, on any host."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        defaults = Tuning()
        parser.add_argument("--tick", type=float, default=defaults.tick_seconds,
                            help="Longest rest between rounds; the foreman wakes earlier "
                                 "when an item falls due.")
        parser.add_argument("--poll", type=float, default=defaults.poll_seconds,
                            help="Seconds between two polls of a running item.")
        parser.add_argument("--batch", type=int, default=defaults.batch_size,
                            help="Items claimed per tick.")
        parser.add_argument("--sweep-every", type=int, default=defaults.sweep_every,
                            help="Run the sweeper every N ticks.")
        parser.add_argument("--threads", type=int, default=defaults.threads,
                            help="Status calls made at once.")
        parser.add_argument("--until-idle", action="store_true",
                            help="Exit once no item is left unfinished.")
        parser.add_argument("--max-seconds", type=float, default=None,
                            help="Exit after this many seconds.")
        parser.add_argument("--name", default="",
                            help="Lease owner name (default: foreman:HOST:PID).")

    def handle(self, *args: Any, **options: Any) -> None:
        tuning = Tuning(
            tick_seconds=options["tick"], poll_seconds=options["poll"],
            batch_size=options["batch"], sweep_every=options["sweep_every"],
            threads=options["threads"],
        )
        name = options["name"] or foreman_name()
        stopping = []
        previous = {
            sig: signal.signal(sig, lambda *_: stopping.append(True))
            for sig in (signal.SIGTERM, signal.SIGINT)
        }
        self.stdout.write(f"{name}: following in-flight items")
        try:
            ticks = run_foreman(
                tuning, owner=name, until_idle=options["until_idle"],
                max_seconds=options["max_seconds"], should_stop=lambda: bool(stopping),
            )
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stdout.write(f"{name}: stopped after {ticks} ticks")

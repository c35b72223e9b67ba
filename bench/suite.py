"""Run every benchmark against the database in DATABASE_URL; print JSON.

Each benchmark is a function taking no arguments and returning a list of
result rows (name, value, unit, target, note). Run through bench/run.py;
BENCH_ONLY=name,name runs only the benchmark functions of those names.
"""
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "artfactory.settings")
# The ordering benchmarks place FLUX dev orders, which are refused while
# fal has no key; nothing here calls fal (no worker takes those jobs and
# the production benchmarks empty the queues), so a placeholder will do.
os.environ.setdefault("FAL_KEY", "bench-placeholder-no-calls")


def main() -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("load_seed_data", verbosity=0)
    from bench import import_rows, ordering_bench, production_bench

    only = {name for name in os.environ.get("BENCH_ONLY", "").split(",") if name}
    rows = []
    for bench in (ordering_bench.BENCHMARKS + import_rows.BENCHMARKS
                  + production_bench.BENCHMARKS):
        if not only or bench.__name__ in only:
            rows.extend(bench())
    print(json.dumps(rows))


if __name__ == "__main__":
    main()

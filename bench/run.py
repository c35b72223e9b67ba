"""`make bench`: run the suite on SQLite and PostgreSQL, rewrite docs/benchmarks.md."""
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.own_database import DOC, PG_ADMIN_URL, fresh_database  # noqa: E402

PG_NAME = "artfactory_bench"


# The production benchmarks empty queues and slots: never a developer's Redis.
BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")


def _suite(database_url: str) -> list[dict]:
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": BENCH_REDIS_URL}
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "suite.py")], env=env, cwd=ROOT,
        capture_output=True, text=True, check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"benchmark suite failed on {database_url}:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _fresh_postgres() -> str | None:
    import psycopg

    try:
        return fresh_database(PG_NAME)
    except psycopg.OperationalError as exc:
        print(f"PostgreSQL not reachable, skipped: {exc}", file=sys.stderr)
        return None


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()} ({cpu})"


def _table(rows: list[dict]) -> str:
    lines = ["| benchmark | result | target |", "|---|---|---|"]
    for row in rows:
        value = row["value"]
        shown = f"{value:.2f} {row['unit']}" if row["unit"] != "×" else f"{value:.2f}×"
        lines.append(f"| {row['name']} | {shown} | {row.get('target', '')} |")
    return "\n".join(lines)


def main() -> None:
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        rows += _suite(f"sqlite:///{tmp}/bench.sqlite3")
    pg_url = _fresh_postgres()
    if pg_url:
        rows += _suite(pg_url)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    kept = _kept_sections()
    DOC.write_text(
        "# Benchmarks\n\n"
        "Written by `make bench` (`bench/run.py`); do not edit by hand. The ordering\n"
        "figures are the median of several runs in one process; each production figure\n"
        "is one run of a minute or so. Targets are ratios measured in the same run, so\n"
        "they hold on slower or faster machines alike.\n\n"
        f"- Date: {stamp}\n- Machine: {_machine()}\n- Command: `make bench`\n\n"
        + _table(rows) + "\n\n" + NOTES + kept,
        encoding="utf-8",
    )
    print(_table(rows))
    if pg_url:
        _own_database("P3", "p3_admin_scale.py")
        _own_database("P5", "p5_admin_load.py")


def _kept_sections() -> str:
    """The sections other benchmarks write (P3, P5, `make bench-scale`,
    `make bench-hosts`) as last written, kept until their own run replaces
    them."""
    from bench import hosts, p3_admin_scale, p5_admin_load, scale

    text = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    kept = ""
    markers = [(bench.SECTION_START, bench.SECTION_END)
               for bench in (p3_admin_scale, p5_admin_load)]
    markers += [(scale.START, scale.END), (hosts.START, hosts.END)]
    for start, end in markers:
        if start in text:
            kept += "\n" + start + text.split(start, 1)[1].split(end, 1)[0] + end + "\n"
    return kept


def _own_database(name: str, script: str) -> None:
    """P3 and P5 fill a PostgreSQL database of their own and rewrite their section."""
    env = {**os.environ, "BENCH_REDIS_URL": BENCH_REDIS_URL, "REDIS_URL": BENCH_REDIS_URL,
           "BENCH_PG_URL": PG_ADMIN_URL}
    out = subprocess.run([sys.executable, str(ROOT / "bench" / script)],
                         env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{name} benchmark failed:\n{out.stderr[-4000:]}")
    print(out.stdout)


NOTES = """## What is measured

- **place ÷ bulk_create**: `place_order` on a 10,000-item FLUX dev order (prompt
  template with a variant and a token, a two-group sweep, counting-up seeds):
  arithmetic count, prompt expansion, translation, per-item validation with a
  compiled schema, cost estimates and one transaction of batched inserts,
  versus a plain `bulk_create` of the same 10,000 prepared rows. Queueing in
  Redis is left out of both.
- **refuse a 10^6-item sweep**: `plan_order` on a sweep of 1,000 × 1,000 values
  over the ceiling; the count is arithmetic, so nothing is built.
- **import 10,000 rows**: a CSV of 10,000 wildcards (name, a JSON list of
  values, a description) through the admin's import path
  (`bench/import_rows.py`): reading and checking the file, the dry run that
  checks every row and writes nothing, the confirmed import in one
  transaction, and a second dry run that finds every row unchanged.
- **P1 latency hiding** (SQLite pass only: it takes minutes): 1,000 demo
  images (64×64, one each) from a provider that takes 5 s per generation
  and allows 100 at once, made by two real `rqworker` processes and one
  `run_foreman --tick 0.2 --poll 0.5`, all started before the clock runs.
  Wall time from `place_order` until every item is completed, divided by
  the provider's own bound (1,000 ÷ 100 × 5 s = 50 s). The baseline is the
  same two workers running jobs that submit and then wait for their own
  generation (as `fal_client.subscribe` does) before collecting; a sample
  of 20 items is timed and scaled linearly to 1,000.
- **P2 overhead** (SQLite pass only): 1,000 demo images (128×128) from a
  provider with no latency and no slot limit, end to end through the same
  processes, versus the media work on the same images in one in-process
  loop as collecting does it: render, probe, embed the parameters,
  thumbnail, hash and store each file once. In wall time, and in
  CPU-seconds: the user and system CPU of both workers and the foreman
  (read with psutil when the order is placed and when the last item
  completes, so start-up is left out) plus placing the order, against the
  loop's own CPU. The two workers run on two cores while the loop runs on
  one, so only the CPU ratio says what the pipeline costs. The demo
  provider runs inside the workers: its rendering is media work on both
  sides, its bookkeeping of fake requests in Redis counts against the
  pipeline. Resident memory of each process is sampled every 0.5 s; the
  rise is the median of the last tenth of samples minus that of the first.
  Both production benchmarks empty the queues and the demo provider's slots
  in `BENCH_REDIS_URL` (default `redis://127.0.0.1:6379/13`), never the
  Redis in `REDIS_URL`.

## What the production figures rest on

- Placing an order queues submit jobs only for the slots its provider has
  free and puts the other items in that limit's waiting line; each slot
  given back wakes the oldest waiting item in the same Redis call, so no
  freed slot waits for a timer and no job runs only to find the slots taken.
- Workers run jobs in their own process (`ProductionWorker`) instead of
  forking a work horse per job, keep their database connection, and share
  one Redis connection pool per process.
- The foreman hands a round's finished items to collection in one update
  and one Redis round trip, and rests only until the next item falls due.
- Polls are paced (docs/operations.md *Poll pacing*): once the foreman has
  seen a few generations end, it first asks at the expected end, then every
  poll interval (0.5 s here). A generation that ends between polls is seen
  up to one interval late. Webhooks (`WEBHOOK_BASE_URL`) remove that wait:
  `make bench-scale` measures both ways on the fal fake.
"""


if __name__ == "__main__":
    main()

"""Each parallel test process gets its own Redis database.

Loaded with ``-p tests.xdist_env`` before Django reads its settings, so a
worker named ``gwK`` (pytest-xdist) uses the database ``REDIS_URL`` names
minus ``2 * K``: the SQLite suite's 14 becomes 14, 12, 10 and the
PostgreSQL suite's 15 becomes 15, 13, 11, so both suites run side by side.
Django's test databases get a per-worker suffix from pytest-django itself.
"""
import os
import re

_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _worker.startswith("gw") and os.environ.get("REDIS_URL"):
    _index = int(_worker[2:])
    _match = re.fullmatch(r"(redis://[^/]+)/(\d+)", os.environ["REDIS_URL"])
    if _match and _index:
        _db = int(_match.group(2)) - 2 * _index
        if _db < 1:
            raise RuntimeError(
                f"too many test processes for REDIS_URL={os.environ['REDIS_URL']}: "
                f"{_worker} would need Redis database {_db}"
            )
        os.environ["REDIS_URL"] = f"{_match.group(1)}/{_db}"

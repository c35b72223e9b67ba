"""Import benchmark: 10,000 valid rows through the admin's import checks.

Times what the admin does with an upload: read and check the CSV, the dry
run that checks every row and writes nothing, and the confirmed import in
one transaction. Run alone with ``python bench/import_rows.py`` or as part
of ``make bench`` (bench/suite.py).
"""
import os
from pathlib import Path
import sys
import time
from typing import Any, Callable

ROWS = 10_000


def _timed(func: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = func()
    return time.perf_counter() - start, value


def _wildcards_csv() -> bytes:
    """Wildcards with a JSON list of values and a description each."""
    lines = ["name,values,description"]
    lines += [f'bench/w{n},"[""red {n}"", ""blue {n}""]",row {n}' for n in range(ROWS)]
    return ("\n".join(lines) + "\n").encode()


def bench_import_rows() -> list[dict[str, Any]]:
    from django.db import connection

    from admin_ext.data.formats import CSVFormat
    from admin_ext.data.resources import WildcardResource
    from factory.models import Wildcard

    Wildcard.objects.filter(name__startswith="bench/").delete()
    content = _wildcards_csv()
    read, dataset = _timed(lambda: CSVFormat().create_dataset(content))
    dry, result = _timed(lambda: WildcardResource().import_data(dataset, dry_run=True))
    assert result.totals["new"] == ROWS and not Wildcard.objects.filter(
        name__startswith="bench/").exists()
    confirmed, result = _timed(lambda: WildcardResource().import_data(
        dataset, dry_run=False, rollback_on_validation_errors=True))
    assert Wildcard.objects.filter(name__startswith="bench/").count() == ROWS
    again, result = _timed(lambda: WildcardResource().import_data(dataset, dry_run=True))
    assert result.totals["skip"] == ROWS
    Wildcard.objects.filter(name__startswith="bench/").delete()
    vendor = connection.vendor
    return [
        {"name": f"read and check a {ROWS:,}-row CSV ({vendor})", "value": read, "unit": "s"},
        {"name": f"dry run of {ROWS:,} new rows ({vendor})", "value": dry, "unit": "s",
         "target": "< 10"},
        {"name": f"confirmed import of {ROWS:,} rows ({vendor})", "value": confirmed,
         "unit": "s", "target": "< 10"},
        {"name": f"dry run of {ROWS:,} unchanged rows ({vendor})", "value": again,
         "unit": "s", "target": "< 10"},
    ]


BENCHMARKS = [bench_import_rows]


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "artfactory.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    for row in bench_import_rows():
        print(f"{row['name']}: {row['value']:.2f} {row['unit']} (target {row.get('target', '-')})")

"""What the benchmarks with a PostgreSQL database of their own share.

``fresh_database`` drops and creates one by name on the server of
``BENCH_PG_URL`` and returns its URL; ``write_section`` replaces one
benchmark's section of docs/benchmarks.md between its two markers and
keeps the rest of the file.
"""
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def fresh_database(name: str, extensions: tuple[str, ...] = ()) -> str:
    """Drop and create the database ``name`` (with ``extensions``); its URL."""
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    if extensions:
        with psycopg.connect(url, autocommit=True) as conn:
            for extension in extensions:
                conn.execute(f"CREATE EXTENSION IF NOT EXISTS {extension} SCHEMA public")
    return url


def write_section(start: str, end: str, section: str) -> None:
    """Put ``section`` (which begins with ``start`` and ends with ``end``)
    in place of the one between those markers, or at the end of the file."""
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Benchmarks\n\n"
    if start in text:
        head, rest = text.split(start, 1)
        text = head + section + rest.split(end, 1)[1].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOC.write_text(text, encoding="utf-8")

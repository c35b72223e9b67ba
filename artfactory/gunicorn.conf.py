"""gunicorn's settings for the web process, sized for a 2-core machine.

WEB_CONCURRENCY processes of WEB_THREADS threads each serve requests; a
request beyond those waits in the listen queue rather than opening another
database connection. Each process's PostgreSQL pool holds up to as many
connections as it has threads, so the web server needs at most
WEB_CONCURRENCY x WEB_THREADS connections (8 by default).

Eight single-threaded processes rather than two of four threads: an admin
page is Python work that holds the GIL, so threads of one process wait for
each other while the other core may idle. Under P5 (50 users on 100,000
products, docs/benchmarks.md) the page p95 fell from 959 ms (2 x 4) and
561 ms (4 x 2) to 207-297 ms (8 x 1), with the same eight connections
and about 590 MB of memory for all of them together (PSS).
"""
import os
from pathlib import Path


def _positive(name: str, default: int) -> int:
    """A count from the environment; a bad one stops gunicorn naming it."""
    raw = os.environ.get(name, "") or str(default)
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"{name}={raw!r} is malformed: expected a whole number >= 1")
    return int(raw)


workers = _positive("WEB_CONCURRENCY", 8)
threads = _positive("WEB_THREADS", 1)
worker_class = "gthread"
bind = [os.environ.get("WEB_BIND") or f"127.0.0.1:{os.environ.get('PORT') or 8000}"]
timeout = _positive("WEB_TIMEOUT", 60)
graceful_timeout = 20
# One connection per thread at most, shared through the pool.
os.environ.setdefault("DB_POOL_MAX_SIZE", str(threads))
# Hashed, compressed static files from `collectstatic` (see settings).
os.environ.setdefault("STATIC_MANIFEST", "1")
# gunicorn's control socket is one path per user: two servers would clash.
control_socket_disable = True
wsgi_app = "artfactory.wsgi:application"
# Load Django once, before forking: workers answer at once and share memory.
# Nothing opens a database or Redis connection at import, so none is shared.
preload_app = True


def on_starting(server: object) -> None:
    """Refuse to start without the static manifest, instead of 500 on every page."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "artfactory.settings")
    from django.conf import settings

    manifest = Path(settings.STATIC_ROOT) / "staticfiles.json"
    if settings.STATIC_MANIFEST and not manifest.exists():
        raise SystemExit(
            f"{manifest} is missing: run `python manage.py collectstatic --noinput` first"
        )

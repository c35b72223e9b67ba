"""The production web server: hashed static files, compression, the policy
header, a bounded database pool, and gunicorn itself in a subprocess."""
import gzip
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.management import call_command
from django.db import connection
from django.test import Client, override_settings
from django.urls import reverse

from factory.models import FactoryMachine, Product, Provider
from tests.conftest import ROOT, worker_env

MANIFEST_STORAGES = {
    **settings.STORAGES,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
FOREVER = "max-age=315360000, public, immutable"
STATIC_URL_RE = re.compile(r'(?:href|src)="(/static/[^"?#]+)"')
on_postgresql = pytest.mark.skipif(
    not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
    reason="the connection pool is PostgreSQL's",
)


def _settings_of(expression: str, **env: str) -> object:
    """A setting as a fresh process reads it from ``env``."""
    result = subprocess.run(
        [sys.executable, "-c", "import django, json; django.setup(); "
         f"from django.conf import settings; print(json.dumps({expression}))"],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "artfactory.settings", **env},
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


PG_URL = "postgres://factory:pw@db.internal:5432/factory"


def test_pool_sizes_come_from_the_environment():
    db = _settings_of(
        "settings.DATABASES['default']", DATABASE_URL=PG_URL,
        DB_POOL_MIN_SIZE="2", DB_POOL_MAX_SIZE="6", DB_POOL_TIMEOUT="3.5",
    )
    assert db["OPTIONS"]["pool"] == {"min_size": 2, "max_size": 6, "timeout": 3.5}
    # Django refuses persistent connections together with a pool.
    assert db["CONN_MAX_AGE"] == 0


def test_pool_off_keeps_one_persistent_connection_a_thread():
    db = _settings_of(
        "settings.DATABASES['default']", DATABASE_URL=PG_URL,
        DB_POOL_MAX_SIZE="0", DB_CONN_MAX_AGE="30",
    )
    assert "pool" not in db.get("OPTIONS", {})
    assert db["CONN_MAX_AGE"] == 30


def test_sqlite_has_no_pool():
    db = _settings_of("settings.DATABASES['default']",
                      DATABASE_URL="sqlite:////tmp/no-pool.sqlite3")
    assert "pool" not in db["OPTIONS"]


@pytest.mark.parametrize(("env", "message"), [
    ({"DB_POOL_MIN_SIZE": "5", "DB_POOL_MAX_SIZE": "2"},
     "DB_POOL_MIN_SIZE=5 and DB_POOL_MAX_SIZE=2 are malformed"),
    ({"DB_POOL_MAX_SIZE": "many"}, "DB_POOL_MAX_SIZE='many' is malformed"),
    ({"DB_POOL_TIMEOUT": "0"}, "DB_POOL_TIMEOUT=0.0 must be above 0"),
])
def test_a_pool_that_cannot_work_stops_start_up_naming_it(env, message):
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "artfactory.settings",
             "DATABASE_URL": PG_URL, **env},
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert message in result.stderr


@on_postgresql
@pytest.mark.django_db
def test_this_process_draws_connections_from_a_bounded_pool():
    connection.ensure_connection()
    assert connection.pool is not None
    assert connection.pool.max_size == settings.DB_POOL_MAX_SIZE


# ---------------------------------------------------------------- in process


@pytest.mark.django_db
def test_pages_carry_the_policy_and_only_the_queues_allow_inline_scripts(lead):
    client = Client()
    client.force_login(lead)
    page = client.get("/admin/")
    queues = client.get(reverse("django_rq:home"))
    policy = page["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "script-src 'self' 'unsafe-eval';" in policy
    assert "script-src 'self' 'unsafe-eval' 'unsafe-inline';" in (
        queues["Content-Security-Policy"]
    )


@pytest.mark.django_db
def test_report_only_mode_sends_the_report_only_header(settings):
    settings.CSP_REPORT_ONLY = True
    response = Client().get("/admin/login/")
    assert "Content-Security-Policy" not in response
    assert "default-src 'self'" in response["Content-Security-Policy-Report-Only"]


@pytest.mark.django_db
def test_html_is_gzipped_and_media_is_not(lead, media_root):
    client = Client()
    client.force_login(lead)
    page = client.get("/admin/", HTTP_ACCEPT_ENCODING="gzip, br")
    assert page["Content-Encoding"] == "gzip"
    assert b"Art Factory" in gzip.decompress(page.content)
    picture = media_root / "products" / "p.png"
    picture.parent.mkdir(parents=True)
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(4096))
    media = client.get("/media/products/p.png", HTTP_ACCEPT_ENCODING="gzip")
    assert media.status_code == 200
    assert not media.has_header("Content-Encoding")


# ---------------------------------------------------------------- manifest


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """`collectstatic` as `make run` does it, into a temporary STATIC_ROOT."""
    root = tmp_path_factory.mktemp("static")
    with override_settings(STORAGES=MANIFEST_STORAGES, STATIC_ROOT=root):
        call_command("collectstatic", interactive=False, verbosity=0)
    return root


@pytest.fixture
def manifest(collected, settings):
    """The manifest storage, and WhiteNoise serving STATIC_ROOT only."""
    settings.STORAGES = MANIFEST_STORAGES
    settings.STATIC_ROOT = collected
    settings.WHITENOISE_USE_FINDERS = False
    return collected


def _every_app_static_file() -> list[str]:
    return sorted({
        path for finder in finders.get_finders() for path, _ in finder.list([])
    })


@pytest.mark.once
def test_every_static_file_of_every_app_has_a_hashed_name(manifest):
    paths = _every_app_static_file()
    assert any(p.startswith("unfold/") for p in paths)
    assert any(p.startswith("django_jsonform/") for p in paths)
    assert any(p.startswith("import_export/") for p in paths)
    for path in paths:
        url = staticfiles_storage.url(path)
        assert re.search(r"\.[0-9a-f]{12}(\.[^/]+)?$", url), url


@pytest.mark.once
@pytest.mark.django_db
def test_admin_pages_render_and_their_static_files_answer_forever(
    manifest, demo_order, superuser
):
    client = Client()
    client.force_login(superuser)
    machine = FactoryMachine.objects.get(slug="demo-image")
    pages = [
        "/admin/", "/admin/factory/order/", "/admin/factory/order/add/",
        f"/admin/factory/order/add/?machine={machine.pk}",
        f"/admin/factory/order/{demo_order.pk}/change/",
        "/admin/factory/product/", f"/admin/factory/product/{Product.objects.first().pk}/change/",
        f"/admin/factory/provider/{Provider.objects.first().pk}/change/",
        f"/admin/factory/factorymachine/{machine.pk}/change/",
        "/admin/factory/wildcard/import/", reverse("django_rq:home"),
    ]
    static_urls: set[str] = set()
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        static_urls |= set(STATIC_URL_RE.findall(response.content.decode()))
    assert any("/django_jsonform/" in url for url in static_urls)
    assert any("/unfold/" in url for url in static_urls)
    for url in sorted(static_urls):
        response = client.get(url, HTTP_ACCEPT_ENCODING="gzip")
        assert response.status_code == 200, url
        assert response["Cache-Control"] == FOREVER, url
        if url.endswith((".css", ".js")):
            assert response["Content-Encoding"] == "gzip", url
        response.close()


# ---------------------------------------------------------------- gunicorn


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """The Procfile's web process on a free port of 127.0.0.1."""

    def __init__(self, static_root: Path, media_root: Path, **env: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "artfactory/gunicorn.conf.py"],
            env={**worker_env(media_root), "PORT": str(self.port),
                 "STATIC_ROOT": str(static_root), **env},
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )

    def wait(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                urllib.request.urlopen(self.url + "/admin/login/", timeout=2).close()
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"gunicorn did not answer:\n{self.stop()}")

    def get(self, path: str, **headers: str):
        request = urllib.request.Request(self.url + path, headers=headers)
        return urllib.request.urlopen(request, timeout=30)

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.terminate()
        output, _ = self.process.communicate(timeout=30)
        return output


@pytest.fixture
def gunicorn(collected, media_root):
    servers: list[Gunicorn] = []

    def start(**env: str) -> Gunicorn:
        server = Gunicorn(collected, media_root, **env)
        servers.append(server)
        server.wait()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.mark.once
@pytest.mark.django_db(transaction=True)
def test_gunicorn_serves_pages_and_hashed_compressed_static_files(gunicorn):
    server = gunicorn()
    with server.get("/admin/login/", **{"Accept-Encoding": "gzip"}) as page:
        assert page.headers["Content-Encoding"] == "gzip"
        assert "default-src 'self'" in page.headers["Content-Security-Policy"]
        html = gzip.decompress(page.read()).decode()
    urls = STATIC_URL_RE.findall(html)
    assert len(urls) >= 8
    for url in urls:
        with server.get(url, **{"Accept-Encoding": "gzip"}) as response:
            assert response.status == 200
            assert response.headers["Cache-Control"] == FOREVER
            assert response.headers["Content-Encoding"] == "gzip"


@pytest.mark.once
def test_gunicorn_refuses_to_start_without_collected_static_files(tmp_path):
    server = Gunicorn(tmp_path / "empty", tmp_path / "media")
    output = server.process.communicate(timeout=60)[0]
    assert server.process.returncode != 0
    assert "staticfiles.json is missing: run `python manage.py collectstatic" in output


@pytest.mark.once
@pytest.mark.parametrize(("name", "value"), [("WEB_CONCURRENCY", "0"), ("WEB_THREADS", "x")])
def test_gunicorn_refuses_a_bad_count(tmp_path, name, value):
    server = Gunicorn(tmp_path, tmp_path / "media", **{name: value})
    output = server.process.communicate(timeout=60)[0]
    assert server.process.returncode != 0
    assert f"{name}={value!r} is malformed" in output


def _backend_count() -> int:
    """Connections open to this test database, this process's included."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        )
        return cursor.fetchone()[0]


@on_postgresql
@pytest.mark.once
@pytest.mark.django_db(transaction=True)
def test_fifty_signed_in_users_at_once_stay_within_the_pool(gunicorn, lead):
    client = Client()
    client.force_login(lead)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    server = gunicorn()  # the shipped 8 processes of 1 thread
    before = _backend_count()

    def user(n: int) -> int:
        with server.get("/admin/factory/order/", Cookie=cookie) as response:
            return response.status

    peak = before
    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = [pool.submit(user, n) for n in range(100)]
        while not all(answer.done() for answer in answers):
            peak = max(peak, _backend_count())
            time.sleep(0.02)
    assert [answer.result() for answer in answers] == [200] * 100
    # Eight processes of one thread: at most eight connections for the web.
    assert 0 < peak - before <= 8 * 1

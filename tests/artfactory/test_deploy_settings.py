"""With production variables, Django's deployment checklist passes clean."""
import os
import subprocess
import sys

from tests.conftest import ROOT

PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "k3Jx9-Qm2vT8zLw4Rp7nY1cB6hF0sD5aG3eU8iO2pK7lM4jN9qW1xZ6vC0bT5rE",
    "ALLOWED_HOSTS": "factory.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://factory.example.com",
    "HTTPS": "1",
    "SECURE_PROXY_SSL_HEADER": "1",
}


# Set by the browser tests for Playwright's event loop; never in a deployment.
HARNESS_ONLY = {"DJANGO_ALLOW_ASYNC_UNSAFE"}


def _check_deploy(**env: str) -> subprocess.CompletedProcess:
    kept = {name: value for name, value in os.environ.items() if name not in HARNESS_ONLY}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env={**kept, **env}, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )


def _setting(name: str, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); "
         f"from django.conf import settings; print(repr(settings.{name}))"],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "artfactory.settings", **env},
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_production_variables_pass_check_deploy():
    result = _check_deploy(**PRODUCTION)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "System check identified no issues" in result.stdout


def test_without_https_check_deploy_names_what_is_missing():
    result = _check_deploy(**{**PRODUCTION, "HTTPS": "0"})
    assert result.returncode != 0
    for check in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check in result.stderr


def test_debug_fails_check_deploy():
    result = _check_deploy(**{**PRODUCTION, "DEBUG": "1"})
    assert result.returncode != 0
    assert "security.W018" in result.stderr


def test_the_proxy_header_is_trusted_only_when_asked():
    assert _setting("SECURE_PROXY_SSL_HEADER") == "None"
    assert _setting("SECURE_PROXY_SSL_HEADER", SECURE_PROXY_SSL_HEADER="1") == (
        "('HTTP_X_FORWARDED_PROTO', 'https')"
    )


def test_a_local_run_neither_redirects_nor_needs_secure_cookies():
    assert _setting("SECURE_SSL_REDIRECT", HTTPS="0") == "False"
    assert _setting("SESSION_COOKIE_SECURE", HTTPS="0") == "False"
    assert _setting("SECURE_HSTS_SECONDS", HTTPS="0") == "0"

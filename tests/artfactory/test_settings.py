"""A malformed setting stops start-up with a message naming the variable."""
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def _start(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "artfactory.settings", **env},
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DEBUG", "maybe", "DEBUG='maybe' is not a boolean"),
        ("ORDER_ITEM_CEILING", "lots", "ORDER_ITEM_CEILING='lots' is malformed"),
        ("DEMO_LATENCY_SECONDS", "fast", "DEMO_LATENCY_SECONDS='fast' is malformed"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL='localhost:6379' is malformed"),
        ("DATABASE_URL", "nosuchdb://x/y", "DATABASE_URL='nosuchdb://x/y' is malformed"),
        ("SERVE_MEDIA", "perhaps", "SERVE_MEDIA='perhaps' is not a boolean"),
        ("WEBHOOK_BASE_URL", "factory.example.com",
         "WEBHOOK_BASE_URL='factory.example.com' is malformed"),
        ("PROVIDER_READ_TIMEOUT_SECONDS", "soon",
         "PROVIDER_READ_TIMEOUT_SECONDS='soon' is malformed"),
    ],
)
def test_malformed_setting_fails_at_start_naming_the_variable(name, value, message):
    result = _start(**{name: value})
    assert result.returncode != 0
    assert message in result.stderr


def test_defaults_start_cleanly():
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DEBUG")}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); "
         "from django.conf import settings; "
         "print(settings.DATABASES['default']['ENGINE'], settings.DEBUG)"],
        env={**env, "DJANGO_SETTINGS_MODULE": "artfactory.settings"},
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "False"]


def test_setting_defaults_live_only_in_settings():
    """Code reads ``settings.NAME``; no call site repeats a default of its own."""
    import re

    repeated = re.compile(r'getattr\(settings, "[A-Z_]+", ')
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for package in ("artfactory", "factory", "admin_ext")
        for path in sorted((ROOT / package).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if repeated.search(line)
    ]
    assert found == []

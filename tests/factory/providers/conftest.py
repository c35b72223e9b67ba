"""Fixtures for provider adapters: fake provider servers on 127.0.0.1."""
import pytest

from tests.fakes.fal import FakeFal


@pytest.fixture
def fake_fal(settings, monkeypatch):
    """A running FakeFal with the fal settings pointing at it."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    fake = FakeFal(key="test-key").start()
    settings.FAL_KEY = "test-key"
    settings.FAL_QUEUE_URL = fake.url + "/"
    settings.FAL_API_URL = fake.url
    yield fake
    fake.stop()

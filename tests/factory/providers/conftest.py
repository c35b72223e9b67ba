"""Fixtures for provider adapters: fake provider servers on 127.0.0.1."""
import pytest

from tests.fakes.fal import FakeFal


@pytest.fixture(autouse=True)
def direct_to_fakes(monkeypatch):
    """Requests to 127.0.0.1 bypass any proxy the environment names."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def fake_fal(settings):
    """A running FakeFal with the fal settings pointing at it."""
    fake = FakeFal(key="test-key").start()
    settings.FAL_KEY = "test-key"
    settings.FAL_QUEUE_URL = fake.url + "/"
    settings.FAL_API_URL = fake.url
    yield fake
    fake.stop()

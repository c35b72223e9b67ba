"""One HTTP status → adapter error table for every provider."""
import pytest

from factory.providers.base import (
    ConfigurationError, PermanentError, TransientError, classify,
)


@pytest.mark.parametrize(("status", "kind"), [
    (401, ConfigurationError), (403, ConfigurationError), (302, ConfigurationError),
    (408, TransientError), (429, TransientError), (500, TransientError),
    (503, TransientError), (400, PermanentError), (404, PermanentError),
    (409, PermanentError), (422, PermanentError),
])
def test_status_maps_to_one_error_kind(status, kind):
    assert type(classify(status, "x", key_setting="KEY")) is kind


def test_refused_credential_names_the_setting():
    error = classify(401, "fal submit a/b: HTTP 401", key_setting="FAL_KEY")
    assert str(error) == "fal submit a/b: HTTP 401; check FAL_KEY"


def test_provider_may_add_transient_statuses_and_retry_after():
    error = classify(409, "busy", key_setting="K", also_transient=frozenset({409}),
                     retry_after=3.0)
    assert isinstance(error, TransientError) and error.retry_after == 3.0

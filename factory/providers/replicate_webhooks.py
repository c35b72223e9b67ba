"""Verify Replicate webhooks (Standard Webhooks: HMAC-SHA256, whsec_ keys).

``replicate.webhooks.validate`` checks no timestamp unless given a
tolerance, cannot be told the time and has no replay check, so the few
lines of the scheme live here: sign ``{id}.{timestamp}.{body}`` with the
base64-decoded key and compare against every ``v1,<base64>`` entry.
"""
import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from factory.providers.base import ConfigurationError

TOLERANCE_SECONDS = 300
SECRET_PREFIX = "whsec_"
HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


class WebhookVerificationError(ValueError):
    """A webhook that must not be trusted; the message says why."""


class ReplayedWebhookError(WebhookVerificationError):
    """A correctly signed webhook whose id was already accepted."""


def _signing_key(secret: str) -> bytes:
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        key = b""
    if not key:
        raise ConfigurationError(
            "the Replicate webhook secret is not a whsec_<base64> signing key"
        )
    return key


def _headers(headers: Mapping[str, str]) -> tuple[str, str, str]:
    lowered = {key.lower(): value for key, value in headers.items()}
    missing = [name for name in HEADERS if not lowered.get(name)]
    if missing:
        raise WebhookVerificationError(f"missing headers: {', '.join(missing)}")
    webhook_id, timestamp, signature = (lowered[name] for name in HEADERS)
    return webhook_id, timestamp, signature


def _check_time(timestamp: str, now: float, tolerance: int) -> None:
    if not timestamp.isdigit():
        raise WebhookVerificationError(
            f"webhook-timestamp {timestamp[:40]!r} is not Unix seconds"
        )
    skew = int(timestamp) - now
    if skew < -tolerance:
        raise WebhookVerificationError(
            f"webhook-timestamp is {-skew:.0f}s old (limit {tolerance}s)"
        )
    if skew > tolerance:
        raise WebhookVerificationError(
            f"webhook-timestamp is {skew:.0f}s in the future (limit {tolerance}s)"
        )


def _signatures(header: str) -> list[bytes]:
    """The v1 signatures of a space-separated ``version,base64`` list."""
    found = []
    for entry in header.split():
        version, sep, encoded = entry.partition(",")
        if not sep or not version or not encoded:
            raise WebhookVerificationError(
                f"malformed webhook-signature entry {entry[:40]!r}: "
                "expected 'v1,<base64>'"
            )
        if version != "v1":
            continue  # other schemes may be listed alongside v1
        try:
            found.append(base64.b64decode(encoded, validate=True))
        except binascii.Error:
            raise WebhookVerificationError(
                f"malformed webhook-signature entry {entry[:40]!r}: bad base64"
            ) from None
    if not found:
        raise WebhookVerificationError("webhook-signature has no v1 entry")
    return found


def _already_seen(
    webhook_id: str, seen: set[str] | Callable[[str], bool] | None
) -> bool:
    if seen is None:
        return False
    if callable(seen):
        return seen(webhook_id)
    if webhook_id in seen:
        return True
    seen.add(webhook_id)
    return False


def verify_replicate_webhook(
    headers: Mapping[str, str],
    body: bytes | str,
    secret: str,
    now: float | None = None,
    seen: set[str] | Callable[[str], bool] | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> dict[str, Any]:
    """Check signature, age and novelty of a webhook; return its prediction.

    ``seen`` is a set of accepted ids (checked, then added) or a callable
    that records the id and answers whether it was already there, such as
    a Redis ``SET NX``. It is consulted only after the signature holds, so
    forged requests cannot fill it.
    """
    raw = body.encode() if isinstance(body, str) else body
    if not raw:
        raise WebhookVerificationError("empty webhook body")
    webhook_id, timestamp, signature = _headers(headers)
    _check_time(timestamp, time.time() if now is None else now, tolerance)
    candidates = _signatures(signature)
    signed = f"{webhook_id}.{timestamp}.".encode() + raw
    expected = hmac.new(_signing_key(secret), signed, hashlib.sha256).digest()
    if not any(hmac.compare_digest(expected, sig) for sig in candidates):
        raise WebhookVerificationError("webhook signature does not match")
    if _already_seen(webhook_id, seen):
        raise ReplayedWebhookError(f"webhook {webhook_id} was already accepted")
    try:
        return json.loads(raw)
    except ValueError:
        raise WebhookVerificationError("webhook body is not JSON") from None

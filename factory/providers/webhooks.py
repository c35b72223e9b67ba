"""Webhook signature checks, one self-contained section per provider.

A webhook is a hint that a request finished; polling stays the truth. Each
verifier returns the parsed payload or raises ``WebhookError`` saying why
the call must not be trusted, and raises ``ImproperlyConfigured`` when no
usable key is configured. ``webhook_url`` says where adapters ask a
provider to call back.
"""
import base64
import binascii
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse


class WebhookError(ValueError):
    """A webhook that must not be trusted; the message says why."""


def webhook_url(provider: str) -> str:
    """The public URL of ``provider``'s webhook; "" while webhooks are off.

    Off unless ``WEBHOOK_BASE_URL`` names where providers reach this server.
    """
    base = settings.WEBHOOK_BASE_URL
    if not base:
        return ""
    return base.rstrip("/") + reverse(f"webhook-{provider}")


# ---------------------------------------------------------------- fal
FAL_HEADERS = (
    "X-Fal-Webhook-Request-Id",
    "X-Fal-Webhook-User-Id",
    "X-Fal-Webhook-Timestamp",
    "X-Fal-Webhook-Signature",
)
FAL_TOLERANCE_SECONDS = 300

FalKeys = Mapping[str, Any] | Iterable[Any] | None
Seen = Callable[[str], bool] | set[str] | None


def verify_fal_webhook(
    headers: Mapping[str, str],
    body: bytes | str,
    keys: FalKeys = None,
    now: float | datetime | None = None,
    seen: Seen = None,
    tolerance: float = FAL_TOLERANCE_SECONDS,
) -> Any:
    """Check a fal webhook's Ed25519 signature, age and novelty; return its JSON.

    ``keys``: fal's JWKS (``{"keys": [...]}``), or a list of JWKs, raw 32-byte
    keys, hex or base64url strings; default ``settings.FAL_WEBHOOK_KEYS``.
    ``seen``: a set of request ids already handled (checked, then added), or
    a callable that records an id and returns True if it had seen it before.
    """
    raw = body.encode() if isinstance(body, str) else bytes(body)
    request_id, user_id, stamp, signature = _fal_headers(headers)
    _check_fal_time(stamp, now, tolerance)
    message = "\n".join(
        [request_id, user_id, stamp, hashlib.sha256(raw).hexdigest()]
    ).encode()
    if not any(_ed25519_verifies(key, signature, message) for key in _fal_keys(keys)):
        raise WebhookError("fal webhook signature matches none of the fal keys")
    _check_fal_replay(request_id, seen)
    try:
        return json.loads(raw)
    except ValueError:
        raise WebhookError("fal webhook body is not JSON") from None


def _fal_headers(headers: Mapping[str, str]) -> tuple[str, str, str, bytes]:
    lower = {str(k).lower(): str(v).strip() for k, v in headers.items()}
    values = [lower.get(name.lower(), "") for name in FAL_HEADERS]
    missing = [name for name, value in zip(FAL_HEADERS, values) if not value]
    if missing:
        raise WebhookError(f"fal webhook lacks header(s) {', '.join(missing)}")
    try:
        signature = bytes.fromhex(values[3])
    except ValueError:
        raise WebhookError("fal webhook signature is not hex") from None
    if len(signature) != 64:
        raise WebhookError("fal webhook signature is not 64 bytes")
    return values[0], values[1], values[2], signature


def _check_fal_time(stamp: str, now: float | datetime | None, tolerance: float) -> None:
    try:
        sent = int(stamp)
    except ValueError:
        raise WebhookError(f"fal webhook timestamp {stamp!r} is not an integer") from None
    if now is None:
        now = time.time()
    elif isinstance(now, datetime):
        now = now.timestamp()
    age = now - sent
    if age > tolerance:
        raise WebhookError(
            f"fal webhook timestamp is {age:.0f}s old (limit {tolerance:.0f}s)"
        )
    if -age > tolerance:
        raise WebhookError(f"fal webhook timestamp is {-age:.0f}s in the future")


def _check_fal_replay(request_id: str, seen: Seen) -> None:
    if seen is None:
        return
    if callable(seen):
        repeated = bool(seen(request_id))
    else:
        repeated = request_id in seen
        seen.add(request_id)
    if repeated:
        raise WebhookError(f"fal webhook for request {request_id} was already received")


def _fal_keys(keys: FalKeys) -> list[bytes]:
    """Raw 32-byte Ed25519 public keys from any accepted key set form."""
    if keys is None:
        keys = settings.FAL_WEBHOOK_KEYS
    if isinstance(keys, Mapping):
        keys = keys.get("keys", [keys])
    elif isinstance(keys, (str, bytes)):
        keys = [keys]
    found = [_raw_key(key) for key in keys or []]
    found = [key for key in found if key is not None]
    if not found:
        raise ImproperlyConfigured(
            "no fal webhook keys: pass keys or set FAL_WEBHOOK_KEYS to fal's JWKS"
        )
    return found


def _raw_key(key: Any) -> bytes | None:
    """One key as 32 raw bytes; None for a JWK that is not Ed25519."""
    if isinstance(key, Mapping):
        if key.get("kty") not in (None, "OKP") or key.get("crv") not in (None, "Ed25519"):
            return None
        key = key.get("x", "")
    raw = key if isinstance(key, bytes) else _decode_text_key(str(key))
    if len(raw) != 32:
        raise ImproperlyConfigured("a fal webhook key is not a 32-byte Ed25519 key")
    return raw


def _decode_text_key(text: str) -> bytes:
    text = text.strip()
    try:
        if len(text) == 64:
            return bytes.fromhex(text)
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, binascii.Error):
        raise ImproperlyConfigured(
            "a fal webhook key is neither hex nor base64url"
        ) from None


def _ed25519_verifies(public_key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except InvalidSignature:
        return False
    return True

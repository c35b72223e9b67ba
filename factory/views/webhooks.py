"""Provider webhooks: a verified call only makes its item due for polling.

A webhook never settles an item. Its body's status and outputs are not
read: the item is found by provider and request id and handed to the
foreman's next round (``enqueue_follow``), whose status call stays the
truth. A call that fails verification, names no known request or repeats
an accepted one is refused with a short reason and changes nothing.
"""
import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import redis
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from factory.models import ItemStatus, OrderItem
from factory.production import queues
from factory.production.queues import enqueue_follow
from factory.providers.base import ConfigurationError
from factory.providers.replicate_webhooks import (
    WebhookVerificationError,
    verify_replicate_webhook,
)
from factory.providers.webhooks import (
    FAL_HEADERS,
    WebhookError,
    verify_fal_webhook,
)

log = logging.getLogger(__name__)
# Longer than the ±300 s signature window, after which a replay fails anyway.
REPLAY_SECONDS = 3600
SEEN_KEY = "artfactory:webhook-seen:{provider}:{delivery}"
JWKS_CACHE_SECONDS = 600
JWKS_TIMEOUT_SECONDS = 10
OUTAGE_RETRY_SECONDS = 5


def _answer(status: int, text: str) -> HttpResponse:
    return HttpResponse(text + "\n", status=status,
                        content_type="text/plain; charset=utf-8")


def _outage_is_503(view: Callable[[HttpRequest], HttpResponse]):
    """Redis (the replay record) or the database down: 503 with Retry-After,
    so the provider delivers again later, instead of a 500 and a traceback."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest) -> HttpResponse:
        try:
            return view(request)
        except (redis.RedisError, DatabaseError) as exc:
            log.warning("%s: answered 503, %s: %s", request.path,
                        type(exc).__name__, exc)
            response = _answer(503, "try again later: a store this server needs "
                                    "is unreachable")
            response["Retry-After"] = str(OUTAGE_RETRY_SECONDS)
            return response

    return wrapped


@csrf_exempt
@require_POST
@_outage_is_503
def fal_webhook(request: HttpRequest) -> HttpResponse:
    """fal's completion call: Ed25519-signed, keys from fal's JWKS."""
    missing = [name for name in FAL_HEADERS if not request.headers.get(name)]
    if missing:  # refused before any key fetch an anonymous caller could cause
        return _answer(401, f"refused: missing header(s) {', '.join(missing)}")
    try:
        verify_fal_webhook(request.headers, request.body, _fal_keys())
    except WebhookError as exc:
        return _answer(401, f"refused: {exc}")
    except (ImproperlyConfigured, httpx.HTTPError, ValueError) as exc:
        log.warning("fal webhook keys unavailable: %s", exc)
        return _answer(503, "fal webhook keys are unavailable")
    request_id = request.headers["X-Fal-Webhook-Request-Id"]
    # fal retries a delivery under the same request id, its documented key.
    return _hint("fal", request_id, delivery=request_id)


@csrf_exempt
@require_POST
@_outage_is_503
def replicate_webhook(request: HttpRequest) -> HttpResponse:
    """Replicate's completion call: Standard Webhooks HMAC with the whsec_ key."""
    secret = settings.REPLICATE_WEBHOOK_SECRET
    if not secret:
        return _answer(503, "replicate webhooks are not configured")
    try:
        prediction = verify_replicate_webhook(request.headers, request.body, secret)
    except WebhookVerificationError as exc:
        return _answer(401, f"refused: {exc}")
    except ConfigurationError as exc:
        log.warning("replicate webhook secret unusable: %s", exc)
        return _answer(503, "replicate webhooks are misconfigured")
    request_id = prediction.get("id") if isinstance(prediction, Mapping) else None
    if not isinstance(request_id, str) or not request_id:
        return _answer(400, "refused: the webhook names no prediction id")
    return _hint("replicate", request_id, delivery=request.headers["Webhook-Id"])


def _hint(provider: str, request_id: str, delivery: str) -> HttpResponse:
    """Make the item due for polling now, once per delivery."""
    found = dict(OrderItem.objects.filter(
        machine__provider__slug=provider, request_id=request_id
    ).values_list("status", "pk"))
    if not found:
        return _answer(404, f"unknown {provider} request {request_id[:100]}")
    # Recorded only for known requests: a delivery that raced ahead of the
    # saved request id is refused with 404 and may be retried later.
    if not _first_delivery(provider, delivery):
        return _answer(400, f"refused: delivery {delivery[:100]} was already received")
    item_id = found.get(ItemStatus.SUBMITTED)
    if item_id is None:
        return _answer(200, "nothing to poll: the item has moved on")
    enqueue_follow(item_id, 0)
    queues.wake_foremen()
    log.info("%s webhook: item %s is polled now", provider, item_id)
    return _answer(200, "polling now")


def _first_delivery(provider: str, delivery: str) -> bool:
    """Record a delivery in Redis; False if it was recorded before."""
    key = SEEN_KEY.format(provider=provider, delivery=delivery)
    return bool(queues.connection().set(key, 1, nx=True, ex=REPLAY_SECONDS))


def _fal_keys() -> Any:
    """FAL_WEBHOOK_KEYS if set, else fal's published JWKS, cached a while."""
    if settings.FAL_WEBHOOK_KEYS:
        return settings.FAL_WEBHOOK_KEYS
    url = settings.FAL_WEBHOOK_JWKS_URL
    jwks = cache.get(f"fal-jwks:{url}")
    if jwks is None:
        response = httpx.get(url, timeout=JWKS_TIMEOUT_SECONDS)
        response.raise_for_status()
        jwks = response.json()
        cache.set(f"fal-jwks:{url}", jwks, JWKS_CACHE_SECONDS)
    return jwks

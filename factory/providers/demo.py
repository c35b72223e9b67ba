"""The offline demo provider: real media, no network, no keys.

It is to providers what Django's locmem backend is to mail. Requests live
in Redis for a day, so any worker or foreman can follow them; the media is
rendered deterministically from prompt, seed and size when collected.
"""
import functools
import hashlib
import json
import time
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import redis
from django.conf import settings

from factory.providers import demo_art
from factory.providers.base import (
    BilledRequest,
    Charge,
    MachineSpec,
    NoListingError,
    OutputFacts,
    PermanentError,
    Price,
    ProviderBackend,
    RemoteOutput,
    RemoteState,
    RemoteStatus,
)

KEY_PREFIX = "artfactory:demo:"
TTL_SECONDS = 24 * 3600
FORMAT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


@functools.lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    """One client (one connection pool) per process and URL."""
    return redis.Redis.from_url(url)


def fingerprint(endpoint: str, params: dict[str, Any]) -> str:
    """A stable digest of one request's input, for ``find``."""
    text = json.dumps([endpoint, params], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class DemoBackend(ProviderBackend):
    slug = "demo"

    def charge(
        self, price: Price, outputs: list[RemoteOutput], stored: list[OutputFacts],
    ) -> Charge:
        """The demo provider runs here and bills nothing."""
        return Charge(Decimal(0), price.unit, Decimal(0))

    def usage(self, since: datetime, prices: dict[str, Price]) -> list[BilledRequest]:
        raise NoListingError("demo bills nothing: there is nothing to reconcile")

    def __init__(self) -> None:
        self.redis = _client(settings.REDIS_URL)
        self.latency = settings.DEMO_LATENCY_SECONDS

    def _load(self, request_id: str) -> dict[str, Any]:
        raw = self.redis.get(KEY_PREFIX + request_id)
        if raw is None:
            raise PermanentError(f"demo request {request_id} is unknown or expired")
        return json.loads(raw)

    def submit(
        self, machine: MachineSpec, params: dict[str, Any], *, key: str | None = None
    ) -> str:
        if not str(params.get("prompt", "")).strip():
            raise PermanentError("prompt: a non-empty prompt is required")
        request_id = f"demo-{uuid.uuid4().hex}"
        record = {
            "endpoint": machine.endpoint_id,
            "params": params,
            "submitted_at": time.time(),
            "cancelled": False,
        }
        pipe = self.redis.pipeline()
        pipe.set(KEY_PREFIX + request_id, json.dumps(record), ex=TTL_SECONDS)
        pipe.set(
            KEY_PREFIX + "fp:" + fingerprint(machine.endpoint_id, params),
            request_id, ex=TTL_SECONDS,
        )
        pipe.execute()
        return request_id

    def status(self, machine: MachineSpec, request_id: str) -> RemoteStatus:
        record = self._load(request_id)
        if record["cancelled"]:
            return RemoteStatus(RemoteState.CANCELLED)
        elapsed = time.time() - record["submitted_at"]
        if elapsed < self.latency:
            return RemoteStatus(RemoteState.RUNNING, logs=[f"rendering {elapsed:.1f}s"])
        return RemoteStatus(RemoteState.COMPLETED)

    def result(self, machine: MachineSpec, request_id: str) -> list[RemoteOutput]:
        record = self._load(request_id)
        params = record["params"]
        kind = record["endpoint"].rsplit("/", 1)[-1]
        seed = int(params.get("seed", 0))
        prompt = str(params["prompt"])
        if kind == "video":
            data = demo_art.render_video(
                prompt, seed, int(params.get("width", 512)),
                int(params.get("height", 512)), float(params.get("duration", 2)),
                int(params.get("fps", 12)),
            )
            return [RemoteOutput(content=data, content_type="video/mp4", seed=seed)]
        if kind == "audio":
            data = demo_art.render_audio(
                prompt, seed, float(params.get("seconds_total", 3))
            )
            return [RemoteOutput(content=data, content_type="audio/wav", seed=seed)]
        return self._images(prompt, seed, params)

    def _images(
        self, prompt: str, seed: int, params: dict[str, Any]
    ) -> list[RemoteOutput]:
        fmt = params.get("output_format", "png")
        width, height = int(params.get("width", 768)), int(params.get("height", 768))
        return [
            RemoteOutput(
                content=demo_art.render_image(prompt, seed + i, width, height, fmt),
                content_type=FORMAT_TYPES[fmt], seed=seed + i, nsfw=False,
            )
            for i in range(int(params.get("num_images", 1)))
        ]

    def cancel(self, machine: MachineSpec, request_id: str) -> None:
        record = self._load(request_id)
        record["cancelled"] = True
        self.redis.set(KEY_PREFIX + request_id, json.dumps(record), ex=TTL_SECONDS)

    def find(
        self, machine: MachineSpec, submitted_after: datetime, params: dict[str, Any],
        *, key: str | None = None,
    ) -> str | None:
        found = self.redis.get(
            KEY_PREFIX + "fp:" + fingerprint(machine.endpoint_id, params)
        )
        if found is None:
            return None
        request_id = found.decode()
        record = self._load(request_id)
        return request_id if record["submitted_at"] >= submitted_after.timestamp() else None

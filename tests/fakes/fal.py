"""A fake fal.ai queue that fal-client accepts: submit, status, result, cancel.

Also fal's request listing (``/v1/models/requests/by-endpoint``), its billing
records (``/v1/models/usage``, ``/v1/models/billing-events``, see
``fal_billing``; ``charged()`` sums them per request), a JWKS and
signed webhooks, delivered to the ``fal_webhook`` URL a submit named. Inputs are checked against the seed machines' schemas and
refused in fal's 422 shape; each request moves IN_QUEUE → IN_PROGRESS →
COMPLETED over ``polls_per_stage`` status polls (or ``seconds_per_stage``);
outputs are real media served from /files/. An output fault from
``OUTPUT_FAULTS`` applies to every request (``output_fault``) or to one
(``set_output_fault``).
"""
import base64
import hashlib
import io
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jsonschema import Draft202012Validator, ValidationError
from PIL import Image

from factory.providers import demo_art
from tests.fakes.base import FakeProvider, Request, Response
from tests.fakes.fal_billing import FalBilling

SEEDS = Path(__file__).resolve().parents[2] / "seeds" / "machines" / "fal.json"
APP = (r"/(?P<owner>[^/]+)/(?P<app>[^/]+)(?P<sub>(?:/[^/]+)*?)"
       r"/requests/(?P<rid>[^/]+)")
STAGES = ("IN_QUEUE", "IN_PROGRESS", "COMPLETED")
OUTPUT_FAULTS = (
    "failed",             # COMPLETED + error; the result GET answers 500
    "rejected",           # COMPLETED + error; the result GET answers 422
    "expired",            # files answer 404 once ``expire_seconds`` passed
    "broken",             # image bytes that no decoder accepts
    "oversized",          # a file ``oversize_bytes`` long
    "bomb",               # a small PNG of 10000×10000 pixels
    "html",               # an HTML page served at a .png URL
    "redirect_loopback",  # 302 to ``loopback_target`` (127.0.0.1)
    "redirect_metadata",  # 302 to the cloud metadata address
)
SIZES = {"square_hd": (1024, 1024), "square": (512, 512),
         "portrait_4_3": (768, 1024), "portrait_16_9": (576, 1024),
         "landscape_4_3": (1024, 768), "landscape_16_9": (1024, 576)}
FAILURES = {
    "failed": (500, {"detail": "Runner crashed: CUDA out of memory",
                     "error_type": "runner_server_error"}),
    "rejected": (422, {"detail": [{
        "loc": ["body", "prompt"], "type": "content_policy_violation",
        "msg": "The prompt was flagged by the content checker"}]}),
}
INFERENCE_SECONDS = 0.25
HTML = b"<!doctype html><html><body><h1>Access denied</h1></body></html>"


def load_machines() -> list[dict[str, Any]]:
    """The fal machines of the seed catalog."""
    return json.loads(SEEDS.read_text())["machines"]


@dataclass
class Job:
    request_id: str
    endpoint_id: str
    input: dict[str, Any]
    sent_at: float
    polls: int = 0
    cancelled: bool = False
    fault: str | None = None
    output: dict[str, Any] | None = None
    ended_at: float | None = None
    webhook: str | None = None


class FakeFal(FakeProvider):
    """fal's queue on 127.0.0.1, with its own key, ledger and media."""

    def __init__(self, key: str = "test-key", polls_per_stage: int = 1,
                 seconds_per_stage: float | None = None,
                 inference_key: str = "inference-only-key") -> None:
        super().__init__()
        self.key = key
        self.billing = FalBilling(key, inference_key)
        self.polls_per_stage = polls_per_stage
        self.seconds_per_stage = seconds_per_stage
        self.output_fault: str | None = None
        self.expire_seconds = 0.2
        self.oversize_bytes = 32 * 1024 * 1024
        self.max_side = 128
        self.full_id_urls = False
        self.loopback_target = "http://127.0.0.1:{port}/files/{name}"
        self.metadata_target = "http://169.254.169.254/latest/meta-data/"
        self.machines = {m["endpoint_id"]: m for m in load_machines()}
        self.jobs: dict[str, Job] = {}
        self._expiry: dict[str, float] = {}
        self._redirects: dict[str, str] = {}
        self._signing_key: Ed25519PrivateKey | None = None
        self.route("GET", r"/\.well-known/jwks\.json", "jwks", self._jwks)
        self.route("GET", r"/v1/models/requests/by-endpoint", "list", self._list)
        self.route("GET", r"/v1/models/usage", "usage",
                   lambda request, match: self.billing.usage(request, time.time()))
        self.route("GET", r"/v1/models/billing-events", "billing-events",
                   lambda request, match: self.billing.billing_events(request, time.time()))
        self.route("GET", APP + r"/status", "status", self._status)
        self.route("PUT", APP + r"/cancel", "cancel", self._cancel)
        self.route("GET", APP, "result", self._result)
        self.route("POST", r"/(?P<endpoint>[^/]+/[^/]+(?:/[^/]+)*)", "submit",
                   self._submit)

    def stop(self) -> None:
        """Stop at once: poke the accept loop instead of waiting out its poll."""
        stopped = threading.Event()
        if self._server is not None:
            address = self._server.server_address[:2]
            threading.Thread(target=_poke, args=(address, stopped), daemon=True).start()
        try:
            super().stop()
        finally:
            stopped.set()

    # ------------------------------------------------------------ knobs
    def set_output_fault(self, request_id: str, kind: str | None) -> None:
        """Give one request an output fault (None: behave)."""
        if kind is not None and kind not in OUTPUT_FAULTS:
            raise ValueError(f"unknown output fault {kind!r}; known: {OUTPUT_FAULTS}")
        self.jobs[request_id].fault = kind

    def charged(self) -> dict[str, Any]:
        """{request_id: Decimal amount} of every request the fake billed."""
        return self.billing.charged()

    def submissions(self) -> list[Request]:
        """Every POST that reached the submit route, accepted or not."""
        return [r for r in self.requests if r.method == "POST"]

    # ------------------------------------------------------------ queue
    def _denied(self, request: Request) -> Response | None:
        if request.headers.get("authorization") == f"Key {self.key}":
            return None
        return Response(401, {"detail": "Invalid or missing API key"})

    def _submit(self, request: Request, match: Any) -> Response:
        endpoint = match["endpoint"]
        machine = self.machines.get(endpoint)
        if denied := self._denied(request):
            return denied
        if machine is None:
            return Response(404, {"detail": f"Application {endpoint!r} not found"})
        try:
            body = request.json()
        except ValueError:
            return Response(422, {"detail": [{"loc": ["body"], "type": "json_invalid",
                                              "msg": "JSON decode error"}]})
        problems = validation_errors(machine["input_schema"], body)
        if problems:
            return Response(422, {"detail": problems})
        job = Job(uuid.uuid4().hex, endpoint, body, time.time(),
                  fault=self.output_fault,
                  webhook=request.query.get("fal_webhook", [None])[0])
        with self.lock:
            self.jobs[job.request_id] = job
        self.record_submission({
            "request_id": job.request_id, "endpoint_id": endpoint, "input": body,
            "user_agent": request.headers.get("user-agent", ""),
        })
        answer = {**self._urls(job), "status": "IN_QUEUE", "queue_position": 0}
        return Response(200, answer, {"x-fal-request-id": job.request_id})

    def _urls(self, job: Job) -> dict[str, str]:
        app = job.endpoint_id if self.full_id_urls else "/".join(
            job.endpoint_id.split("/")[:2])
        base = f"{self.url}/{app}/requests/{job.request_id}"
        return {"request_id": job.request_id, "response_url": base,
                "status_url": base + "/status", "cancel_url": base + "/cancel"}

    def _job(self, request: Request, match: Any) -> Job | Response:
        if denied := self._denied(request):
            return denied
        job = self.jobs.get(match["rid"])
        if job is None or not job.endpoint_id.startswith(
            f"{match['owner']}/{match['app']}"
        ):
            return Response(404, {"detail": "Request not found"})
        return job

    def _stage(self, job: Job) -> str:
        if self.seconds_per_stage is not None:
            step = int((time.time() - job.sent_at) / self.seconds_per_stage)
        elif self.polls_per_stage <= 0:
            step = 2
        else:
            step = max(0, job.polls - 1) // self.polls_per_stage
        stage = "COMPLETED" if job.cancelled else STAGES[min(step, 2)]
        if stage == "COMPLETED" and job.ended_at is None:
            job.ended_at = time.time()
        return stage

    def _status(self, request: Request, match: Any) -> Response:
        job = self._job(request, match)
        if isinstance(job, Response):
            return job
        job.polls += 1
        stage = self._stage(job)
        want_logs = request.query.get("logs", ["0"])[0].lower() in ("1", "true")
        body: dict[str, Any] = {**self._urls(job), "status": stage, "logs": None}
        if stage == "IN_QUEUE":
            body["queue_position"] = max(0, self.polls_per_stage - job.polls)
        if want_logs and stage != "IN_QUEUE":
            body["logs"] = [{"message": f"{stage.lower()} step {job.polls}",
                             "level": "INFO", "source": "user",
                             "timestamp": _iso(time.time())}]
        if stage == "COMPLETED":
            body["metrics"] = {"inference_time": INFERENCE_SECONDS}
            body.update(self._error(job))
        return Response(200, body)

    @staticmethod
    def _error(job: Job) -> dict[str, Any]:
        if job.cancelled:
            return {"error": "Request was cancelled by the client",
                    "error_type": "client_cancelled"}
        if job.fault in FAILURES:
            # As fal does: a refused input says only its HTTP reason here,
            # the result request names the field and the reason.
            body = FAILURES[job.fault][1]
            detail = body["detail"]
            message = detail if isinstance(detail, str) else "Unprocessable Entity"
            return {"error": message, "error_type": body.get("error_type")}
        return {}

    def _cancel(self, request: Request, match: Any) -> Response:
        job = self._job(request, match)
        if isinstance(job, Response):
            return job
        if self._stage(job) == "COMPLETED":
            return Response(400, {"status": "ALREADY_COMPLETED"})
        job.cancelled = True
        return Response(202, {"status": "CANCELLATION_REQUESTED"})

    def _result(self, request: Request, match: Any) -> Response:
        job = self._job(request, match)
        if isinstance(job, Response):
            return job
        if self._stage(job) != "COMPLETED":
            return Response(400, {"detail": "Request is still in progress"})
        if job.cancelled:
            return Response(400, {"detail": "Request was cancelled"})
        if job.fault in FAILURES:
            code, body = FAILURES[job.fault]
            return Response(code, body, {"x-fal-request-id": job.request_id})
        if job.output is None:
            job.output = self._render(job)
            # fal bills a successful request by what it served.
            self.billing.bill(job.request_id, job.endpoint_id,
                              self.machines[job.endpoint_id], job.output,
                              INFERENCE_SECONDS, job.ended_at or time.time())
        return Response(200, job.output, {"x-fal-request-id": job.request_id})

    # ------------------------------------------------------------ media
    def _render(self, job: Job) -> dict[str, Any]:
        params = job.input
        prompt = str(params.get("prompt", ""))
        seed = int(params.get("seed", int(job.request_id[:6], 16)))
        key = self.machines[job.endpoint_id]["output_key"]
        if key == "images":
            count = int(params.get("num_images", 1))
            images = [self._image(job, i, prompt, seed + i) for i in range(count)]
            return {"images": images, "seed": seed, "prompt": prompt,
                    "has_nsfw_concepts": [False] * count,
                    "timings": {"inference": 0.25}}
        if key == "video":
            data = demo_art.render_video(prompt, seed, 64, 64, 1.0, 6)
            return {"video": self._file(job, 0, data, "video/mp4", "mp4")}
        data = demo_art.render_audio(prompt, seed, 1.0)
        return {key: self._file(job, 0, data, "audio/wav", "wav")}

    def _image(self, job: Job, index: int, prompt: str, seed: int) -> dict[str, Any]:
        width, height = self._size(job.input.get("image_size", "square_hd"))
        fmt = job.input.get("output_format", job.input.get("format", "png"))
        data = demo_art.render_image(prompt, seed, width, height, fmt)
        entry = self._file(job, index, data, f"image/{fmt}", fmt)
        return {**entry, "width": width, "height": height}

    def _size(self, image_size: Any) -> tuple[int, int]:
        if isinstance(image_size, dict):
            width, height = image_size.get("width", 512), image_size.get("height", 512)
        else:
            width, height = SIZES.get(image_size, (1024, 1024))
        scale = min(1.0, self.max_side / max(width, height))
        return max(16, round(width * scale)), max(16, round(height * scale))

    def _file(self, job: Job, index: int, data: bytes, content_type: str,
              ext: str) -> dict[str, Any]:
        """Serve one output, spoilt by the job's fault, and describe it."""
        name = f"{job.request_id}-{index}.{ext}"
        served_type = content_type
        if job.fault == "broken":
            data = data[:16] + b"\x00broken" * 64
        elif job.fault == "oversized":
            data = data + b"\x00" * self.oversize_bytes
        elif job.fault == "bomb":
            data, name = _bomb(), f"{job.request_id}-{index}.png"
            content_type = served_type = "image/png"
        elif job.fault == "html":
            data, name = HTML, f"{job.request_id}-{index}.png"
            content_type, served_type = "image/png", "text/html; charset=utf-8"
        url = self.serve_file(name, data, served_type)
        if job.fault == "expired":
            self._expiry[name] = time.time() + self.expire_seconds
        elif job.fault in ("redirect_loopback", "redirect_metadata"):
            self._redirects[name] = self._redirect_target(job.fault, name)
        return {"url": url, "content_type": content_type, "file_name": name,
                "file_size": len(data)}

    def _redirect_target(self, kind: str, name: str) -> str:
        if kind == "redirect_metadata":
            return self.metadata_target
        real = name + ".real"
        self.files[real] = self.files[name]
        port = self.url.rsplit(":", 1)[1]
        return self.loopback_target.format(port=port, name=real)

    def _serve_file(self, request: Request, match: Any) -> Response:
        name = match["name"]
        if name in self._redirects:
            return Response(302, b"", {"Location": self._redirects[name]})
        if time.time() > self._expiry.get(name, float("inf")):
            return Response(404, {"detail": "File not found"})
        return super()._serve_file(request, match)

    # ------------------------------------------------------------ listing
    def _list(self, request: Request, match: Any) -> Response:
        if denied := self._denied(request):
            return denied
        query = request.query
        endpoints = {e for v in query.get("endpoint_id", []) for e in v.split(",")}
        if not endpoints:
            missing = {"loc": ["query", "endpoint_id"], "msg": "Field required",
                       "type": "missing"}
            return Response(422, {"detail": [missing]})
        start = _parse_time(query.get("start", [""])[0], time.time() - 86400)
        end = _parse_time(query.get("end", [""])[0], time.time() + 1)
        payloads = "payloads" in ",".join(query.get("expand", []))
        jobs = sorted((j for j in list(self.jobs.values())
                       if j.endpoint_id in endpoints and start <= j.sent_at < end),
                      key=lambda j: j.sent_at, reverse=True)
        limit = max(1, min(100, int(query.get("limit", ["50"])[0])))
        cursor = query.get("cursor", [""])[0]
        page = int(base64.b64decode(cursor).decode()) if cursor else 0
        chunk = jobs[page * limit:(page + 1) * limit]
        more = len(jobs) > (page + 1) * limit
        return Response(200, {
            "items": [self._item(job, payloads) for job in chunk],
            "has_more": more,
            "next_cursor": base64.b64encode(str(page + 1).encode()).decode()
            if more else None,
        })

    def _item(self, job: Job, payloads: bool) -> dict[str, Any]:
        code = FAILURES[job.fault][0] if job.fault in FAILURES else 200
        item = {"request_id": job.request_id, "endpoint_id": job.endpoint_id,
                "sent_at": _iso(job.sent_at), "started_at": _iso(job.sent_at),
                "ended_at": _iso(job.ended_at) if job.ended_at else None,
                "status_code": code if job.ended_at else None,
                "duration": (job.ended_at - job.sent_at) if job.ended_at else None}
        if payloads:
            item.update(json_input=job.input, json_output=job.output)
        return item

    # ------------------------------------------------------------ webhooks
    def _key_pair(self) -> Ed25519PrivateKey:
        # Under the lock: a webhook signed while the JWKS is first served
        # must not make a key of its own.
        with self.lock:
            if self._signing_key is None:
                self._signing_key = Ed25519PrivateKey.generate()
            return self._signing_key

    @property
    def jwks(self) -> dict[str, Any]:
        """The public half of the fake's webhook key, as fal publishes it."""
        raw = self._key_pair().public_key().public_bytes_raw()
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x,
                          "kid": "fake-fal", "use": "sig", "alg": "EdDSA"}]}

    def _jwks(self, request: Request, match: Any) -> Response:
        return Response(200, self.jwks)

    def sign_webhook(self, request_id: str, body: bytes, user_id: str = "fake-user",
                     timestamp: int | None = None) -> dict[str, str]:
        """Headers fal would send with a webhook carrying ``body``."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        message = "\n".join([request_id, user_id, stamp,
                             hashlib.sha256(body).hexdigest()]).encode()
        return {
            "X-Fal-Webhook-Request-Id": request_id,
            "X-Fal-Webhook-User-Id": user_id,
            "X-Fal-Webhook-Timestamp": stamp,
            "X-Fal-Webhook-Signature": self._key_pair().sign(message).hex(),
        }

    def webhook_call(self, request_id: str, status: str = "OK",
                     payload: Any = None, timestamp: int | None = None
                     ) -> tuple[str, bytes, dict[str, str]]:
        """URL, body and signed headers of the call fal makes when it ends.

        The URL is the ``fal_webhook`` the submit named ("" if none).
        """
        job = self.jobs[request_id]
        body = json.dumps({
            "request_id": request_id, "gateway_request_id": request_id,
            "status": status,
            "payload": (job.output or {}) if payload is None else payload,
        }).encode()
        headers = {"Content-Type": "application/json",
                   **self.sign_webhook(request_id, body, timestamp=timestamp)}
        return job.webhook or "", body, headers

    def deliver_webhook(self, request_id: str, **call: Any) -> httpx.Response:
        """POST the signed completion call to the submit's webhook URL."""
        url, body, headers = self.webhook_call(request_id, **call)
        if not url:
            raise ValueError(f"request {request_id} was submitted without fal_webhook")
        return httpx.post(url, content=body, headers=headers, timeout=30)


def validation_errors(schema: dict[str, Any], body: Any) -> list[dict[str, Any]]:
    """Schema problems of ``body`` in fal's 422 ``detail`` shape."""
    errors = Draft202012Validator(schema).iter_errors(body)
    problems = []
    for error in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path]):
        problems.extend(_fal_problems(error))
    return problems


def _fal_problems(error: ValidationError) -> list[dict[str, Any]]:
    loc = ["body", *error.absolute_path]
    if error.validator == "additionalProperties":
        known = set(error.schema.get("properties", {}))
        return [{"loc": [*loc, k], "msg": "Extra inputs are not permitted",
                 "type": "extra_forbidden", "input": error.instance[k]}
                for k in sorted(set(error.instance) - known)]
    if error.validator == "required":
        return [{"loc": [*loc, k], "msg": "Field required", "type": "missing"}
                for k in error.validator_value if k not in error.instance]
    limit = error.validator_value
    named = {
        "maximum": ("less_than_equal", f"Input should be less than or equal to {limit}",
                    {"le": limit}),
        "minimum": ("greater_than_equal",
                    f"Input should be greater than or equal to {limit}", {"ge": limit}),
        "enum": ("enum", f"Input should be one of {limit}", {"expected": limit}),
    }
    kind, msg, ctx = named.get(error.validator, (error.validator, error.message, None))
    problem = {"loc": loc, "msg": msg, "type": kind, "input": error.instance}
    return [{**problem, "ctx": ctx} if ctx else problem]


def _poke(address: tuple[str, int], stopped: threading.Event) -> None:
    """Connect until the server stops, so its accept loop sees the request."""
    while not stopped.wait(0.01):
        try:
            socket.create_connection(address, timeout=0.1).close()
        except OSError:
            return


@cache
def _bomb() -> bytes:
    out = io.BytesIO()
    Image.new("1", (10000, 10000)).save(out, "PNG")
    return out.getvalue()


def _iso(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, timezone.utc).isoformat().replace(
        "+00:00", "Z")


def _parse_time(text: str, default: float) -> float:
    if not text:
        return default
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

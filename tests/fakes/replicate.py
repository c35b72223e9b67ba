"""A fake Replicate predictions API, as replicate 1.0.7 expects it.

Models and input schemas come from ``seeds/machines/replicate.json``: an
input key outside a schema is a 422 as on the real API. A prediction
advances one state per GET (starting → processing → succeeded, after
``run_seconds`` at the earliest) and its outputs are real images served
at /files/. ``outcomes`` scripts how the next predictions end. A
prediction created with ``webhook`` can have its completion call signed
(Standard Webhooks, ``webhook_secret``) and delivered.

``charged()`` is what Replicate would bill, by the seed machines' prices:
official models per output of a succeeded prediction only; models priced
by hardware time (``compute_second``) for ``metrics.predict_time``
seconds, also when the prediction failed or was cancelled after it
started, as https://replicate.com/docs/topics/billing says of public
models ("you only pay for the time it's active processing your requests").
``predict_seconds`` makes every prediction report that run time.
"""
import base64
import hashlib
import hmac
import json
import os
import random
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft202012Validator

from factory.providers.demo_art import render_image
from tests.fakes.base import Request, Response, ScriptedFake

SEEDS = Path(__file__).resolve().parents[2] / "seeds" / "machines" / "replicate.json"
MODEL = r"/v1/models/(?P<owner>[^/]+)/(?P<name>[^/]+)"
PREDICTION = r"/v1/predictions/(?P<id>[^/]+)"
FORMATS = {"webp": "image/webp", "jpg": "image/jpeg", "png": "image/png"}
RENDER_FORMATS = {"webp": "webp", "jpg": "jpeg", "png": "png"}
NOT_FOUND = Response(404, {"title": "Not found", "status": 404,
                          "detail": "The requested prediction was not found"},
                     content_type="application/problem+json")
BODY_KEYS = {"input", "version", "webhook", "webhook_completed",
             "webhook_events_filter", "stream"}
WEBHOOK_EVENTS = {"start", "output", "logs", "completed"}
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"fake-replicate-webhook-key-32b!!").decode()


@dataclass
class Outcome:
    """How the next created prediction ends.

    kind: "ok"; "failed" (status failed with ``error``); "canceled" (ends
    canceled after running, as a deadline or the web UI does); "broken" (output
    bytes that decode as nothing); "oversized" (a real image padded to
    ``size`` bytes); "mislabeled" (PNG bytes named and typed as JPEG);
    "expiring" (output files answer 404 ``seconds`` after completion).
    """

    kind: str = "ok"
    error: str = "CUDA out of memory. Tried to allocate 2.00 GiB"
    size: int = 20 * 1024 * 1024
    seconds: float = 0.0


def problem(status: int, title: str, detail: str) -> Response:
    """An RFC 7807 answer, as Replicate sends errors."""
    return Response(status, {"title": title, "status": status, "detail": detail},
                    content_type="application/problem+json")


def input_errors(schema: dict[str, Any], payload: Any) -> list[str]:
    """Replicate-style lines for every way ``payload`` breaks ``schema``."""
    if not isinstance(payload, dict):
        return ["- input: Invalid type. Expected: object"]
    lines = []
    for error in Draft202012Validator(schema).iter_errors(payload):
        if error.validator == "additionalProperties":
            extra = [k for k in payload if k not in schema.get("properties", {})]
            lines += [f"- input.{k}: Additional property not allowed" for k in extra]
        else:
            where = ".".join(["input", *map(str, error.path)])
            lines.append(f"- {where}: {error.message}")
    return sorted(lines)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace(
        "+00:00", "Z"
    )


class FakeReplicate(ScriptedFake):
    """Create (by model or version), get, cancel, list, model and version."""

    outcome_type = Outcome

    def __init__(self, token: str = "r8_fake", seeds: Path = SEEDS,
                 page_size: int = 100, side: int = 64,
                 run_seconds: float = 0.0) -> None:
        super().__init__(run_seconds)
        self.token, self.page_size, self.side = token, page_size, side
        self.webhook_secret = WEBHOOK_SECRET
        self.models: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, str] = {}
        self.predictions: dict[str, dict[str, Any]] = {}
        self.hidden: dict[str, dict[str, Any]] = {}
        self.expiry: dict[str, float] = {}
        self.predict_seconds: float | None = None
        self._load(seeds)
        self.route("POST", MODEL + "/predictions", "create", self._create)
        self.route("POST", "/v1/predictions", "create", self._create)
        self.route("GET", "/v1/predictions", "list", self._list)
        self.route("GET", PREDICTION, "get", self._get)
        self.route("POST", PREDICTION + "/cancel", "cancel", self._cancel)
        self.route("GET", MODEL, "model", self._model)
        self.route("GET", MODEL + r"/versions/(?P<version>[^/]+)", "version",
                   self._version)

    def _load(self, seeds: Path) -> None:
        for machine in json.loads(seeds.read_text())["machines"]:
            model = machine["endpoint_id"]
            pinned = machine.get("version", "")
            version = pinned or hashlib.sha256(model.encode()).hexdigest()
            self.models[model] = {"schema": machine["input_schema"],
                                  "official": not pinned, "version": version,
                                  "price": machine["price"]}
            self.versions[version] = model

    # ------------------------------------------------------------ scripting
    def reset(self) -> None:
        """Forget every prediction, file, fault and request, for the next test."""
        with self.state_lock:
            self.forget(self.predictions, self.hidden, self.expiry)
            self.page_size = 100
            self.predict_seconds = None

    def abort(self, prediction_id: str) -> None:
        """End a prediction as ``Cancel-After`` does: status ``aborted``."""
        with self.state_lock:
            self.predictions[prediction_id].update(
                status="aborted", completed_at=_now())

    def charged(self) -> dict[str, Decimal]:
        """{prediction id: amount in USD} of every prediction Replicate bills."""
        with self.state_lock:
            records = [dict(p) for p in self.predictions.values()]
        billed = {}
        for record in records:
            amount = self._bill(record)
            if amount:
                billed[record["id"]] = amount
        return billed

    def _bill(self, record: dict[str, Any]) -> Decimal:
        price = self.models[record["model"]]["price"]
        each = Decimal(price["amount"])
        if price["unit"] == "compute_second":
            ran = (record.get("metrics") or {}).get("predict_time")
            return Decimal(str(ran)) * each if ran is not None else Decimal(0)
        if record["status"] != "succeeded":
            return Decimal(0)
        output = record["output"]
        return each * (len(output) if isinstance(output, list) else 1)

    def _ran(self, hidden: dict[str, Any]) -> float:
        """The run time a prediction reports."""
        if self.predict_seconds is not None:
            return self.predict_seconds
        return round(time.monotonic() - hidden["born"], 3)

    def prediction(self, prediction_id: str) -> dict[str, Any]:
        with self.state_lock:
            return dict(self.predictions[prediction_id])

    # ------------------------------------------------------------ webhooks
    def webhook_of(self, prediction_id: str) -> tuple[str | None, list[str]]:
        """The webhook URL and events filter the create asked for."""
        with self.state_lock:
            hidden = self.hidden[prediction_id]
            return hidden.get("webhook"), list(hidden.get("webhook_events") or [])

    def sign_webhook(self, body: bytes, webhook_id: str,
                     timestamp: int | None = None) -> dict[str, str]:
        """Standard Webhooks headers for ``body``, signed with the secret."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        key = base64.b64decode(self.webhook_secret.removeprefix("whsec_"))
        mac = hmac.new(key, f"{webhook_id}.{stamp}.".encode() + body, hashlib.sha256)
        return {"webhook-id": webhook_id, "webhook-timestamp": stamp,
                "webhook-signature": "v1," + base64.b64encode(mac.digest()).decode()}

    def webhook_call(self, prediction_id: str, webhook_id: str | None = None,
                     timestamp: int | None = None
                     ) -> tuple[str, bytes, dict[str, str]]:
        """URL, body (the prediction) and signed headers of a completion call."""
        url, _ = self.webhook_of(prediction_id)
        body = json.dumps(self.prediction(prediction_id)).encode()
        webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
        headers = {"Content-Type": "application/json",
                   **self.sign_webhook(body, webhook_id, timestamp)}
        return url or "", body, headers

    def deliver_webhook(self, prediction_id: str, **call: Any) -> httpx.Response:
        """POST the signed completion call to the prediction's webhook URL."""
        url, body, headers = self.webhook_call(prediction_id, **call)
        if not url:
            raise ValueError(f"prediction {prediction_id} was created without webhook")
        return httpx.post(url, content=body, headers=headers, timeout=30)

    # ------------------------------------------------------------ routes
    def _denied(self, request: Request) -> Response | None:
        if request.headers.get("authorization") == f"Bearer {self.token}":
            return None
        return problem(401, "Unauthenticated",
                       "You did not pass a valid authentication token")

    def _create(self, request: Request, match: re.Match) -> Response:
        denied = self._denied(request)
        if denied:
            return denied
        try:
            body = request.json()
        except ValueError:
            return problem(400, "Bad request", "The request body is not JSON")
        if not isinstance(body, dict) or set(body) - BODY_KEYS:
            return problem(422, "Invalid request", "Unknown fields in the body")
        model, failure = self._target(match, body)
        if failure:
            return failure
        errors = input_errors(self.models[model]["schema"], body.get("input"))
        events = body.get("webhook_events_filter") or []
        if set(events) - WEBHOOK_EVENTS:
            errors.append("- webhook_events_filter: unknown event")
        if errors:
            return problem(422, "Input validation failed", "\n".join(errors))
        prediction = self._start_prediction(model, body["input"], request.path)
        with self.state_lock:
            self.hidden[prediction["id"]].update(
                webhook=body.get("webhook"), webhook_events=events)
        wait = _prefer_wait(request.headers.get("prefer", ""))
        if wait is not None:
            self._hold(prediction["id"], wait)
        return Response(201, self.prediction(prediction["id"]))

    def _target(self, match: re.Match, body: dict[str, Any]) -> tuple[str, Any]:
        if "owner" in match.groupdict():
            model = f"{match['owner']}/{match['name']}"
            if model not in self.models:
                return "", problem(404, "Not found", f"Model {model} not found")
            if not self.models[model]["official"] or "version" in body:
                return "", problem(
                    422, "Invalid request",
                    f"{model} is not an official model: create with a version")
            return model, None
        version = str(body.get("version", "")).rsplit(":", 1)[-1]
        if version not in self.versions:
            return "", problem(422, "Invalid version",
                               "Invalid version or not permitted")
        return self.versions[version], None

    def _start_prediction(self, model: str, payload: dict[str, Any],
                          path: str) -> dict[str, Any]:
        pid = base64.b32encode(os.urandom(20)).decode().lower()[:26]
        base = f"{self.url}/v1/predictions/{pid}"
        record = {
            "id": pid, "model": model, "version": self.models[model]["version"],
            "input": payload, "output": None, "logs": "", "error": None,
            "status": "starting", "created_at": _now(), "started_at": None,
            "completed_at": None, "data_removed": False, "source": "api",
            "metrics": {}, "urls": {"get": base, "cancel": base + "/cancel",
                                    "web": f"https://replicate.com/p/{pid}"},
        }
        with self.state_lock:
            self.predictions[pid] = record
            self.hidden[pid] = {"born": time.monotonic(), "outcome": self.next_outcome()}
        self.record_submission({"id": pid, "model": model, "path": path,
                                "version": record["version"], "input": payload})
        return record

    def _get(self, request: Request, match: re.Match) -> Response:
        denied = self._denied(request)
        if denied:
            return denied
        if match["id"] not in self.predictions:
            return NOT_FOUND
        answer = self.prediction(match["id"])
        self._advance(match["id"])  # the next poll sees the next state
        return Response(200, answer)

    def _cancel(self, request: Request, match: re.Match) -> Response:
        denied = self._denied(request)
        if denied:
            return denied
        with self.state_lock:
            record = self.predictions.get(match["id"])
            if record is None:
                return NOT_FOUND
            if record["status"] == "processing":  # it ran until now: billed
                record["metrics"] = {"predict_time": self._ran(self.hidden[record["id"]])}
            if record["status"] in ("starting", "processing"):
                record.update(status="canceled", completed_at=_now())
            return Response(200, dict(record))

    def _list(self, request: Request, match: re.Match) -> Response:
        denied = self._denied(request)
        if denied:
            return denied
        start = int(request.query.get("cursor", ["0"])[0])
        with self.state_lock:
            newest = [dict(p) for p in reversed(self.predictions.values())]
        end = start + self.page_size
        link = f"{self.url}/v1/predictions?cursor="
        return Response(200, {
            "next": link + str(end) if end < len(newest) else None,
            "previous": link + str(max(0, start - self.page_size)) if start else None,
            "results": newest[start:end],
        })

    def _model(self, request: Request, match: re.Match) -> Response:
        model = f"{match['owner']}/{match['name']}"
        denied = self._denied(request)
        if denied or model not in self.models:
            return denied or problem(404, "Not found", f"Model {model} not found")
        return Response(200, {
            "url": f"https://replicate.com/{model}", "owner": match["owner"],
            "name": match["name"], "description": "", "visibility": "public",
            "github_url": None, "paper_url": None, "license_url": None,
            "run_count": 0, "cover_image_url": None, "default_example": None,
            "latest_version": self._version_json(model),
        })

    def _version(self, request: Request, match: re.Match) -> Response:
        model = self.versions.get(match["version"])
        denied = self._denied(request)
        if denied or model != f"{match['owner']}/{match['name']}":
            return denied or problem(404, "Not found", "Version not found")
        return Response(200, self._version_json(model))

    def _version_json(self, model: str) -> dict[str, Any]:
        spec = self.models[model]
        return {"id": spec["version"], "created_at": "2024-08-01T00:00:00Z",
                "cog_version": "0.9.0", "openapi_schema": {
                    "components": {"schemas": {"Input": spec["schema"]}}}}

    def _serve_file(self, request: Request, match: re.Match) -> Response:
        gone_at = self.expiry.get(match["name"])
        if gone_at is not None and time.monotonic() >= gone_at:
            return Response(404, {"detail": "Not Found"})
        return super()._serve_file(request, match)

    # ------------------------------------------------------------ lifecycle
    def _advance(self, pid: str, force: bool = False) -> None:
        with self.state_lock:
            record, hidden = self.predictions[pid], self.hidden[pid]
            if record["status"] == "starting":
                seed = record["input"].get("seed", random.randrange(2**31))
                hidden["seed"] = seed
                record.update(status="processing", started_at=_now(),
                              logs=f"Using seed: {seed}\n")
            elif record["status"] == "processing":
                ran = time.monotonic() - hidden["born"]
                if force or ran >= self.run_seconds:
                    self._finish(record, hidden, ran)

    def _finish(self, record: dict[str, Any], hidden: dict[str, Any],
                ran: float) -> None:
        outcome: Outcome = hidden["outcome"]
        record.update(completed_at=_now(), metrics={"predict_time": self._ran(hidden)})
        if outcome.kind == "canceled":
            record.update(status="canceled")
            return
        if outcome.kind == "failed":
            record.update(status="failed", error=outcome.error,
                          logs=record["logs"] + outcome.error + "\n")
            return
        urls = [self._output_file(record, hidden["seed"] + i, i, outcome)
                for i in range(int(record["input"].get("num_outputs", 1)))]
        one_file = "num_outputs" not in self.models[record["model"]]["schema"][
            "properties"]
        record.update(status="succeeded", output=urls[0] if one_file else urls,
                      logs=record["logs"] + "100%|##########| 4/4\n")

    def _output_file(self, record: dict[str, Any], seed: int, index: int,
                     outcome: Outcome) -> str:
        payload = record["input"]
        fmt = payload.get("output_format", "png")
        width, height = self._size(payload)
        data = render_image(payload["prompt"], seed, width, height,
                            RENDER_FORMATS[fmt])
        content_type = FORMATS[fmt]
        if outcome.kind == "broken":
            data = data[:8] + os.urandom(256)
        elif outcome.kind == "oversized":
            data = data + bytes(max(0, outcome.size - len(data)))
        elif outcome.kind == "mislabeled":
            data = render_image(payload["prompt"], seed, width, height, "png")
            fmt, content_type = "jpg", FORMATS["jpg"]
        name = f"{record['id']}-{index}.{fmt}"
        if outcome.kind == "expiring":
            self.expiry[name] = time.monotonic() + outcome.seconds
        return self.serve_file(name, data, content_type)

    def _size(self, payload: dict[str, Any]) -> tuple[int, int]:
        """A small render with the requested shape."""
        if "width" in payload and "height" in payload:
            wide, tall = payload["width"], payload["height"]
        else:
            ratio = payload.get("aspect_ratio", "1:1")
            wide, tall = (int(x) for x in ratio.split(":")) if ":" in ratio else (1, 1)
        scale = self.side / max(wide, tall)
        return max(16, round(wide * scale)), max(16, round(tall * scale))


def _prefer_wait(header: str) -> float | None:
    """Seconds asked for by ``Prefer: wait`` or ``wait=N``, if present."""
    found = re.search(r"\bwait(?:=(\d+))?", header)
    if not found:
        return None
    return float(found.group(1) or 60)

"""Civitai orchestration v2 workflows over plain httpx.

civitai-py speaks the older v1 jobs API, so the v2 requests are sent here.
Every submission carries an ``externalId``: Civitai answers a repeat with
the workflow it already has, so resending the same key cannot pay twice.
The key is also a tag, which is how ``find`` lists the workflow again.
The imageGen step input rejects unknown keys, so the workflow-level
``allowMatureContent`` switch is lifted out of it and the engine, model
and operation the step requires are added.
"""
import hashlib
import json
import mimetypes
import re
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
from django.conf import settings

from factory.providers import base
from factory.providers.base import (
    BilledRequest,
    Charge,
    ConfigurationError,
    MachineSpec,
    NoListingError,
    OutputFacts,
    OutcomeUnknownError,
    PermanentError,
    Price,
    ProviderBackend,
    ProviderError,
    RemoteOutput,
    RemoteState,
    RemoteStatus,
    TransientError,
    aware,
    parse_retry_after,
)

WORKFLOWS = "/v2/consumer/workflows"
STATES = {
    "unassigned": RemoteState.QUEUED,
    "preparing": RemoteState.QUEUED,
    "scheduled": RemoteState.QUEUED,
    "processing": RemoteState.RUNNING,
    "succeeded": RemoteState.COMPLETED,
    "failed": RemoteState.FAILED,
    "expired": RemoteState.FAILED,
    "canceled": RemoteState.CANCELLED,
}
STEP_FIELDS = {"engine": "sdcpp", "operation": "createImage"}
WORKFLOW_FIELDS = ("allowMatureContent",)
SAFE_NSFW_LEVELS = ("pg", "pg13")
KEY = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
TAG = "artfactory"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def request_key(machine: MachineSpec, params: dict[str, Any]) -> str:
    """The default idempotency key: a digest of endpoint and input."""
    text = json.dumps([machine.endpoint_id, params], sort_keys=True,
                      separators=(",", ":"))
    return "af-" + hashlib.sha256(text.encode()).hexdigest()


def workflow_body(
    machine: MachineSpec, params: dict[str, Any], key: str
) -> dict[str, Any]:
    """One imageGen step for the machine's AIR, keyed and tagged by ``key``."""
    air = machine.endpoint_id.split(":")
    if air[:2] != ["urn", "air"] or len(air) < 6:
        raise PermanentError(f"civitai endpoint {machine.endpoint_id!r} is not an AIR")
    step_input = {k: v for k, v in params.items() if k not in WORKFLOW_FIELDS}
    step_input.update(STEP_FIELDS, ecosystem=air[2], model=machine.endpoint_id)
    body: dict[str, Any] = {
        "steps": [{"$type": "imageGen", "input": step_input}],
        "externalId": key, "tags": [TAG, key],
    }
    body.update({k: params[k] for k in WORKFLOW_FIELDS if k in params})
    return body

# Buzz in USD: Civitai sells 1,000 Buzz for 1 USD (civitai.com/pricing).
BUZZ_PRICE = Decimal("0.001")

class CivitaiBackend(ProviderBackend):
    slug = "civitai"
    key_setting = "CIVITAI_API_TOKEN"

    def charge(
        self, price: Price, outputs: list[RemoteOutput], stored: list[OutputFacts],
    ) -> Charge:
        """A workflow reports its ``cost.total`` in Buzz, bought at
        ``BUZZ_PRICE`` each; without it the per-output rule applies."""
        buzz = next((o.metrics["cost_buzz"] for o in outputs
                     if isinstance(o.metrics.get("cost_buzz"), (int, float))), None)
        if buzz is None:
            return super().charge(price, outputs, stored)
        return Charge(Decimal(str(buzz)), "buzz", BUZZ_PRICE)

    def usage(self, since: datetime, prices: dict[str, Price]) -> list[BilledRequest]:
        raise NoListingError(
            "Civitai has no listing of what it charged: the ledger takes each "
            "workflow's own cost.total, so there is nothing to compare it with")

    def __init__(self, timeout: httpx.Timeout | float | None = None) -> None:
        if not isinstance(timeout, httpx.Timeout):
            timeout = DEFAULT_TIMEOUT if timeout is None else httpx.Timeout(timeout)
        self.timeout = timeout
        self._http: httpx.Client | None = None

    @property
    def http(self) -> httpx.Client:
        """An httpx client, built at first use so settings are read late."""
        if self._http is None:
            token = settings.CIVITAI_API_TOKEN
            if not token:
                raise ConfigurationError("CIVITAI_API_TOKEN is not set")
            self._http = httpx.Client(
                base_url=settings.CIVITAI_BASE_URL, timeout=self.timeout,
                headers={"Authorization": f"Bearer {token}"},
            )
        return self._http

    def submit(
        self, machine: MachineSpec, params: dict[str, Any], *, key: str | None = None
    ) -> str:
        """Create one workflow under ``key``; resending the same key is safe.

        Without a key the input's digest is used, so identical inputs share
        one workflow: callers pass a key per item.
        """
        key = key or request_key(machine, params)
        if not KEY.match(key):
            raise PermanentError(f"civitai key {key[:40]!r}: need 1-128 of A-Za-z0-9_-")
        what = f"submit to {machine.endpoint_id}"
        try:
            response = self.http.post(
                WORKFLOWS, params={"wait": 0, "whatif": False},
                json=workflow_body(machine, params, key),
            )
        except NOT_SENT as exc:
            raise TransientError(f"civitai {what}: not sent: {exc}") from None
        except httpx.TransportError as exc:
            raise OutcomeUnknownError(
                f"civitai {what}: no answer after sending ({type(exc).__name__});"
                f" find it or resend with key {key}"
            ) from None
        workflow = self._read(response, what, sent=True)
        if not workflow.get("id"):
            raise OutcomeUnknownError(f"civitai {what}: answer without a workflow id")
        return str(workflow["id"])

    def status(self, machine: MachineSpec, request_id: str) -> RemoteStatus:
        workflow = self._workflow(request_id)
        state = STATES.get(workflow.get("status"))
        if state is None:
            raise PermanentError(
                f"civitai workflow {request_id}: unknown status "
                f"{workflow.get('status')!r}"
            )
        logs = [f"{s.get('name') or s.get('$type')}: {s.get('status')}"
                for s in workflow.get("steps") or []]
        return RemoteStatus(state, logs=logs, error=_error_text(workflow, state))

    def result(self, machine: MachineSpec, request_id: str) -> list[RemoteOutput]:
        """Freshly signed image URLs: they expire, so every call re-reads."""
        workflow = self._workflow(request_id)
        if workflow.get("status") != "succeeded":
            raise PermanentError(
                f"civitai workflow {request_id} is {workflow.get('status')},"
                " not succeeded"
            )
        images = [image for step in workflow.get("steps") or []
                  for image in (step.get("output") or {}).get("images") or []]
        usable = [i for i in images if i.get("url") and not i.get("blockedReason")]
        if not usable:
            raise _no_images(request_id, images)
        seed = _seed(workflow)
        cost = (workflow.get("cost") or {}).get("total")
        metrics = {"cost_buzz": cost} if cost is not None else {}
        return [_output(image, seed, metrics) for image in usable]

    def cancel(self, machine: MachineSpec, request_id: str) -> None:
        what = f"cancel {request_id}"
        try:
            response = self.http.put(
                f"{WORKFLOWS}/{request_id}", json={"status": "canceled"}
            )
        except httpx.TransportError as exc:
            raise TransientError(f"civitai {what}: {type(exc).__name__}") from None
        if response.status_code >= 400:
            raise _http_error(response, what)

    def find(
        self,
        machine: MachineSpec,
        submitted_after: datetime,
        params: dict[str, Any],
        *,
        key: str | None = None,
    ) -> str | None:
        """The workflow submitted under ``key`` (default: the input's digest)."""
        key = key or request_key(machine, params)
        page = self._get(
            WORKFLOWS, "workflow list",
            params={"tags": key, "fromDate": aware(submitted_after).isoformat(),
                    "take": 100},
        )
        for workflow in page.get("items") or []:
            external = str(workflow.get("externalId") or "")
            if key in (workflow.get("tags") or []) or external.endswith(key):
                return str(workflow["id"])
        return None

    # ------------------------------------------------------------ helpers
    def _workflow(self, request_id: str) -> dict[str, Any]:
        return self._get(f"{WORKFLOWS}/{request_id}", f"workflow {request_id}")

    def _get(self, path: str, what: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self.http.get(path, **kwargs)
        except httpx.TransportError as exc:
            raise TransientError(f"civitai {what}: {type(exc).__name__}") from None
        return self._read(response, what)

    @staticmethod
    def _read(response: httpx.Response, what: str, sent: bool = False) -> dict:
        if response.status_code >= 400:
            raise _http_error(response, what)
        try:
            data = response.json()
        except ValueError:
            data = None
        if isinstance(data, dict):
            return data
        if sent:
            raise OutcomeUnknownError(f"civitai {what}: unreadable answer")
        raise TransientError(f"civitai {what}: unreadable answer")


def _http_error(response: httpx.Response, what: str) -> ProviderError:
    status, detail = response.status_code, _problem_text(response)
    message = (f"civitai refused the API token ({status}): {detail}"
               if status in (401, 403) else f"civitai {what}: {status} {detail}")
    return base.classify(status, message, key_setting="CIVITAI_API_TOKEN",
                         retry_after=_retry_after(response))


def _problem_text(response: httpx.Response) -> str:
    """ProblemDetails as one line: detail or title, then field errors."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if not isinstance(body, dict):
        return str(body)[:300]
    parts = [str(body.get("detail") or body.get("title") or "no detail given")]
    for field, messages in (body.get("errors") or {}).items():
        listed = messages if isinstance(messages, list) else [messages]
        parts.append(f"{field}: {' '.join(map(str, listed))}")
    return "; ".join(parts)


def _retry_after(response: httpx.Response) -> float | None:
    return parse_retry_after(response.headers.get("retry-after"))


def _error_text(workflow: dict[str, Any], state: RemoteState) -> str:
    if state != RemoteState.FAILED:
        return ""
    errors = [str(e) for step in workflow.get("steps") or []
              for e in (step.get("output") or {}).get("errors") or []]
    return "; ".join(errors) or f"workflow {workflow.get('status')}"


def _no_images(request_id: str, images: list[dict[str, Any]]) -> ProviderError:
    blocked = sorted({str(i["blockedReason"]) for i in images
                      if i.get("blockedReason")})
    if blocked:
        return PermanentError(
            f"civitai workflow {request_id}: every image was blocked "
            f"({', '.join(blocked)})"
        )
    if images:
        return TransientError(
            f"civitai workflow {request_id}: images not available yet"
        )
    return PermanentError(f"civitai workflow {request_id} produced no images")


def _seed(workflow: dict[str, Any]) -> int | None:
    """The requested seed, when it belongs to a single image."""
    steps = workflow.get("steps") or [{}]
    step_input = steps[0].get("input") or {}
    seed = step_input.get("seed")
    if isinstance(seed, int) and step_input.get("quantity", 1) == 1:
        return seed
    return None


def _output(image: dict[str, Any], seed: int | None, metrics: dict) -> RemoteOutput:
    path = image["url"].split("?", 1)[0]
    level = image.get("nsfwLevel")
    nsfw = None if level in (None, "na") else level not in SAFE_NSFW_LEVELS
    return RemoteOutput(
        url=image["url"], content_type=mimetypes.guess_type(path)[0] or "",
        seed=seed, nsfw=nsfw, metrics=dict(metrics),
    )

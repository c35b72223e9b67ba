"""Reading Replicate's answers: statuses, outputs, listings and errors.

Pure functions over prediction dicts and the client's ``ReplicateError``,
shared by the calls in ``replicate.py``. Every failure becomes one of the
adapter errors of ``base.py``.
"""
import base64
import json
import mimetypes
import re
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from replicate.exceptions import ReplicateError

from factory.providers import base
from factory.providers.base import (
    MachineSpec,
    PermanentError,
    ProviderError,
    RemoteOutput,
    RemoteState,
    RemoteStatus,
)

# A URL-like string (no spaces) with a scheme we never download.
SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]{1,30}):\S*$")
STATES = {
    "starting": RemoteState.QUEUED,
    "processing": RemoteState.RUNNING,
    "succeeded": RemoteState.COMPLETED,
    "failed": RemoteState.FAILED,
    "canceled": RemoteState.CANCELLED,
    "aborted": RemoteState.CANCELLED,
}
SEED_IN_LOGS = re.compile(r"\bseed\b\s*[:=]?\s*(-?\d+)", re.IGNORECASE)
LOG_LINES = 20
CONTENT_TYPES = {".webp": "image/webp", ".png": "image/png", ".jpg": "image/jpeg"}


# ---------------------------------------------------------------- answers
def parse_status(data: dict[str, Any], request_id: str) -> RemoteStatus:
    """A prediction's status, its last log lines and its error, if any."""
    state = STATES.get(data.get("status"))
    if state is None:
        raise PermanentError(
            f"replicate prediction {request_id}: unknown status "
            f"{data.get('status')!r}"
        )
    logs = (data.get("logs") or "").splitlines()[-LOG_LINES:]
    metrics = data.get("metrics")
    return RemoteStatus(state, logs=logs, error=_error_text(data, state),
                        metrics=dict(metrics) if isinstance(metrics, dict) else {})


def _error_text(data: dict[str, Any], state: RemoteState) -> str:
    if data.get("status") == "aborted":
        return "aborted by Replicate before it started (Cancel-After deadline)"
    if state == RemoteState.FAILED:
        return str(data.get("error") or "the prediction failed")
    return ""


def parse_outputs(data: dict[str, Any], request_id: str) -> list[RemoteOutput]:
    """Output URLs with seed and metrics; data URIs come back as bytes."""
    if data.get("status") != "succeeded":
        raise PermanentError(
            f"replicate prediction {request_id} is {data.get('status')},"
            " not succeeded"
        )
    urls, refused = _output_urls(data.get("output"))
    if refused:
        raise PermanentError(
            f"replicate prediction {request_id} lists outputs with a scheme that is"
            f" never downloaded: {', '.join(sorted(refused))} (only https, http"
            " and data are)"
        )
    if not urls:
        raise PermanentError(
            f"replicate prediction {request_id} has no output URLs"
            " (API outputs are deleted after one hour)"
        )
    seed, metrics = _seed(data), dict(data.get("metrics") or {})
    return [_output(url, seed, metrics) for url in urls]


def _output_urls(output: Any) -> tuple[list[str], set[str]]:
    """URL strings of an output that is one URL, a list or a dict of them,
    and the schemes of the strings that looked like URLs of another kind."""
    if isinstance(output, dict):
        output = list(output.values())
    items = output if isinstance(output, list) else [output]
    prefixes = ("https://", "http://", "data:")
    urls, refused = [], set()
    for entry in items:
        if not isinstance(entry, str):
            continue
        scheme = SCHEME.match(entry)
        if entry.startswith(prefixes):
            urls.append(entry)
        elif scheme:
            refused.add(scheme.group(1).lower() + ":")
    return urls, refused


def _seed(data: dict[str, Any]) -> int | None:
    found = SEED_IN_LOGS.search(data.get("logs") or "")
    if found:
        return int(found.group(1))
    seed = (data.get("input") or {}).get("seed")
    return seed if isinstance(seed, int) else None


def _output(url: str, seed: int | None, metrics: dict[str, Any]) -> RemoteOutput:
    if url.startswith("data:"):
        header, _, payload = url.partition(",")
        content = (
            base64.b64decode(payload) if header.endswith(";base64")
            else unquote_to_bytes(payload)
        )
        content_type = header[5:].split(";")[0]
        return RemoteOutput(
            content=content, content_type=content_type, size=len(content),
            seed=seed, metrics=metrics,
        )
    path = urlsplit(url).path
    suffix = path[path.rfind("."):].lower() if "." in path else ""
    content_type = CONTENT_TYPES.get(suffix) or mimetypes.guess_type(path)[0] or ""
    return RemoteOutput(url=url, content_type=content_type, seed=seed, metrics=metrics)


# ---------------------------------------------------------------- listings
def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def same_request(machine: MachineSpec, entry: dict[str, Any], wanted: str) -> bool:
    """Whether a listed prediction ran this machine on the ``wanted`` input."""
    if entry.get("model") != machine.endpoint_id:
        return False
    if machine.version and entry.get("version") != machine.version:
        return False
    return canonical(entry.get("input")) == wanted


# ---------------------------------------------------------------- errors
def classify(
    exc: ReplicateError, what: str, retry_after: float | None
) -> ProviderError:
    """The adapter error an HTTP error answer from Replicate stands for.

    ``retry_after`` is the wait the answer asked for; only transient
    errors carry it.
    """
    status = exc.status or 0
    detail = exc.detail or exc.title or "no detail given"
    message = (f"replicate refused the API token ({status}): {detail}"
               if status in (401, 403) else f"replicate {what}: {status} {detail}")
    return base.classify(status, message, key_setting="REPLICATE_API_TOKEN",
                         retry_after=retry_after)

"""Reading fal's answers: request ids, statuses, outputs and errors.

Pure functions over httpx responses and JSON bodies, shared by the calls
in ``fal.py``. Every failure becomes one of the adapter errors of
``base.py`` with the key redacted from its message.
"""
import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from factory.providers import base
from factory.providers.base import (
    OutcomeUnknownError,
    PermanentError,
    ProviderError,
    RemoteOutput,
    RemoteState,
    RemoteStatus,
    TransientError,
    parse_retry_after,
)

CANCELLED_TYPES = {"client_cancelled"}
RUNNING_STATES = {"IN_QUEUE": RemoteState.QUEUED, "IN_PROGRESS": RemoteState.RUNNING}


# ---------------------------------------------------------------- answers
def submitted_request_id(response: httpx.Response, endpoint: str, key: str) -> str:
    """The request id of a submit answer, or the error it stands for."""
    if response.is_success:
        try:
            return str(response.json()["request_id"])
        except (ValueError, KeyError, TypeError):
            raise OutcomeUnknownError(
                f"fal submit {endpoint}: HTTP {response.status_code} without a "
                "request id; the request may have been queued"
            ) from None
    if is_gateway_ambiguity(response):
        raise OutcomeUnknownError(describe(response, "submit", endpoint, key)
                                  + "; the request may have been queued")
    raise classify(response, "submit", endpoint, key)


def parse_status(data: Any, request_id: str) -> RemoteStatus:
    """A status body (``IN_QUEUE``, ``IN_PROGRESS``, ``COMPLETED``) as a state.

    fal has no FAILED state: a failed request ends COMPLETED with ``error``.
    """
    if not isinstance(data, dict):
        raise TransientError(f"fal status {request_id}: answer is not an object")
    stage, logs = data.get("status"), log_lines(data.get("logs"))
    if stage == "IN_QUEUE":
        position = data.get("queue_position")
        return RemoteStatus(RemoteState.QUEUED, logs=logs,
                            queue_position=position if isinstance(position, int) else None)
    if stage == "IN_PROGRESS":
        return RemoteStatus(RemoteState.RUNNING, logs=logs)
    if stage != "COMPLETED":
        raise PermanentError(f"fal status {request_id}: unknown status {stage!r}")
    error, kind = data.get("error"), data.get("error_type")
    if not error:
        return RemoteStatus(RemoteState.COMPLETED, logs=logs)
    if kind in CANCELLED_TYPES:
        return RemoteStatus(RemoteState.CANCELLED, logs=logs, error=str(error))
    suffix = f" ({kind})" if kind else ""
    return RemoteStatus(RemoteState.FAILED, logs=logs, error=f"{error}{suffix}")


def log_lines(logs: Any) -> list[str]:
    entries = logs if isinstance(logs, list) else []
    return [str(e.get("message", e)) if isinstance(e, dict) else str(e)
            for e in entries]


def parse_outputs(
    data: Any, output_key: str, metrics: dict[str, Any], request_id: str
) -> list[RemoteOutput]:
    """One descriptor per file under ``output_key`` (a list or one file)."""
    files = data.get(output_key) if isinstance(data, dict) else None
    if files is None:
        raise PermanentError(f"fal request {request_id}: result has no {output_key!r}")
    files = files if isinstance(files, list) else [files]
    nsfw, seed = data.get("has_nsfw_concepts") or [], data.get("seed")
    if data.get("timings"):
        metrics = {**metrics, "timings": data["timings"]}
    return [
        _output(entry, seed if isinstance(seed, int) else None,
                bool(nsfw[i]) if i < len(nsfw) else None, metrics)
        for i, entry in enumerate(files)
    ]


def _output(
    entry: Any, seed: int | None, nsfw: bool | None, metrics: dict[str, Any]
) -> RemoteOutput:
    entry = {"url": entry} if isinstance(entry, str) else dict(entry)
    url, content_type = str(entry.get("url") or ""), str(entry.get("content_type") or "")
    if not url:
        raise PermanentError(f"fal result lists a file without a URL: {entry!r}")
    content = None
    if url.startswith("data:"):  # sync_mode answers carry the bytes inline
        header, _, payload = url.partition(",")
        content_type = content_type or header[5:].split(";")[0]
        content = base64.b64decode(payload) if ";base64" in header else payload.encode()
        url = ""
    size = entry.get("file_size")
    dims = {k: entry[k] for k in ("width", "height") if entry.get(k)}
    return RemoteOutput(
        url=url, content=content, content_type=content_type,
        size=size if isinstance(size, int) else None,
        seed=seed, nsfw=nsfw, metrics={**metrics, **dims},
    )


# ---------------------------------------------------------------- errors
def redact(text: str, key: str) -> str:
    text = " ".join(str(text).split())
    return text.replace(key, "***") if key else text


def failure_detail(response: httpx.Response) -> tuple[str, str]:
    """fal's error detail (a 422 list as ``loc: msg`` pairs) and error type."""
    kind = response.headers.get("x-fal-error-type", "")
    try:
        body = response.json()
    except ValueError:
        return response.text[:300], kind
    if isinstance(body, dict):
        kind = str(body.get("error_type") or kind)
        body = body.get("detail", body)
    if not isinstance(body, list):
        return str(body)[:300], kind
    return "; ".join(
        ".".join(str(p) for p in item.get("loc", []) if p != "body") + ": "
        + str(item.get("msg", item.get("type", "invalid")))
        if isinstance(item, dict) else str(item)
        for item in body
    ), kind


def describe(response: httpx.Response, action: str, subject: str, key: str) -> str:
    detail, kind = failure_detail(response)
    return redact(f"fal {action} {subject}: HTTP {response.status_code}"
                  f"{f' [{kind}]' if kind else ''}: {detail}", key)


def classify(
    response: httpx.Response, action: str, subject: str, key: str
) -> ProviderError:
    """The adapter error an HTTP error answer from fal stands for.

    fal's queue answers 409 while a request changes hands: it passes.
    """
    return base.classify(
        response.status_code, describe(response, action, subject, key),
        key_setting="FAL_KEY", also_transient=frozenset({409}),
        retry_after=parse_retry_after(response.headers.get("retry-after")),
    )


def is_gateway_ambiguity(response: httpx.Response) -> bool:
    """A 502/504 from a gateway in front of fal, which may have passed it on."""
    if response.status_code not in (502, 504) or "x-fal-request-id" in response.headers:
        return False
    try:
        body = response.json()
    except ValueError:
        return True
    return not (isinstance(body, dict) and body.get("error_type"))


def transport_message(
    action: str, subject: str, exc: Exception, key: str, note: str = ""
) -> str:
    return redact(f"fal {action} {subject}: {type(exc).__name__}: {exc}{note}", key)


@contextmanager
def reading(action: str, subject: str, key: str) -> Iterator[None]:
    """Turn transport failures and unreadable bodies of a read into errors.

    A read spends nothing, so every transport failure, a timeout included,
    is transient: the foreman polls again at its next round.
    """
    try:
        yield
    except httpx.HTTPError as exc:
        raise TransientError(transport_message(action, subject, exc, key)) from exc
    except json.JSONDecodeError:
        raise TransientError(f"fal {action} {subject}: answer is not JSON") from None

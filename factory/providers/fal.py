"""fal.ai queue adapter.

Submit is one plain httpx POST to ``{FAL_QUEUE_URL}{endpoint_id}`` with the
headers fal-client sends (``Authorization: Key …``, its User-Agent, a JSON
body). fal-client's own ``submit`` is avoided: it repeats the POST up to ten
times on timeouts, 408/409/429 and gateway 502/504, and fal has no idempotency
key, so each repeat can be a second paid generation. Here a failure raises
``TransientError`` only when the request provably never left (refused
connection, DNS failure, connect timeout) or fal answered and refused it;
anything after the body may have left raises ``OutcomeUnknownError``, to be
reconciled with ``find``.

Status, result and cancel go through fal-client's ``SyncClient`` (its
retries cost time, never money). Handles come from ``get_handle`` with their
URLs rebuilt from FAL_QUEUE_URL as ``{queue}{owner}/{app}/requests/{id}``,
so the module global ``fal_client.client.QUEUE_URL_FORMAT`` is never touched.
``find`` reads fal's request listing at FAL_API_URL.
"""
import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import fal_client
import httpx
from django.conf import settings
from fal_client.client import (
    USER_AGENT,
    AppId,
    Completed,
    FalClientHTTPError,
    InProgress,
    Queued,
)

from factory.providers.base import (
    ConfigurationError,
    MachineSpec,
    OutcomeUnknownError,
    PermanentError,
    ProviderBackend,
    ProviderError,
    RemoteOutput,
    RemoteState,
    RemoteStatus,
    TransientError,
    parse_retry_after,
)

# Failures raised before a byte of the request left this process.
NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout,
              httpx.ProxyError)
CANCELLED_TYPES = {"client_cancelled"}
FIND_CLOCK_SKEW = timedelta(minutes=2)
FIND_PAGE_SIZE = 100
FIND_MAX_PAGES = 20


@lru_cache(maxsize=4)
def _sync_client(key: str) -> fal_client.SyncClient:
    """One fal-client per key for the process, so its connections are reused."""
    return fal_client.SyncClient(key=key)


class FalBackend(ProviderBackend):
    slug = "fal"

    def _key(self) -> str:
        key = getattr(settings, "FAL_KEY", "")
        if not key:
            raise ConfigurationError("FAL_KEY is not set")
        if not (key.isascii() and key.isprintable()):
            raise ConfigurationError("FAL_KEY has characters a header cannot carry")
        return key

    @staticmethod
    def _headers(key: str) -> dict[str, str]:
        return {"Authorization": f"Key {key}", "User-Agent": USER_AGENT}

    # ------------------------------------------------------------ submit
    def submit(
        self, machine: MachineSpec, params: dict[str, Any], *, key: str | None = None
    ) -> str:
        del key  # fal has no idempotency key: one attempt is the only guard
        key, endpoint = self._key(), machine.endpoint_id
        url = settings.FAL_QUEUE_URL.rstrip("/") + "/" + endpoint
        seconds = float(getattr(settings, "FAL_SUBMIT_TIMEOUT", 120))
        timeout = httpx.Timeout(seconds, connect=min(seconds, 30.0))
        try:
            with httpx.Client(timeout=timeout) as client:
                response = client.post(url, json=params, headers=self._headers(key))
        except NEVER_SENT as exc:
            raise TransientError(_transport(
                "submit", endpoint, exc, key, "; the request never reached fal"
            )) from exc
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise ConfigurationError(f"FAL_QUEUE_URL is unusable: {exc}") from None
        except httpx.HTTPError as exc:
            raise OutcomeUnknownError(_transport(
                "submit", endpoint, exc, key, "; the request may have reached fal"
            )) from exc
        return _request_id(response, endpoint, key)

    # ------------------------------------------------------------ reads
    def _handle(
        self, machine: MachineSpec, request_id: str
    ) -> tuple[fal_client.SyncRequestHandle, str]:
        """A fal-client handle whose URLs follow FAL_QUEUE_URL, and the key."""
        key = self._key()
        app = AppId.from_endpoint_id(machine.endpoint_id)
        prefix = f"{app.namespace}/" if app.namespace else ""
        base = (f"{settings.FAL_QUEUE_URL.rstrip('/')}/{prefix}{app.owner}/"
                f"{app.alias}/requests/{quote(request_id, safe='')}")
        handle = _sync_client(key).get_handle(machine.endpoint_id, request_id)
        handle = replace(handle, response_url=base, status_url=base + "/status",
                         cancel_url=base + "/cancel")
        return handle, key

    def status(self, machine: MachineSpec, request_id: str) -> RemoteStatus:
        handle, key = self._handle(machine, request_id)
        with _reading("status", request_id, key):
            answer = handle.status(with_logs=True)
        if isinstance(answer, Queued):
            return RemoteStatus(RemoteState.QUEUED, queue_position=answer.position)
        if isinstance(answer, InProgress):
            return RemoteStatus(RemoteState.RUNNING, logs=_log_lines(answer.logs))
        return _completed_status(answer)

    def result(self, machine: MachineSpec, request_id: str) -> list[RemoteOutput]:
        handle, key = self._handle(machine, request_id)
        with _reading("result", request_id, key):
            answer = handle.status(with_logs=False)
            if not isinstance(answer, Completed):
                raise TransientError(f"fal request {request_id} has not finished")
            finished = _completed_status(answer)
            if finished.state is not RemoteState.COMPLETED:
                raise PermanentError(f"fal request {request_id} ended "
                                     f"{finished.state.value}: {finished.error}")
            data = handle.get()  # polls once more, then reads response_url
        metrics = dict(answer.metrics or {})
        return _outputs(data, machine.output_key, metrics, request_id)

    def cancel(self, machine: MachineSpec, request_id: str) -> None:
        handle, key = self._handle(machine, request_id)
        with _reading("cancel", request_id, key, finished_ok=True):
            handle.cancel()

    # ------------------------------------------------------------ find
    def find(
        self, machine: MachineSpec, submitted_after: datetime, params: dict[str, Any],
        *, key: str | None = None,
    ) -> str | None:
        """The earliest listed request with exactly ``params`` since then.

        fal lists a day of requests; whether it lists ones still queued is
        not documented, so None may only mean "not yet".
        """
        earliest = _aware(submitted_after) - FIND_CLOCK_SKEW
        wanted = json.loads(json.dumps(params))
        matches = sorted(
            (_parse_time(item.get("sent_at")) or earliest, str(item["request_id"]))
            for item in self._listing(machine.endpoint_id, earliest)
            if item.get("json_input") == wanted and item.get("request_id")
        )
        found = [rid for sent, rid in matches if sent >= earliest]
        return found[0] if found else None

    def _listing(self, endpoint: str, start: datetime) -> Iterator[dict[str, Any]]:
        """Every item of fal's request listing for ``endpoint`` since ``start``."""
        key = self._key()
        url = (getattr(settings, "FAL_API_URL", "https://api.fal.ai").rstrip("/")
               + "/v1/models/requests/by-endpoint")
        query = {"endpoint_id": endpoint, "expand": "payloads",
                 "start": start.isoformat(), "limit": FIND_PAGE_SIZE}
        with httpx.Client(timeout=30.0) as client:
            for _ in range(FIND_MAX_PAGES):
                with _reading("listing", endpoint, key):
                    response = client.get(url, params=query, headers=self._headers(key))
                    if not response.is_success:
                        raise _classify(response, "listing", endpoint, key)
                    body = response.json()
                if not isinstance(body, dict):
                    raise TransientError(f"fal listing {endpoint}: not a listing")
                yield from body.get("items") or []
                if not (body.get("has_more") and body.get("next_cursor")):
                    return
                query["cursor"] = body["next_cursor"]


# ---------------------------------------------------------------- answers
def _request_id(response: httpx.Response, endpoint: str, key: str) -> str:
    """The request id of a submit answer, or the error it stands for."""
    if response.is_success:
        try:
            return str(response.json()["request_id"])
        except (ValueError, KeyError, TypeError):
            raise OutcomeUnknownError(
                f"fal submit {endpoint}: HTTP {response.status_code} without a "
                "request id; the request may have been queued"
            ) from None
    if _is_gateway_ambiguity(response):
        raise OutcomeUnknownError(_describe(response, "submit", endpoint, key)
                                  + "; the request may have been queued")
    raise _classify(response, "submit", endpoint, key)


def _log_lines(logs: list[dict[str, Any]] | None) -> list[str]:
    return [str(entry.get("message", entry)) for entry in logs or []]


def _completed_status(answer: Completed) -> RemoteStatus:
    logs = _log_lines(answer.logs)
    if not answer.error:
        return RemoteStatus(RemoteState.COMPLETED, logs=logs)
    if answer.error_type in CANCELLED_TYPES:
        return RemoteStatus(RemoteState.CANCELLED, logs=logs, error=answer.error)
    kind = f" ({answer.error_type})" if answer.error_type else ""
    return RemoteStatus(RemoteState.FAILED, logs=logs, error=f"{answer.error}{kind}")


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _parse_time(stamp: Any) -> datetime | None:
    try:
        return _aware(datetime.fromisoformat(str(stamp).replace("Z", "+00:00")))
    except ValueError:
        return None


def _outputs(
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
def _redact(text: str, key: str) -> str:
    text = " ".join(str(text).split())
    return text.replace(key, "***") if key else text


def _detail(response: httpx.Response) -> tuple[str, str]:
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


def _describe(response: httpx.Response, action: str, subject: str, key: str) -> str:
    detail, kind = _detail(response)
    return _redact(f"fal {action} {subject}: HTTP {response.status_code}"
                   f"{f' [{kind}]' if kind else ''}: {detail}", key)


def _retry_after(headers: httpx.Headers) -> float | None:
    return parse_retry_after(headers.get("retry-after"))


def _classify(
    response: httpx.Response, action: str, subject: str, key: str
) -> ProviderError:
    """The adapter error an HTTP error answer from fal stands for."""
    code, message = response.status_code, _describe(response, action, subject, key)
    if code in (401, 403):
        return ConfigurationError(message + "; check FAL_KEY")
    if 300 <= code < 400:
        return ConfigurationError(message + "; redirected, check the fal URLs")
    if code in (408, 409, 429) or code >= 500:
        return TransientError(message, retry_after=_retry_after(response.headers))
    return PermanentError(message)


def _is_gateway_ambiguity(response: httpx.Response) -> bool:
    """A 502/504 from a gateway in front of fal, which may have passed it on."""
    if response.status_code not in (502, 504) or "x-fal-request-id" in response.headers:
        return False
    try:
        body = response.json()
    except ValueError:
        return True
    return not (isinstance(body, dict) and body.get("error_type"))


def _transport(
    action: str, subject: str, exc: Exception, key: str, note: str = ""
) -> str:
    return _redact(f"fal {action} {subject}: {type(exc).__name__}: {exc}{note}", key)


@contextmanager
def _reading(
    action: str, subject: str, key: str, finished_ok: bool = False
) -> Iterator[None]:
    """Turn fal-client and httpx failures of a read into adapter errors."""
    try:
        yield
    except FalClientHTTPError as exc:
        if finished_ok and "ALREADY_COMPLETED" in exc.response.text:
            return  # cancelling a request that already finished
        raise _classify(exc.response, action, subject, key) from None
    except httpx.HTTPError as exc:
        raise TransientError(_transport(action, subject, exc, key)) from exc
    except json.JSONDecodeError:
        raise TransientError(f"fal {action} {subject}: answer is not JSON") from None
    except (KeyError, ValueError) as exc:
        raise PermanentError(
            _redact(f"fal {action} {subject}: unexpected answer: {exc!r}", key)
        ) from None

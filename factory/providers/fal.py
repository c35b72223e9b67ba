"""fal.ai queue adapter: every call is one plain httpx request.

Submit is one POST to ``{FAL_QUEUE_URL}{endpoint_id}`` with the headers
fal-client sends (``Authorization: Key …``, its User-Agent, a JSON body).
fal-client's own ``submit`` is avoided: it repeats the POST up to ten times
on timeouts, 408/409/429 and gateway 502/504, and fal has no idempotency
key, so each repeat can be a second paid generation. Here a failure raises
``TransientError`` only when the request provably never left (refused
connection, DNS failure, connect timeout) or fal answered and refused it;
anything after the body may have left raises ``OutcomeUnknownError``, to be
reconciled with ``find``. With ``WEBHOOK_BASE_URL`` set, the submit asks
fal to call this server's webhook (``?fal_webhook=``) when it finishes.

Status, result and cancel are single GET/PUT requests to
``{queue}{owner}/{app}/requests/{id}`` bounded by
``PROVIDER_READ_TIMEOUT_SECONDS``. fal-client's handles would wait up to
120 s per attempt and retry ten times, holding a foreman thread for many
minutes on a hung queue; the foreman polls again anyway, so one short
attempt is enough. ``find`` reads fal's request listing at FAL_API_URL.
"""
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import httpx
from django.conf import settings
from fal_client.client import USER_AGENT, AppId

from factory.providers.base import (
    BilledRequest,
    ConfigurationError,
    MachineSpec,
    OutcomeUnknownError,
    PermanentError,
    Price,
    ProviderBackend,
    RemoteOutput,
    RemoteState,
    RemoteStatus,
    TransientError,
    aware,
    parse_time,
    seconds_metric,
)
from factory.providers.fal_answers import (
    classify,
    failure_detail,
    parse_outputs,
    parse_status,
    reading,
    redact,
    submitted_request_id,
    transport_message,
)
from factory.providers.webhooks import webhook_url
from factory.tls import ssl_context

# Failures raised before a byte of the request left this process.
NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout,
              httpx.ProxyError)
FIND_CLOCK_SKEW = timedelta(minutes=2)
FIND_PAGE_SIZE = 100
FIND_MAX_PAGES = 20
BILLING_PAGE_SIZE = 1000
BILLING_MAX_PAGES = 100
NANO_USD = Decimal("1e-9")
UNFINISHED = (RemoteState.QUEUED, RemoteState.RUNNING)


@lru_cache(maxsize=1)
def _read_client() -> httpx.Client:
    """One client for the process's reads, so connections are reused."""
    return httpx.Client(verify=ssl_context())


def read_timeout() -> httpx.Timeout:
    """The bound on each status, result and cancel call."""
    return httpx.Timeout(float(settings.PROVIDER_READ_TIMEOUT_SECONDS))


class FalBackend(ProviderBackend):
    slug = "fal"
    key_setting = "FAL_KEY"

    def compute_seconds(self, outputs: list[RemoteOutput]) -> Decimal | None:
        """Models without a fixed price bill GPU time: the status's
        ``metrics.inference_time``."""
        return seconds_metric(outputs, "inference_time")

    def _key(self) -> str:
        key = settings.FAL_KEY
        if not key:
            raise ConfigurationError("FAL_KEY is not set")
        if not (key.isascii() and key.isprintable()):
            raise ConfigurationError("FAL_KEY has characters a header cannot carry")
        return key

    @staticmethod
    def _headers(key: str) -> dict[str, str]:
        return {"Authorization": f"Key {key}", "User-Agent": USER_AGENT}

    @property
    def sends_webhooks(self) -> bool:
        return bool(webhook_url("fal"))

    # ------------------------------------------------------------ submit
    def submit(
        self, machine: MachineSpec, params: dict[str, Any], *, key: str | None = None
    ) -> str:
        del key  # fal has no idempotency key: one attempt is the only guard
        key, endpoint = self._key(), machine.endpoint_id
        url = settings.FAL_QUEUE_URL.rstrip("/") + "/" + endpoint
        hook = webhook_url("fal")
        seconds = float(settings.FAL_SUBMIT_TIMEOUT)
        timeout = httpx.Timeout(seconds, connect=min(seconds, 30.0))
        try:
            with httpx.Client(timeout=timeout, verify=ssl_context()) as client:
                response = client.post(
                    url, json=params, headers=self._headers(key),
                    params={"fal_webhook": hook} if hook else None,
                )
        except NEVER_SENT as exc:
            raise TransientError(transport_message(
                "submit", endpoint, exc, key, "; the request never reached fal"
            )) from exc
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise ConfigurationError(f"FAL_QUEUE_URL is unusable: {exc}") from None
        except httpx.HTTPError as exc:
            raise OutcomeUnknownError(transport_message(
                "submit", endpoint, exc, key, "; the request may have reached fal"
            )) from exc
        return submitted_request_id(response, endpoint, key)

    # ------------------------------------------------------------ reads
    def _request_url(self, machine: MachineSpec, request_id: str) -> str:
        """The request's queue URL: owner/app only, as fal's answers give it."""
        app = AppId.from_endpoint_id(machine.endpoint_id)
        prefix = f"{app.namespace}/" if app.namespace else ""
        return (f"{settings.FAL_QUEUE_URL.rstrip('/')}/{prefix}{app.owner}/"
                f"{app.alias}/requests/{quote(request_id, safe='')}")

    def _read(
        self, method: str, url: str, action: str, request_id: str,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        """One attempt within the read timeout; a refusal raises its error."""
        key = self._key()
        with reading(action, request_id, key):
            response = _read_client().request(
                method, url, params=params, headers=self._headers(key),
                timeout=read_timeout(),
            )
        if response.is_success or (
            action == "cancel" and "ALREADY_COMPLETED" in response.text
        ):
            return response
        raise classify(response, action, request_id, key)

    def _status_body(self, machine: MachineSpec, request_id: str,
                     logs: bool) -> dict[str, Any]:
        url = self._request_url(machine, request_id) + "/status"
        response = self._read("GET", url, "status", request_id,
                              {"logs": "true" if logs else "false"})
        with reading("status", request_id, self._key()):
            return response.json()

    def status(self, machine: MachineSpec, request_id: str) -> RemoteStatus:
        found = parse_status(self._status_body(machine, request_id, True), request_id)
        if found.state is RemoteState.FAILED:
            return replace(found, error=self._failure(machine, request_id, found.error))
        return found

    def _failure(self, machine: MachineSpec, request_id: str, error: str) -> str:
        """Why a request failed, from its result answer when that says more.

        The status of a refused input carries only "Unprocessable Entity";
        the result request answers 422 naming each field and the reason.
        """
        key = self._key()
        try:
            with reading("result", request_id, key):
                response = _read_client().get(
                    self._request_url(machine, request_id),
                    headers=self._headers(key), timeout=read_timeout(),
                )
        except TransientError:
            return error
        if response.status_code != 422:
            return error
        detail, _ = failure_detail(response)
        return redact(f"fal refused the input (HTTP 422): {detail}", key)

    def result(self, machine: MachineSpec, request_id: str) -> list[RemoteOutput]:
        answer = self._status_body(machine, request_id, False)
        finished = parse_status(answer, request_id)
        if finished.state in UNFINISHED:
            raise TransientError(f"fal request {request_id} has not finished")
        if finished.state is not RemoteState.COMPLETED:
            raise PermanentError(f"fal request {request_id} ended "
                                 f"{finished.state.value}: {finished.error}")
        url = self._request_url(machine, request_id)
        response = self._read("GET", url, "result", request_id)
        with reading("result", request_id, self._key()):
            data = response.json()
        metrics = dict(answer.get("metrics") or {})
        return parse_outputs(data, machine.output_key, metrics, request_id)

    def cancel(self, machine: MachineSpec, request_id: str) -> None:
        """Ask fal to stop; a request that already finished is left alone."""
        url = self._request_url(machine, request_id) + "/cancel"
        self._read("PUT", url, "cancel", request_id)

    # ------------------------------------------------------------ find
    def find(
        self, machine: MachineSpec, submitted_after: datetime, params: dict[str, Any],
        *, key: str | None = None,
    ) -> str | None:
        """The earliest listed request with exactly ``params`` since then.

        fal lists a day of requests; whether it lists ones still queued is
        not documented, so None may only mean "not yet".
        """
        earliest = aware(submitted_after) - FIND_CLOCK_SKEW
        wanted = json.loads(json.dumps(params))
        matches = sorted(
            (parse_time(item.get("sent_at")) or earliest, str(item["request_id"]))
            for item in self._listing(machine.endpoint_id, earliest)
            if item.get("json_input") == wanted and item.get("request_id")
        )
        found = [rid for sent, rid in matches if sent >= earliest]
        return found[0] if found else None

    def _listing(self, endpoint: str, start: datetime) -> Iterator[dict[str, Any]]:
        """fal's request listing for ``endpoint`` since ``start``, newest
        pages first; a search for one request reads at most
        ``FIND_MAX_PAGES`` of them."""
        query = {"endpoint_id": endpoint, "expand": "payloads",
                 "start": start.isoformat(), "limit": FIND_PAGE_SIZE}
        return self._cursor_pages("/v1/models/requests/by-endpoint", query, "items",
                                  "listing", FIND_MAX_PAGES, whole=False)

    def _cursor_pages(
        self, path: str, query: dict[str, Any], field: str, action: str,
        max_pages: int, *, whole: bool,
    ) -> Iterator[dict[str, Any]]:
        """Every record under ``field`` of a cursor-paginated platform listing.

        ``whole`` listings (sums) must be read to the end: more than
        ``max_pages`` pages, or an answer without ``field``, is an error.
        Otherwise the first ``max_pages`` are enough, and a page without
        ``field`` has no records.
        """
        key = self._key()
        url = settings.FAL_API_URL.rstrip("/") + path
        query = dict(query)
        with httpx.Client(timeout=30.0, verify=ssl_context()) as client:
            for _ in range(max_pages):
                with reading(action, path, key):
                    response = client.get(url, params=query, headers=self._headers(key))
                    if not response.is_success:
                        raise classify(response, action, path, key)
                    body = response.json()
                if not isinstance(body, dict):
                    raise TransientError(f"fal {action} {path}: not a listing")
                records = body.get(field)
                if records is None and not whole:
                    records = []
                if not isinstance(records, list):
                    raise TransientError(f"fal {action} {path}: no {field} in the answer")
                yield from records
                if not (body.get("has_more") and body.get("next_cursor")):
                    return
                query["cursor"] = body["next_cursor"]
        if whole:
            raise TransientError(f"fal {action} {path}: more than {max_pages} pages")

    # ------------------------------------------------------------ billing
    def usage(self, since: datetime, prices: dict[str, Price]) -> list[BilledRequest]:
        """fal's billing events since ``since``: one per billed request.

        ``/v1/models/usage`` only sums units per endpoint and time bucket;
        ``/v1/models/billing-events`` names each request, so that is what a
        ledger keyed by request id is compared with. Needs a key with
        billing read scope: an inference-only key is refused (403).
        """
        del prices  # fal states every amount itself
        query = {"start": aware(since).isoformat(), "limit": BILLING_PAGE_SIZE}
        return [_billed(event) for event in self._cursor_pages(
            "/v1/models/billing-events", query, "billing_events", "billing",
            BILLING_MAX_PAGES, whole=True)]


def _billed(event: dict[str, Any]) -> BilledRequest:
    """One billing event: ``cost_estimate_nano_usd`` is the amount after
    any discount, in billionths of a dollar."""
    try:
        amount = Decimal(str(event["cost_estimate_nano_usd"])) * NANO_USD
        return BilledRequest(
            request_id=str(event["request_id"]), amount=amount, currency="USD",
            units=Decimal(str(event.get("output_units") or 0)),
            endpoint=str(event.get("endpoint_id") or ""),
        )
    except (KeyError, ArithmeticError, ValueError) as exc:
        raise TransientError(f"fal billing event unreadable: {event!r:.200}") from exc

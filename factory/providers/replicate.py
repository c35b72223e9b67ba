"""Replicate predictions through the official client (replicate 1.0.7).

The client never retries a POST, so create and cancel go through it as
they are: one paid attempt per submit. The transport mounted under it
changes three things. Create is sent with ``timeout=None`` (no limit at
all) unless ``Prefer: wait`` is used, so requests without limits get the
adapter's. GETs are not retried inside the call, so a 429 or 503 reaches
the caller with its Retry-After instead of holding a worker for up to ten
attempts, and each GET is bounded by ``PROVIDER_READ_TIMEOUT_SECONDS``,
so a hung API holds a foreman thread for one short attempt. The client's
pydantic model rejects the ``aborted`` status (``Cancel-After``): such
replies are read raw and count as cancelled. With ``WEBHOOK_BASE_URL`` and
``REPLICATE_WEBHOOK_SECRET`` set, a prediction asks Replicate to call this
server's webhook once it completes.
"""
import json
import re
import threading
from datetime import datetime
from decimal import Decimal
from typing import Any, Callable, TypeVar

import httpx
import replicate
from django.conf import settings
from replicate.exceptions import ReplicateError

from factory.providers.base import (
    BilledRequest,
    Charge,
    ConfigurationError,
    MachineSpec,
    OutcomeUnknownError,
    PermanentError,
    Price,
    ProviderBackend,
    RemoteOutput,
    RemoteStatus,
    TransientError,
    aware,
    parse_retry_after,
    parse_time,
    seconds_metric,
)
from factory.providers.replicate_answers import (
    canonical,
    classify,
    parse_outputs,
    parse_status,
    same_request,
)
from factory.providers.webhooks import webhook_url
from factory.tls import ssl_context

try:
    from pydantic.v1 import ValidationError as UnreadableReply
except ImportError:  # pydantic 1, as replicate itself falls back
    from pydantic import ValidationError as UnreadableReply

T = TypeVar("T")
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
MODEL_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
FIND_MAX_PAGES = 10
USAGE_MAX_PAGES = 200
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
UNREADABLE = (UnreadableReply, json.JSONDecodeError)


def read_timeout() -> httpx.Timeout:
    """The bound on each GET: status, result, list and version reads."""
    seconds = float(settings.PROVIDER_READ_TIMEOUT_SECONDS)
    return httpx.Timeout(seconds, connect=min(seconds, DEFAULT_TIMEOUT.connect))


class OneAttemptTransport(httpx.HTTPTransport):
    """Sends each request once, within limits, remembering Retry-After."""

    def __init__(self, timeout: httpx.Timeout) -> None:
        super().__init__(verify=ssl_context())
        self.limits = timeout.as_dict()
        self.local = threading.local()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            request.extensions["timeout"] = read_timeout().as_dict()
        elif not any(request.extensions.get("timeout", {}).values()):
            request.extensions["timeout"] = self.limits
        self.local.retry_after = None
        response = super().handle_request(request)
        self.local.retry_after = response.headers.get("retry-after")
        return response

    def retry_after(self) -> float | None:
        """Seconds the last answer on this thread asked to wait, if any."""
        return parse_retry_after(getattr(self.local, "retry_after", None))


_SHARED: dict[tuple, tuple[OneAttemptTransport, replicate.Client]] = {}
_SHARED_LOCK = threading.Lock()
SHARED_CLIENTS = 16


def shared_client(
    token: str, base_url: str, timeout: httpx.Timeout
) -> tuple[OneAttemptTransport, replicate.Client]:
    """The process's client for a token, URL and timeout, and its transport.

    A backend is made per call, so clients are kept here: building one
    builds transports and connection pools, and a status call then reuses
    an open connection. httpx clients are safe to share between threads;
    the transport keeps each thread's Retry-After apart.
    """
    key = (token, base_url, tuple(sorted(timeout.as_dict().items())))
    with _SHARED_LOCK:
        found = _SHARED.get(key)
        if found is None:
            transport = OneAttemptTransport(timeout)
            # ``transport`` also stands in for the client's own default
            # transport, which the catch-all mount leaves unused anyway.
            client = replicate.Client(
                api_token=token, base_url=base_url, timeout=timeout,
                mounts={"all://": transport}, transport=transport,
            )
            while len(_SHARED) >= SHARED_CLIENTS:
                _SHARED.pop(next(iter(_SHARED)))
            found = _SHARED[key] = (transport, client)
        return found


class ReplicateBackend(ProviderBackend):
    slug = "replicate"
    key_setting = "REPLICATE_API_TOKEN"

    def compute_seconds(self, outputs: list[RemoteOutput]) -> Decimal | None:
        """Models billed by hardware time: ``metrics.predict_time``."""
        return seconds_metric(outputs, "predict_time")

    def unfinished_charge(self, price: Price, status: RemoteStatus) -> Charge | None:
        """Hardware time is billed for every second a prediction ran, also
        when it then failed or was cancelled; per-output prices bill none."""
        return _time_charge(price, status.metrics)

    def __init__(self, timeout: httpx.Timeout | float | None = None) -> None:
        limits = timeout if isinstance(timeout, httpx.Timeout) else None
        if limits is None:
            limits = DEFAULT_TIMEOUT if timeout is None else httpx.Timeout(timeout)
        self.timeout = limits
        self._shared: tuple[OneAttemptTransport, replicate.Client] | None = None

    @property
    def client(self) -> replicate.Client:
        """The client, read from the settings at first use."""
        return self._connection()[1]

    @property
    def transport(self) -> OneAttemptTransport:
        return self._connection()[0]

    def _connection(self) -> tuple[OneAttemptTransport, replicate.Client]:
        if self._shared is None:
            token = settings.REPLICATE_API_TOKEN
            if not token:  # the client would fall back to the environment
                raise ConfigurationError("REPLICATE_API_TOKEN is not set")
            self._shared = shared_client(token, settings.REPLICATE_BASE_URL, self.timeout)
        return self._shared

    # ------------------------------------------------------------ calls
    def submit(
        self, machine: MachineSpec, params: dict[str, Any], *, key: str | None = None
    ) -> str:
        """Create one prediction; ``key`` is ignored (Replicate has none)."""
        what = f"submit to {machine.endpoint_id}"
        if not MODEL_ID.match(machine.endpoint_id):
            raise PermanentError(f"replicate {what}: endpoint is not owner/name")
        try:
            prediction = self._create(machine, params)
        except ReplicateError as exc:
            raise classify(exc, what, self.transport.retry_after()) from None
        except NOT_SENT as exc:
            raise TransientError(f"replicate {what}: not sent: {exc}") from None
        except httpx.TransportError as exc:
            raise OutcomeUnknownError(
                f"replicate {what}: no answer after sending ({type(exc).__name__});"
                " reconcile with find, never resend"
            ) from None
        except UNREADABLE:
            raise OutcomeUnknownError(f"replicate {what}: unreadable answer") from None
        return prediction.id

    @property
    def sends_webhooks(self) -> bool:
        return bool(settings.REPLICATE_WEBHOOK_SECRET and webhook_url("replicate"))

    def _create(self, machine: MachineSpec, params: dict[str, Any]) -> Any:
        hook = webhook_url("replicate") if self.sends_webhooks else ""
        extra = {"webhook": hook, "webhook_events_filter": ["completed"]} if hook else {}
        if machine.version:
            return self.client.predictions.create(
                version=machine.version, input=params, **extra
            )
        return self.client.predictions.create(
            model=machine.endpoint_id, input=params, **extra
        )

    def status(self, machine: MachineSpec, request_id: str) -> RemoteStatus:
        return parse_status(self._prediction(request_id), request_id)

    def result(self, machine: MachineSpec, request_id: str) -> list[RemoteOutput]:
        """Output URLs with seed and metrics; data URIs come back as bytes."""
        return parse_outputs(self._prediction(request_id), request_id)

    def cancel(self, machine: MachineSpec, request_id: str) -> None:
        def send() -> None:
            try:
                self.client.predictions.cancel(request_id)
            except UnreadableReply:
                pass  # accepted; only the reply's status is one 1.0.7 rejects

        self._call(send, f"cancel {request_id}")

    def find(
        self,
        machine: MachineSpec,
        submitted_after: datetime,
        params: dict[str, Any],
        *,
        key: str | None = None,
    ) -> str | None:
        """The oldest prediction since ``submitted_after`` of this model and input.

        Pages are read raw: one aborted prediction makes 1.0.7 reject a
        whole page. Replicate drops API inputs after an hour, so only
        submissions from the last hour can be matched.
        """
        after, wanted = aware(submitted_after), canonical(params)
        path: str | None = "/v1/predictions"
        found = None
        for _ in range(FIND_MAX_PAGES):
            page = self._call(self._raw_getter(path), "prediction list")
            for entry in page.get("results", []):
                created = parse_time(entry.get("created_at"))
                if created is not None and created < after:
                    return found  # newest first: the rest is older
                if same_request(machine, entry, wanted):
                    found = entry.get("id")
            path = page.get("next")
            if not path:
                break
        return found

    def usage(self, since: datetime, prices: dict[str, Price]) -> list[BilledRequest]:
        """Predictions since ``since`` that Replicate billed, priced by ``prices``.

        Replicate lists no amounts: each prediction's charge follows from
        its model's price, per output on success or ``metrics.predict_time``
        seconds of hardware whatever the ending. Models missing from
        ``prices`` are left out.
        """
        after, billed = aware(since), []
        path: str | None = "/v1/predictions"
        for _ in range(USAGE_MAX_PAGES):
            page = self._call(self._raw_getter(path), "prediction list")
            for entry in page.get("results", []):
                created = parse_time(entry.get("created_at"))
                if created is not None and created < after:
                    return billed  # newest first: the rest is older
                found = _billed(entry, prices.get(str(entry.get("model") or "")))
                if found is not None:
                    billed.append(found)
            path = page.get("next")
            if not path:
                return billed
        raise TransientError(f"replicate prediction list: over {USAGE_MAX_PAGES} pages")

    # ------------------------------------------------------------ helpers
    def _raw_getter(self, path: str) -> Callable[[], dict[str, Any]]:
        return lambda: self.client._request("GET", path).json()

    def _prediction(self, request_id: str) -> dict[str, Any]:
        def fetch() -> dict[str, Any]:
            try:
                return self.client.predictions.get(request_id).dict()
            except UnreadableReply:  # e.g. "aborted": read the same reply raw
                return self._raw_getter(f"/v1/predictions/{request_id}")()

        return self._call(fetch, f"prediction {request_id}")

    def _call(self, operation: Callable[[], T], what: str) -> T:
        """Run a call that spends nothing, classifying every failure."""
        try:
            return operation()
        except ReplicateError as exc:
            raise classify(exc, what, self.transport.retry_after()) from None
        except httpx.TransportError as exc:
            raise TransientError(f"replicate {what}: {type(exc).__name__}") from None
        except UNREADABLE:
            raise TransientError(f"replicate {what}: unreadable answer") from None


def _time_charge(price: Price, metrics: dict[str, Any]) -> Charge | None:
    if price.unit != "compute_second":
        return None
    seconds = metrics.get("predict_time")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        return None
    return Charge(Decimal(str(seconds)), price.unit, Decimal(price.amount))


def _billed(entry: dict[str, Any], price: Price | None) -> BilledRequest | None:
    """What one listed prediction was billed, by its model's price."""
    if price is None or not entry.get("id"):
        return None
    charge = _time_charge(price, entry.get("metrics") or {})
    if charge is None and price.unit == "output" and entry.get("status") == "succeeded":
        output = entry.get("output")
        count = len(output) if isinstance(output, list) else int(output is not None)
        charge = Charge(Decimal(count), price.unit, Decimal(price.amount))
    if charge is None or not charge.units:
        return None
    return BilledRequest(str(entry["id"]), charge.amount, price.currency,
                         charge.units, charge.unit, str(entry.get("model") or ""))

"""The provider contract every adapter implements.

An adapter speaks one hosted service's wire protocol and nothing else: no
ORM writes, no retries that could spend money twice. Subclasses set
``slug`` and override ``submit``, ``status``, ``result`` and ``cancel``;
``find`` is needed where a submission can end with an unknown outcome.
"""
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import Enum
from typing import Any, Protocol

from artfactory.secrets import mask_secrets


class MachineSpec(Protocol):
    """What an adapter reads of a factory machine."""

    endpoint_id: str
    version: str
    output_key: str


class RemoteState(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class RemoteStatus:
    state: RemoteState
    queue_position: int | None = None
    logs: list[str] = field(default_factory=list)
    error: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def is_final(self) -> bool:
        return self.state in (
            RemoteState.COMPLETED, RemoteState.FAILED, RemoteState.CANCELLED
        )


@dataclass(frozen=True)
class RemoteOutput:
    """One produced file: a URL to download, or inline bytes."""

    url: str = ""
    content: bytes | None = None
    content_type: str = ""
    size: int | None = None
    seed: int | None = None
    nsfw: bool | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


def aware(moment: datetime) -> datetime:
    """Naive datetimes are taken as UTC, as Django stores them."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def parse_time(value: Any) -> datetime | None:
    """A provider's ISO 8601 timestamp (``Z`` or an offset) as an aware
    datetime; None when it is missing or malformed."""
    try:
        return aware(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
    except ValueError:
        return None


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta seconds or an HTTP date."""
    value = (value or "").strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class ProviderError(Exception):
    """Base of every adapter error; messages never contain secrets.

    A provider that echoes the caller's key in its error body would put it
    into last_error, logs and pages: every configured secret is masked here.
    """

    def __init__(self, message: object = "", *args: object) -> None:
        super().__init__(mask_secrets(str(message)), *args)


class TransientError(ProviderError):
    """Try again later: timeouts, 429, 5xx."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(ProviderError):
    """The provider refused this request; retrying the same input won't help."""


class ConfigurationError(ProviderError):
    """Missing or rejected credentials: stop this provider's work."""


class OutcomeUnknownError(ProviderError):
    """The submission may have reached the provider; reconcile, never resend."""


TRANSIENT_STATUSES = frozenset({408, 429})


def classify(
    status: int, message: str, *, key_setting: str,
    retry_after: float | None = None, also_transient: frozenset[int] = frozenset(),
) -> ProviderError:
    """The adapter error an HTTP error answer stands for, for every provider.

    A refused credential stops the provider's work until a person fixes
    the named setting; a redirect means a misconfigured URL; timeouts,
    rate limits and server errors pass; every other refusal is about this
    request and retrying it would not help.
    """
    if status in (401, 403):
        return ConfigurationError(f"{message}; check {key_setting}")
    if 300 <= status < 400:
        return ConfigurationError(f"{message}; redirected, check the provider's URL")
    if status in TRANSIENT_STATUSES or status in also_transient or status >= 500:
        return TransientError(message, retry_after=retry_after)
    return PermanentError(message)


@dataclass(frozen=True)
class Price:
    """A machine's catalog price: ``amount`` per ``unit`` in ``currency``."""

    amount: Decimal
    unit: str
    currency: str = "USD"


@dataclass(frozen=True)
class Charge:
    """What one finished request cost, as far as the provider tells.

    ``reported`` is False when the provider said nothing the charge could
    be read from: the estimate stands until reconciliation says otherwise.
    """

    units: Decimal
    unit: str
    unit_price: Decimal
    reported: bool = True

    @property
    def amount(self) -> Decimal:
        return (self.units * self.unit_price).quantize(Decimal("0.0001"), ROUND_HALF_UP)


@dataclass(frozen=True)
class BilledRequest:
    """One request as the provider's own billing records show it."""

    request_id: str
    amount: Decimal
    currency: str = "USD"
    units: Decimal = Decimal(0)
    unit: str = ""
    endpoint: str = ""


class NoListingError(Exception):
    """The provider offers no billing records to reconcile against."""


@dataclass(frozen=True)
class OutputFacts:
    """What a stored output measured: the basis of per-output billing."""

    width: int | None = None
    height: int | None = None
    duration: float | None = None


def seconds_metric(outputs: list[RemoteOutput], key: str) -> Decimal | None:
    """A non-negative number of seconds from the first output's metrics."""
    value = outputs[0].metrics.get(key) if outputs else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return None
    return Decimal(str(value))


class ProviderBackend:
    """One hosted provider. Subclasses set ``slug`` and override the methods.

    ``key_setting`` names the setting that holds the provider's secret;
    empty for providers that need none.
    """

    slug: str = ""
    key_setting: str = ""

    @property
    def sends_webhooks(self) -> bool:
        """Submissions ask the provider to call back when they end."""
        return False

    def submit(
        self, machine: MachineSpec, params: dict[str, Any], *, key: str | None = None
    ) -> str:
        """Make exactly one paid request and return the provider's request id.

        ``key`` identifies the item; providers with idempotency keys (Civitai's
        ``externalId``) send it so a repeat returns the first request.
        """
        raise NotImplementedError("ProviderBackend.submit")

    def status(self, machine: MachineSpec, request_id: str) -> RemoteStatus:
        raise NotImplementedError("ProviderBackend.status")

    def result(self, machine: MachineSpec, request_id: str) -> list[RemoteOutput]:
        """Output descriptors of a completed request."""
        raise NotImplementedError("ProviderBackend.result")

    def cancel(self, machine: MachineSpec, request_id: str) -> None:
        raise NotImplementedError("ProviderBackend.cancel")

    def find(
        self, machine: MachineSpec, submitted_after: datetime, params: dict[str, Any],
        *, key: str | None = None,
    ) -> str | None:
        """The request id of an earlier submission of ``params``, if any."""
        raise NotImplementedError("ProviderBackend.find")

    def compute_seconds(self, outputs: list[RemoteOutput]) -> Decimal | None:
        """Billed compute time of a request, where the provider reports it."""
        return None

    def unfinished_charge(self, price: Price, status: RemoteStatus) -> Charge | None:
        """What a request that failed or was cancelled was billed, if anything.

        The default: nothing, as providers billing per output do.
        """
        return None

    def usage(
        self, since: datetime, prices: dict[str, Price],
    ) -> list[BilledRequest]:
        """Every request the provider billed since ``since``, by its records.

        ``prices`` maps endpoint ids to catalog prices, for providers whose
        records give run times rather than amounts. Raises NoListingError
        where the provider keeps no such records.
        """
        raise NoListingError(f"{self.slug or 'this provider'} lists no billing records")

    def charge(
        self, price: Price, outputs: list[RemoteOutput], stored: list[OutputFacts],
    ) -> Charge:
        """What a completed request was billed, from what came back.

        The default is the per-output rule most providers follow: the
        catalog unit counted on the outputs actually stored (their number,
        measured megapixels or seconds), or the compute time the provider
        reported. A unit the answer cannot measure is not reported.
        """
        unit, each = price.unit, Decimal(price.amount)
        if unit == "request":
            return Charge(Decimal(1), unit, each)
        if unit == "output":
            return Charge(Decimal(len(stored)), unit, each)
        if unit == "megapixel":
            sizes = [(f.width, f.height) for f in stored]
            if stored and all(w and h for w, h in sizes):
                mp = sum(Decimal(w * h) for w, h in sizes) / Decimal(1_000_000)
                return Charge(mp, unit, each)
        elif unit == "second":
            lengths = [f.duration for f in stored]
            if stored and all(lengths):
                return Charge(sum(Decimal(str(d)) for d in lengths), unit, each)
        elif unit == "compute_second":
            seconds = self.compute_seconds(outputs)
            if seconds is not None:
                return Charge(seconds, unit, each)
        return Charge(Decimal(0), unit, each, reported=False)

"""Download a produced file from a URL a provider returned, with guards.

Every hop (at most ``MAX_REDIRECTS`` redirects, each followed by hand) is
vetted by ``addresses.vet`` before a connection opens: https only, and
every address the host resolves to must be public. The connection then
goes to one of those vetted addresses and nowhere else: httpcore's network
backend is replaced by one pinned to them, so a DNS answer that changes
between check and connect (DNS rebinding) is never used. The Host header
and TLS SNI still carry the URL's host name, so certificates are verified
against the name as usual.

A Content-Length over ``max_bytes`` is refused before the body is read,
and the running count is checked while streaming (after decompression).
``timeout`` caps the whole download, redirects included: every socket
read and write gets only the time left. Environment proxies are ignored,
since a proxy would resolve names itself and bypass the address check.
"""
import base64
import binascii
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import httpcore
import httpx
from django.conf import settings

from factory.media.addresses import DownloadError, RefusedURLError, Target, vet
from factory.media.inspect import STORED_TYPES
from factory.providers.base import parse_retry_after
from factory.tls import ssl_context as verifying_context

MAX_REDIRECTS = 5
HEADERS = {"User-Agent": "ArtFactory-collector/1", "Accept-Encoding": "identity"}


class TooLargeError(DownloadError):
    """The output is larger than the size cap."""


class TooSlowError(DownloadError):
    """The download did not finish within the time cap."""


class UnavailableError(DownloadError):
    """The file host is busy or unreachable for now (429, 5xx, a refused or
    dropped connection): the same URL is worth another try later.
    ``retry_after`` is the host's Retry-After in seconds, when it gave one."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# Answers that say "not now" rather than "never".
BUSY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Limits:
    """What one download may do."""

    max_bytes: int
    timeout: float
    allow_http: bool
    allowed_private: frozenset[str]
    ssl_context: ssl.SSLContext | None = None


def fetch_output(url: str) -> bytes:
    """Download ``url`` under the DOWNLOAD_* settings."""
    return download(
        url,
        max_bytes=int(settings.DOWNLOAD_MAX_BYTES),
        timeout=float(settings.DOWNLOAD_TIMEOUT_SECONDS),
        allow_http=bool(settings.DOWNLOAD_ALLOW_HTTP),
        allowed_private=set(settings.DOWNLOAD_ALLOWED_PRIVATE_HOSTS),
    )


def download(
    url: str, *, max_bytes: int, timeout: float, allow_http: bool,
    allowed_private: Iterable[str], ssl_context: ssl.SSLContext | None = None,
) -> bytes:
    """The bytes at ``url``; a DownloadError names the guard that stopped it.

    ``allowed_private`` lists ``address:port`` pairs (``127.0.0.1:8080``,
    ``[::1]:8080``) exempt from the address check. A base64 ``data:`` URI
    of a media type stored here is decoded, within ``max_bytes``, when it
    is the URL itself.
    """
    if url[:5].lower() == "data:":
        return _decode_data_uri(url, max_bytes)
    limits = Limits(max_bytes, timeout, allow_http, frozenset(allowed_private),
                    ssl_context)
    deadline = time.monotonic() + timeout
    action = "download from"
    for _ in range(MAX_REDIRECTS + 1):
        target = vet(url, action, allow_http=limits.allow_http,
                     allowed_private=limits.allowed_private)
        answer = _get(target, limits, deadline)
        if isinstance(answer, bytes):
            return answer
        url, action = answer, "redirect to"
    raise DownloadError(f"gave up after {MAX_REDIRECTS} redirects")


# ---------------------------------------------------------------- one hop
def _get(target: Target, limits: Limits, deadline: float) -> bytes | str:
    """The body of a 200 answer, or the absolute URL a redirect points to.

    The transport is used without an httpx Client, which would rewrite
    a redirect's Location before it could be vetted.
    """
    request = httpx.Request("GET", target.url, headers=HEADERS)
    try:
        with PinnedTransport(target, deadline, limits.ssl_context) as transport:
            response = transport.handle_request(request)
            try:
                return _answer(response, target, limits, deadline)
            finally:
                response.close()
    except httpx.TimeoutException:
        raise TooSlowError(
            f"download took longer than {limits.timeout:g} s"
        ) from None
    except httpx.TransportError as exc:
        raise UnavailableError(
            f"download from {target.host} failed: {type(exc).__name__}: {exc}"
        ) from None
    except httpx.HTTPError as exc:
        raise DownloadError(
            f"download from {target.host} failed: {type(exc).__name__}: {exc}"
        ) from None


def _answer(
    response: httpx.Response, target: Target, limits: Limits, deadline: float
) -> bytes | str:
    """Read a final answer within the caps, or return a redirect's target."""
    if response.is_redirect:
        try:
            return urljoin(str(target.url), response.headers["location"])
        except ValueError as exc:
            raise RefusedURLError(f"refused a malformed redirect: {exc}") from None
    if response.status_code in BUSY_STATUSES:
        raise UnavailableError(f"HTTP {response.status_code} from {target.host}",
                               _retry_after(response.headers.get("retry-after", "")))
    if response.status_code != 200:
        raise DownloadError(f"HTTP {response.status_code} from {target.host}")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_bytes:
        raise TooLargeError(
            f"output larger than {_size(limits.max_bytes)}: "
            f"{target.host} announced {declared} bytes"
        )
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > limits.max_bytes:
            raise TooLargeError(f"output larger than {_size(limits.max_bytes)}")
        if time.monotonic() > deadline:
            raise TooSlowError(f"download took longer than {limits.timeout:g} s")
    return bytes(body)


def _retry_after(value: str) -> float | None:
    """The host's Retry-After, read as provider answers are; a wait of a day
    or more is no hint (a hostile host must not park an item for good)."""
    seconds = parse_retry_after(value)
    return seconds if seconds is not None and seconds < 86400 else None


def _decode_data_uri(url: str, max_bytes: int) -> bytes:
    """The payload of a base64 ``data:`` URI no larger than ``max_bytes``."""
    header, comma, payload = url.partition(",")
    if not comma or not header.lower().endswith(";base64"):
        raise RefusedURLError("refused a data: URI that is not base64")
    media_type = header[5:].split(";", 1)[0].strip().lower()
    if media_type not in STORED_TYPES:
        raise RefusedURLError(
            f"refused a data: URI of type {media_type[:60] or 'text/plain'!r}: "
            "only the image, video and audio types stored here are decoded")
    if len(payload) * 3 // 4 > max_bytes + 2:
        raise TooLargeError(f"output larger than {_size(max_bytes)}")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DownloadError(f"malformed data: URI: {exc}") from None
    if len(data) > max_bytes:
        raise TooLargeError(f"output larger than {_size(max_bytes)}")
    return data


def _size(count: int) -> str:
    mib = 1024 * 1024
    return f"{count / mib:g} MB" if count >= mib else f"{count} bytes"


# ---------------------------------------------------------------- transport
class PinnedTransport(httpx.HTTPTransport):
    """httpx's transport, connecting only to one target's vetted addresses.

    httpx has no public way to choose httpcore's network backend, so the
    connection pool its parent class would build is built here instead
    (httpx 0.28: the parent keeps it in ``_pool``).
    """

    def __init__(
        self, target: Target, deadline: float, ssl_context: ssl.SSLContext | None
    ) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context or verifying_context(),
            max_connections=1, retries=0,
            network_backend=PinnedBackend(target, deadline),
        )


class PinnedBackend(httpcore.SyncBackend):
    """Open TCP connections to the target's vetted addresses only."""

    def __init__(self, target: Target, deadline: float) -> None:
        self.target, self.deadline = target, deadline

    def connect_tcp(
        self, host: str, port: int, timeout: float | None = None,
        local_address: str | None = None, socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        if (host, port) != (self.target.host, self.target.port):
            raise httpcore.ConnectError(f"{host}:{port} was not vetted")
        error: Exception = httpcore.ConnectError("no vetted address")
        for address in self.target.addresses:
            wait = _time_left(self.deadline, timeout, httpcore.ConnectTimeout)
            try:
                stream = super().connect_tcp(
                    address, port, wait, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                error = exc
            else:
                return DeadlineStream(stream, self.deadline)
        raise error


class DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every operation gets only the time left."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: float) -> None:
        self.stream, self.deadline = stream, deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        wait = _time_left(self.deadline, timeout, httpcore.ReadTimeout)
        return self.stream.read(max_bytes, wait)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        wait = _time_left(self.deadline, timeout, httpcore.WriteTimeout)
        self.stream.write(buffer, wait)

    def close(self) -> None:
        self.stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        wait = _time_left(self.deadline, timeout, httpcore.ConnectTimeout)
        tls = self.stream.start_tls(ssl_context, server_hostname, wait)
        return DeadlineStream(tls, self.deadline)

    def get_extra_info(self, info: str) -> Any:
        return self.stream.get_extra_info(info)


def _time_left(
    deadline: float, timeout: float | None, expired: type[Exception]
) -> float:
    """Seconds until ``deadline`` (capped by ``timeout``); raise if none."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("the time cap was reached")
    return left if timeout is None else min(timeout, left)

"""Where an output may be downloaded from: each hop is vetted before use.

A provider's answer is untrusted input: its file URL, or a redirect from
it, may point at this machine, the local network or a cloud metadata
service. ``vet`` checks one hop before a connection opens:

- the scheme is https (http only where allowed: tests and local fakes);
  file:, ftp:, data: and the rest are refused, and so is a URL carrying
  credentials (``user:pass@``), which are not repeated in the message;
- the host is resolved once and refused if any of its addresses is not
  public (private, loopback, link-local, multicast, reserved, unspecified,
  also when wrapped in IPv6 as IPv4-mapped, 6to4, Teredo or NAT64), unless
  that ``address:port`` is listed in ``allowed_private``.

The vetted addresses travel in the returned ``Target``, and ``download.py``
connects to them and nowhere else: a DNS answer that changes between check
and connect (DNS rebinding) is never used. The download's errors start
here, where the first of them is raised.
"""
import ipaddress
import socket
from collections.abc import Collection
from dataclasses import dataclass

import httpx

from factory.media.inspect import MediaError

DEFAULT_PORTS = {"http": 80, "https": 443}
NAT64 = ipaddress.ip_network("64:ff9b::/96")
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class DownloadError(MediaError):
    """The output could not be downloaded."""


class RefusedURLError(DownloadError):
    """A URL or redirect points somewhere outputs are never fetched from."""


@dataclass(frozen=True)
class Target:
    """A vetted hop: its URL, host, port and the addresses it may use."""

    url: httpx.URL
    host: str
    port: int
    addresses: tuple[str, ...]


def vet(
    url: str, action: str = "download from", *, allow_http: bool,
    allowed_private: Collection[str],
) -> Target:
    """Check the scheme and every resolved address of ``url``."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise RefusedURLError(f"refused {action} {_short(url)}: {exc}") from None
    if parsed.userinfo:  # never repeated in the message: it is a secret
        raise RefusedURLError(
            f"refused {action} {parsed.host or 'a URL'}: URLs carrying a user "
            "name or password (user:pass@) are never fetched")
    schemes = ("https", "http") if allow_http else ("https",)
    if parsed.scheme not in schemes:
        raise RefusedURLError(
            f"refused {action} {_short(url)}: {parsed.scheme or 'scheme-less'} "
            f"URLs are not fetched, only {' and '.join(schemes)}"
        )
    host = parsed.raw_host.decode("ascii")
    if not host:
        raise RefusedURLError(f"refused {action} {_short(url)}: no host")
    port = parsed.port or DEFAULT_PORTS[parsed.scheme]
    addresses = _resolve(host, port, action)
    for address in addresses:
        problem = address_problem(address)
        if problem and _host_port(address, port) not in allowed_private:
            shown = host if host == address else f"{host} ({address})"
            raise RefusedURLError(f"refused {action} {shown}: {problem} address")
    return Target(parsed, host, port, addresses)


def address_problem(address: str) -> str | None:
    """Why ``address`` is not a public unicast address, or None if it is."""
    ip = _unwrap(ipaddress.ip_address(address))
    checks = (
        ("unspecified", ip.is_unspecified), ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local), ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved), ("private", ip.is_private),
        ("non-public", not ip.is_global),
    )
    return next((name for name, failed in checks if failed), None)


def _unwrap(ip: Address) -> Address:
    """The IPv4 address inside an IPv6 one that carries it, else ``ip``."""
    if isinstance(ip, ipaddress.IPv4Address):
        return ip
    teredo_client = ip.teredo[1] if ip.teredo else None
    inner = ip.ipv4_mapped or ip.sixtofour or teredo_client
    if inner is None and ip in NAT64:
        inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return inner or ip


def _resolve(host: str, port: int, action: str) -> tuple[str, ...]:
    """Every address ``host`` resolves to, in resolver order, once each."""
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DownloadError(f"cannot resolve {host} to {action} it: {exc}") from None
    addresses = dict.fromkeys(str(answer[4][0]) for answer in answers)
    if not addresses:
        raise DownloadError(f"cannot resolve {host}: no addresses")
    return tuple(addresses)


def _host_port(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _short(url: str, limit: int = 100) -> str:
    """A URL for a message: no query string, at most ``limit`` characters."""
    bare = url.split("?", 1)[0].split("#", 1)[0]
    return bare if len(bare) <= limit else bare[:limit] + "…"

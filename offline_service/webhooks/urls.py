"""Where a webhook may be sent: checked when an endpoint is registered and again before every
attempt (a name may resolve elsewhere by then). The sender connects to the address checked here,
never to a second resolution of the name, so a name cannot be turned to an internal address
between the check and the connection.

Refused: anything but ``https://`` (plain ``http://`` only to loopback, when allowed); a URL with
credentials; a host that does not resolve; and a host any of whose addresses is loopback, private,
link-local, cloud metadata, unspecified, multicast, reserved or otherwise not global, unless the
settings allow that class (metadata, unspecified, multicast and reserved: never)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from offline_service.errors import Code, OfflineServiceError

__all__ = ["METADATA", "Target", "URLPolicy", "URLRefused", "address_class", "check_url", "parse_url"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# The cloud providers' instance metadata services (AWS, GCP, Azure, ...; AWS's IPv6 one).
METADATA = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})
MAX_URL = 2000
Resolver = Callable[[str, int], Sequence[str]]


class URLRefused(OfflineServiceError):
    """A webhook URL refused; ``reason`` is stable: malformed, scheme, credentials, unresolvable,
    loopback, private, link_local, metadata, unspecified, multicast, reserved."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(Code.WEBHOOK_URL_REFUSED, message)
        self.reason = reason


def _resolve(host: str, port: int) -> Sequence[str]:
    infos: list[Any] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


@dataclass(frozen=True, slots=True)
class URLPolicy:
    """Which address classes the settings allow, and how names are resolved (the system's
    resolver; tests give their own)."""

    allow_private: bool = False  # private, loopback and link-local (never metadata)
    allow_loopback: bool = False  # loopback, and plain http to it
    resolve: Resolver = field(default=_resolve, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL: where to connect (``address``, checked) and what to ask for."""

    scheme: str
    host: str  # as written: the TLS server name and the Host header
    port: int
    path: str  # with the query
    address: str


def address_class(address: Address) -> str:
    """``global`` or the reason an address is refused (the names of ``URLRefused.reason``)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA:
        return "metadata"
    if address.is_unspecified:
        return "unspecified"
    if address.is_multicast:
        return "multicast"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link_local"
    if address.is_reserved:
        return "reserved"
    if address.is_private or not address.is_global:
        # RFC 1918, unique local, shared (100.64/10), documentation, benchmarking, 6to4/Teredo
        # ranges Python counts as not global: none is a vendor's public receiver.
        return "private"
    return "global"


def _allowed(kind: str, policy: URLPolicy) -> bool:
    if kind == "global":
        return True
    if kind == "loopback":
        return policy.allow_loopback or policy.allow_private
    return kind in ("private", "link_local") and policy.allow_private


def parse_url(url: str) -> tuple[str, str, int, str]:
    """scheme, host, port and path of a webhook URL, or ``URLRefused`` (malformed, scheme,
    credentials). Nothing resolved."""
    if not isinstance(url, str):
        raise TypeError("the URL is text")
    if not url or len(url) > MAX_URL or not url.isascii() or any(c.isspace() or ord(c) < 32 for c in url):
        raise URLRefused("malformed", f"a webhook URL is an ASCII URL of at most {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise URLRefused("malformed", "the webhook URL cannot be read") from None
    if parts.scheme not in ("https", "http"):
        raise URLRefused("scheme", "a webhook URL starts with https://")
    if parts.username is not None or parts.password is not None:
        raise URLRefused("credentials", "a webhook URL carries no user name or password")
    if not parts.hostname or parts.fragment:
        raise URLRefused("malformed", "a webhook URL names a host, and has no #fragment")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path


def check_url(url: str, policy: URLPolicy) -> Target:
    """The checked target of ``url`` under ``policy``, or ``URLRefused``. Every address the host
    resolves to must be allowed (a name with one internal address among public ones is refused)."""
    scheme, host, port, path = parse_url(url)
    try:
        literal: Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        found = [str(literal)]
    else:
        try:
            found = list(policy.resolve(host, port))
        except (OSError, UnicodeError):
            found = []
        if not found:
            raise URLRefused("unresolvable", f"the webhook host {host} does not resolve")
    addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in found]
    for address in addresses:
        kind = address_class(address)
        if not _allowed(kind, policy):
            raise URLRefused(
                kind, f"the webhook host {host} resolves to a {kind.replace('_', '-')} address ({address})"
            )
    if scheme == "http" and not (
        policy.allow_loopback and all(address_class(a) == "loopback" for a in addresses)
    ):
        raise URLRefused("scheme", "a webhook URL starts with https:// (http only to loopback, when allowed)")
    return Target(scheme=scheme, host=host, port=port, path=path, address=str(addresses[0]))

"""Webhook addresses a team maintainer may point the portal at: public http(s) hosts only.

A webhook URL is chosen by a team maintainer, and the worker that calls it sits inside the platform network, so
an unchecked URL would let anyone with a team reach internal services (the Argo CD API, cloud metadata, Redis).
The host is resolved and every address it resolves to must be public, on save and again at each delivery (DNS
can change); the connection then goes to the address that was checked, so a second lookup cannot swap it
(DNS rebinding). Redirects are never followed. Hosts in NOTIFY_ALLOWED_HOSTS skip the address check.

Hand-written on the standard library (ipaddress, socket, http.client): the maintained HTTP clients have no
built-in address filter, and the few SSRF-filter add-ons for them are unmaintained.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings


class UnsafeURL(Exception):
    """The URL may not be called: its scheme, or an address its host resolves to."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    address: str  # the checked address the connection goes to


def _why_internal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """The kind of non-public address, or "" for a public one."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    for attribute, kind in (("is_unspecified", "unspecified"), ("is_loopback", "loopback"),
                            ("is_link_local", "link-local"), ("is_multicast", "multicast"),
                            ("is_reserved", "reserved"), ("is_private", "private")):  # fmt: skip
        if getattr(ip, attribute):
            return kind
    return "" if ip.is_global else "non-public"


def allowed(host: str) -> bool:
    return host.lower().rstrip(".") in settings.NOTIFY_ALLOWED_HOSTS


def check(url: str) -> Target:
    """Resolve the URL's host and return where to connect, or raise UnsafeURL with a reason a person can act on."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeURL(f"{url} is not a valid URL.") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL(f"Only http:// and https:// webhooks are allowed, not {parts.scheme or 'no scheme'}://.")
    host = parts.hostname or ""
    if not host:
        raise UnsafeURL(f"{url} names no host.")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeURL(f"The host {host} does not resolve ({exc}); check the URL.") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise UnsafeURL(f"The host {host} does not resolve; check the URL.")
    if not allowed(host):
        for address in addresses:
            kind = _why_internal(ipaddress.ip_address(address.split("%")[0]))
            if kind:
                article = "an" if kind[0] in "aeiou" else "a"
                raise UnsafeURL(
                    f"{host} resolves to {address}, {article} {kind} address: webhooks may only call public addresses. "
                    "A platform admin can allow an internal host with NOTIFY_ALLOWED_HOSTS."
                )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port, path, addresses[0])


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the checked address; the Host header still names the host."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """As _PinnedHTTP, with TLS verified against the host name (SNI and certificate), not the address."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self._address = target.address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, str]:
    """POST once to the checked address; return (status, Location header). Never follows a redirect.

    Raises UnsafeURL before connecting, OSError/http.client.HTTPException on the way.
    """
    target = check(url)
    connection_class = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
    connection = connection_class(target, timeout)
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(65536)
        return response.status, response.getheader("Location", "")
    finally:
        connection.close()

"""The client's address, the same for login throttling and the audit log."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest | None) -> str | None:
    """REMOTE_ADDR, or with PROXY_COUNT trusted proxies in front, the address they saw (X-Forwarded-For)."""
    if request is None:
        return None
    count = settings.PROXY_COUNT
    raw = request.META.get("REMOTE_ADDR") or ""
    if count:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
        if len(hops) >= count:
            raw = hops[-count]
    return _normalised(raw)


def _normalised(raw: str) -> str | None:
    """The address as the database stores it (the audit hash covers it), or None if it is not an address."""
    try:
        return str(ipaddress.ip_address(raw.split("%", 1)[0]))
    except ValueError:
        return None

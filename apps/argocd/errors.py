"""Typed errors raised by the Argo CD client.

Every failure the client reports is an :class:`ArgoCDError` carrying the instance name, HTTP method, URL path
(never the query string: some Argo CD endpoints take credentials as query parameters), the HTTP status, the gRPC
code from the body when there is one, and ``message`` — a sentence fit to show a person, e.g.::

    prod: application 'x' not found (GET /api/v1/applications/x)

``transient`` tells callers whether trying again later may help (server down, overloaded, proxy hiccup).

Argo CD's REST API is grpc-gateway v1.16, so the error body is ``{"error": str, "code": <gRPC code>,
"message": str}`` for unary calls and ``{"error": {"grpc_code", "http_code", "message", "http_status"}}`` for
streams (NOTES §a). The gRPC code decides the class; the HTTP status is the fallback when there is no body.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = [
    "ArgoCDError",
    "NotFound",
    "PermissionDenied",
    "Unauthenticated",
    "InvalidArgument",
    "AlreadyExists",
    "FailedPrecondition",
    "Conflict",
    "Unimplemented",
    "Unavailable",
    "BadResponse",
    "Internal",
    "from_response",
]


class ArgoCDError(Exception):
    """Base class. ``str(err)`` is ``err.message``; ``err.detail`` is the server's own text, unformatted."""

    transient: bool = False

    def __init__(
        self,
        detail: str,
        *,
        instance: str = "",
        method: str = "",
        path: str = "",
        http_status: int | None = None,
        grpc_code: int | None = None,
        transient: bool | None = None,
    ) -> None:
        self.detail = detail
        self.instance = instance
        self.method = method
        self.path = path
        self.http_status = http_status
        self.grpc_code = grpc_code
        if transient is not None:
            self.transient = transient
        super().__init__(self.message)

    @property
    def message(self) -> str:
        where = f" ({self.method} {self.path})" if self.method else ""
        prefix = f"{self.instance}: " if self.instance else ""
        return f"{prefix}{self.detail}{where}"

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, http_status={self.http_status}, grpc_code={self.grpc_code})"


class NotFound(ArgoCDError):
    """gRPC NotFound (404), or a route the server does not have (plain-text 404)."""


class PermissionDenied(ArgoCDError):
    """gRPC PermissionDenied (403). Argo CD also answers this for a *missing* app when no project is given."""


class Unauthenticated(ArgoCDError):
    """gRPC Unauthenticated (401): no token, expired or revoked token, bad login."""


class InvalidArgument(ArgoCDError):
    """gRPC InvalidArgument / OutOfRange (400)."""


class AlreadyExists(ArgoCDError):
    """gRPC AlreadyExists (409)."""


class FailedPrecondition(ArgoCDError):
    """gRPC FailedPrecondition — Argo CD sends it as HTTP **400**, e.g. "another operation is already in progress"."""


class Conflict(ArgoCDError):
    """gRPC Aborted (409): a Kubernetes update conflict."""


class Unimplemented(ArgoCDError):
    """gRPC Unimplemented (501): the server is too old for this endpoint."""


class Unavailable(ArgoCDError):
    """The instance could not be reached or answered: refused, DNS, timeout, 502/503/504, gRPC Unavailable."""

    transient = True


class BadResponse(ArgoCDError):
    """The answer was not Argo CD JSON: an HTML page from a proxy, a truncated or otherwise unparsable body."""


class Internal(ArgoCDError):
    """gRPC Internal / Unknown / DataLoss (500): a server-side failure; the detail is Argo CD's message."""


# gRPC code number -> class (NOTES §a table). DeadlineExceeded and Canceled are "the server did not finish in
# time", which to a portal user is the same as unavailable.
_BY_GRPC_CODE: dict[int, type[ArgoCDError]] = {
    1: Unavailable,  # Canceled
    2: Internal,  # Unknown: any plain Go error
    3: InvalidArgument,
    4: Unavailable,  # DeadlineExceeded
    5: NotFound,
    6: AlreadyExists,
    7: PermissionDenied,
    9: FailedPrecondition,
    10: Conflict,  # Aborted
    11: InvalidArgument,  # OutOfRange
    12: Unimplemented,
    13: Internal,
    14: Unavailable,
    15: Internal,  # DataLoss
    16: Unauthenticated,
}

_BY_HTTP_STATUS: dict[int, type[ArgoCDError]] = {
    400: InvalidArgument,
    401: Unauthenticated,
    403: PermissionDenied,
    404: NotFound,
    408: Unavailable,
    409: Conflict,
    500: Internal,
    501: Unimplemented,
    502: Unavailable,
    503: Unavailable,
    504: Unavailable,
}

# Kubernetes' NotFound text, e.g. `applications.argoproj.io "x" not found`, reads badly in a UI.
_K8S_NOT_FOUND = re.compile(r'^(?P<res>[a-z]+)(?:\.argoproj\.io)? "(?P<name>[^"]+)" not found$')
_SINGULAR = {"applications": "application", "appprojects": "project", "applicationsets": "applicationset"}


def humanize(text: str) -> str:
    """Rewrite the few server messages that are unreadable as-is; anything else passes through unchanged."""
    text = (text or "").strip()
    m = _K8S_NOT_FOUND.match(text)
    if m:
        res = _SINGULAR.get(m["res"], m["res"].rstrip("s"))
        return f"{res} '{m['name']}' not found"
    return text


def _parse_error_body(body: bytes) -> tuple[int | None, str | None]:
    """Return (grpc_code, message) from either Argo CD error shape, or (None, None) if the body is not one."""
    try:
        doc: Any = json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(doc, dict):
        return None, None
    err = doc.get("error")
    if isinstance(err, dict):  # stream shape
        code = err.get("grpc_code")
        return (code if isinstance(code, int) else None), str(err.get("message") or err.get("http_status") or "")
    code = doc.get("code")
    msg = doc.get("message") or err
    if isinstance(code, int) or msg:
        return (code if isinstance(code, int) else None), str(msg or "")
    return None, None


def from_response(status: int, body: bytes, content_type: str, *, instance: str, method: str, path: str) -> ArgoCDError:
    """Build the typed error for a non-2xx answer."""
    grpc_code, text = _parse_error_body(body)
    ctx = {"instance": instance, "method": method, "path": path, "http_status": status}
    if text is not None:
        cls = _BY_GRPC_CODE.get(grpc_code) if grpc_code is not None else None
        cls = cls or _BY_HTTP_STATUS.get(status, ArgoCDError)
        return cls(humanize(text) or f"HTTP {status}", grpc_code=grpc_code, **ctx)
    # Not Argo CD JSON. grpc-gateway itself answers unknown routes / wrong methods / missing Content-Type in
    # text/plain (404/405/415); those are genuine answers. Anything else (typically an HTML 502 page from an
    # ingress or proxy) means something in front of Argo CD is broken.
    snippet = body[:200].decode("utf-8", "replace").strip()
    if "text/plain" in content_type and status in (401, 403, 404, 405, 415, 501):
        cls = _BY_HTTP_STATUS.get(status, InvalidArgument)
        return cls(f"HTTP {status}: {snippet or 'no body'}", **ctx)
    kind = (content_type.split(";")[0].strip() or "no content type") if body else "empty body"
    return BadResponse(
        f"unexpected answer from the server or a proxy in front of it (HTTP {status}, {kind})",
        transient=status in (502, 503, 504),
        **ctx,
    )

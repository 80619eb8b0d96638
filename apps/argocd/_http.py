"""HTTP plumbing for the Argo CD client: auth, timeouts, retries, error mapping and line-delimited streams.

Policy, in one place:

* Every request has a connect and a read timeout. Every request sends ``Content-Type: application/json``
  (Argo CD answers 415 to any non-GET without it, DELETE included).
* GET is retried, with exponential backoff, on connection errors (refused, reset, DNS, connect timeout) and on
  HTTP 502/503/504 — nothing else. A *read* timeout is not retried: the server got the request and is slow;
  repeating it would multiply the wait the user sees.
* POST/PUT/PATCH/DELETE are never re-sent once they may have reached the server. They are retried only when the
  TCP connection could not be opened at all (refused, DNS, connect timeout), where the server provably saw
  nothing.
* With username/password the client logs in lazily via ``POST /api/v1/session``; on a 401 it logs in again once
  and repeats the request once (a 401 means the request was rejected before it did anything).
* The token lives only in ``Transport._token`` and in the ``Authorization`` header of each request (never in the
  session's default headers). Log lines show method and path only — no headers, no query string — and any
  server text that happens to contain the token is scrubbed before it becomes an error message.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import socket
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import requests
import urllib3

from . import _metrics, errors

log = logging.getLogger("apps.argocd")

RETRY_STATUSES = frozenset({502, 503, 504})
SESSION_PATH = "/api/v1/session"

# Query values: None is dropped, bools are Go-style, sequences become repeated keys (?projects=a&projects=b).
Params = Mapping[str, Any] | None


def seg(value: Any) -> str:
    """Percent-encode one path segment completely.

    Repository URLs and cluster servers must travel as ONE segment (`https%3A%2F%2F...`), and Argo CD
    `QueryUnescape`s them, so `+` must be `%2B` (NOTES §h). `quote(safe="")` does both.
    """
    return quote(str(value), safe="")


def encode_params(params: Params) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in (params or {}).items():
        if value is None:
            continue
        values = value if isinstance(value, list | tuple | set | frozenset) else [value]
        for v in values:
            if isinstance(v, bool):
                v = "true" if v else "false"
            out.append((key, str(v)))
    return out


def _ca_verify(verify: bool, ca_bundle: str | None) -> tuple[bool | str, str | None]:
    """Return (requests `verify` value, temp file to delete later).

    `ca_bundle` is either PEM text (it starts with "-----BEGIN") — written to a private 0600 temp file that the
    client deletes on close() — or a path to an existing PEM file, used as-is.
    """
    if not verify:
        return False, None
    if not ca_bundle:
        return True, None
    if ca_bundle.lstrip().startswith("-----BEGIN"):
        fd, path = tempfile.mkstemp(prefix="argocd-ca-", suffix=".pem")
        with os.fdopen(fd, "w") as fh:
            fh.write(ca_bundle)
        return path, path
    if not os.path.isfile(ca_bundle):
        raise ValueError("ca_bundle must be PEM text or the path of an existing PEM file")
    return ca_bundle, None


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


class Transport:
    """One Argo CD instance's connection: a requests.Session plus the policy described in the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None,
        username: str | None,
        password: str | None,
        name: str,
        verify: bool,
        ca_bundle: str | None,
        connect_timeout: float,
        read_timeout: float,
        retries: int,
        backoff: float,
        session: requests.Session | None,
    ) -> None:
        if username and password is None:
            raise ValueError("username given without password")
        self.base_url = url.rstrip("/")
        self.name = name
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        self._token = token
        self._username = username
        self._password = password
        self._login_lock = threading.Lock()
        self._owns_session = session is None
        self.session = session or requests.Session()
        self.verify, tmp = _ca_verify(verify, ca_bundle)
        self._cleanup = weakref.finalize(self, _remove_quietly, tmp) if tmp else None

    # ---- auth -------------------------------------------------------------------------------------------------
    @property
    def auth_kind(self) -> str:
        if self._username:
            return f"login:{self._username}"
        return "token" if self._token else "anonymous"

    def login(self) -> str:
        """Exchange username/password for a session token and keep it."""
        if not self._username:
            raise errors.Unauthenticated(
                "no username/password configured to log in with", instance=self.name, method="POST", path=SESSION_PATH
            )
        doc = self.request(
            "POST", SESSION_PATH, json_body={"username": self._username, "password": self._password}, auth=False
        )
        token = doc.get("token") if isinstance(doc, dict) else None
        if not token:
            raise errors.BadResponse("login answer had no token", instance=self.name, method="POST", path=SESSION_PATH)
        self._token = token
        return token

    def _ensure_token(self) -> None:
        if self._token is None and self._username:
            with self._login_lock:
                if self._token is None:
                    self.login()

    def _relogin(self, stale: str | None) -> None:
        """Log in again, unless another thread already replaced the stale token meanwhile."""
        with self._login_lock:
            if self._token == stale:
                self.login()

    def forget_token(self) -> None:
        self._token = None

    def scrub(self, text: str) -> str:
        secrets = [s for s in (self._token, self._password) if s and len(s) >= 4]
        for s in secrets:
            text = text.replace(s, "***")
        return text

    # ---- requests ---------------------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params = None,
        json_body: Any = None,
        auth: bool = True,
        stream: bool = False,
        read_timeout: float | None = None,
    ) -> Any:
        """Send one logical request (with retries / re-login) and return the decoded JSON, or the open
        `requests.Response` when `stream` is true."""
        if auth:
            self._ensure_token()
        body = None if json_body is None else json.dumps(json_body)
        relogged = False
        while True:
            sent_token = self._token if auth else None
            resp = self._send_with_retries(method, path, params, body, sent_token, stream, read_timeout)
            if resp.status_code == 401 and auth and not relogged and self._username:
                # The session expired or was revoked; a 401 means the request did nothing, so repeat it once.
                resp.close()
                self._relogin(sent_token)
                relogged = True
                log.info("argocd %s: 401 on %s %s, logged in again", self.name, method, path)
                continue
            if 200 <= resp.status_code < 300:
                return resp if stream else self._decode(resp, method, path)
            try:
                raise self._error(resp, method, path)
            finally:
                resp.close()

    def _send_with_retries(
        self,
        method: str,
        path: str,
        params: Params,
        body: str | None,
        token: str | None,
        stream: bool,
        read_timeout: float | None,
    ) -> requests.Response:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        timeout = (self.connect_timeout, self.read_timeout if read_timeout is None else read_timeout)
        idempotent = method == "GET"
        attempt = 0
        while True:
            started = time.monotonic()
            try:
                resp = self.session.request(
                    method,
                    self.base_url + path,
                    params=encode_params(params),
                    data=body,
                    headers=headers,
                    timeout=timeout,
                    verify=self.verify,
                    stream=stream,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                err = self._transport_error(exc, method, path, timeout)
                failure = "timeout" if isinstance(exc, requests.Timeout) else "connection"
                _metrics.observe(self.name, method, path, time.monotonic() - started, failure)
                never_sent = isinstance(exc, requests.ConnectTimeout) or _connect_refused(exc)
                may_retry = isinstance(err, errors.Unavailable) and (never_sent or (idempotent and _conn_error(exc)))
                if may_retry and attempt < self.retries:
                    attempt += 1
                    self._sleep(attempt, method, path, err.detail)
                    continue
                # `from None`: requests' exception text carries the full URL, query string included, and
                # validate_repository sends credentials there.
                raise err from None
            status = resp.status_code
            _metrics.observe(
                self.name, method, path, time.monotonic() - started, str(status) if status >= 400 else None
            )
            log.debug(
                "argocd %s: %s %s -> %s in %.0f ms (attempt %d)",
                self.name, method, path, resp.status_code, (time.monotonic() - started) * 1000, attempt + 1,
            )  # fmt: skip
            if idempotent and resp.status_code in RETRY_STATUSES and attempt < self.retries:
                resp.close()
                attempt += 1
                self._sleep(attempt, method, path, f"HTTP {resp.status_code}")
                continue
            return resp

    def _sleep(self, attempt: int, method: str, path: str, why: str) -> None:
        # Full jitter keeps many portal workers from hammering a recovering instance in lock-step.
        delay = self.backoff * (2 ** (attempt - 1)) * (0.5 + random.random() / 2)
        log.warning("argocd %s: %s %s failed (%s), retry %d in %.2fs", self.name, method, path, why, attempt, delay)
        time.sleep(delay)

    def _transport_error(
        self, exc: requests.RequestException, method: str, path: str, timeout: tuple[float, float]
    ) -> errors.ArgoCDError:
        ctx = {"instance": self.name, "method": method, "path": path}
        if isinstance(exc, requests.ConnectTimeout):
            return errors.Unavailable(f"could not connect within {timeout[0]:g}s", **ctx)
        if isinstance(exc, requests.ReadTimeout):
            return errors.Unavailable(f"no answer within {timeout[1]:g}s", **ctx)
        if isinstance(exc, requests.exceptions.SSLError):
            return errors.Unavailable("TLS verification failed (check the CA bundle)", transient=False, **ctx)
        if isinstance(exc, requests.exceptions.ChunkedEncodingError):
            return errors.BadResponse("the answer was cut off (truncated response)", **ctx)
        if isinstance(exc, requests.ConnectionError):
            text = str(exc)
            if "Name or service not known" in text or "NameResolutionError" in text or "getaddrinfo" in text:
                return errors.Unavailable("host name could not be resolved", **ctx)
            if _connect_refused(exc):
                return errors.Unavailable("connection refused", **ctx)
            return errors.Unavailable("connection failed", **ctx)
        return errors.Unavailable(f"request failed: {type(exc).__name__}", **ctx)

    def _error(self, resp: requests.Response, method: str, path: str) -> errors.ArgoCDError:
        try:
            body = resp.content
        except requests.RequestException:
            body = b""
        err = errors.from_response(
            resp.status_code,
            body,
            resp.headers.get("Content-Type", ""),
            instance=self.name,
            method=method,
            path=path,
        )
        err.detail = self.scrub(err.detail)
        return err

    def _decode(self, resp: requests.Response, method: str, path: str) -> Any:
        try:
            body = resp.content
        except requests.RequestException:
            raise errors.BadResponse(
                "the answer was cut off (truncated response)",
                instance=self.name, method=method, path=path, http_status=resp.status_code,
            ) from None  # fmt: skip
        finally:
            resp.close()
        if not body.strip():
            return {}
        try:
            return json.loads(body)
        except ValueError:
            ctype = resp.headers.get("Content-Type", "").split(";")[0] or "no content type"
            raise errors.BadResponse(
                f"answer is not valid JSON ({ctype}, {len(body)} bytes; truncated or from a proxy)",
                instance=self.name, method=method, path=path, http_status=resp.status_code,
            ) from None  # fmt: skip

    def close(self) -> None:
        if self._owns_session:
            self.session.close()
        if self._cleanup:
            self._cleanup()


def _connect_refused(exc: BaseException) -> bool:
    """True when the TCP connection was never established (refused / DNS): the server saw nothing."""
    text = repr(exc)
    return isinstance(exc, requests.ConnectionError) and (
        "NewConnectionError" in text or "NameResolutionError" in text or "Connection refused" in text
    )


def _conn_error(exc: BaseException) -> bool:
    return isinstance(exc, requests.ConnectionError) and not isinstance(
        exc, requests.ReadTimeout | requests.exceptions.SSLError | requests.exceptions.ChunkedEncodingError
    )


class Stream:
    """Iterator over one NDJSON stream (`{"result": …}` per line) that owns its HTTP connection.

    Yields each ``result`` object. Stops at the end of the body or, with ``stop_on_last``, at an entry with
    ``"last": true``; an ``{"error": …}`` line raises the typed error. The connection is closed when iteration
    ends, on ``close()`` (from any thread), on leaving a ``with`` block, or as soon as the object is dropped —
    so ``for e in client.watch_applications(): break`` frees it too.
    """

    def __init__(
        self,
        transport: Transport,
        method: str,
        path: str,
        params: Params,
        *,
        read_timeout: float | None = None,
        stop_on_last: bool = False,
    ) -> None:
        self._resp: requests.Response = transport.request(
            method, path, params=params, stream=True, read_timeout=read_timeout
        )
        # Kept now: once http.client has handed the connection to the response, only the reader holds it.
        self._sock = _socket_of(self._resp)
        self._closed = threading.Event()
        ctx = {"instance": transport.name, "method": method, "path": path}
        # The generator must not reference `self`: a cycle would keep the connection open until the cyclic GC
        # runs instead of the moment the caller drops the stream.
        self._gen = _frames(self._resp, ctx, transport.scrub, stop_on_last, self._closed)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        return next(self._gen)

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if hasattr(self, "_gen"):
            self.close()

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        # A reader blocked in another thread (an idle watch) holds the BufferedReader's lock, so closing the
        # response alone would wait for it forever. Shutting the socket down first makes its recv return at once
        # (EOF); then the response can be closed. socket.socket.shutdown, not SSLSocket's: that one drops the TLS
        # object under the reader's feet.
        if self._sock is not None:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(self._sock, socket.SHUT_RDWR)
        self._resp.close()
        with contextlib.suppress(ValueError):  # "generator already executing" when closed from another thread
            self._gen.close()


def _socket_of(resp: requests.Response) -> socket.socket | None:
    """The socket under a streamed response (urllib3 2: the connection's, else http.client's file's)."""
    raw = resp.raw
    sock = getattr(getattr(raw, "_connection", None), "sock", None)
    if sock is None:
        fp = getattr(getattr(raw, "_fp", None), "fp", None)
        sock = getattr(getattr(fp, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def decode_frame(line: bytes, ctx: dict[str, Any], scrub: Callable[[str], str]) -> dict | None:
    """The ``result`` object of one stream line; None for a blank or comment line. An error line raises."""
    if line.startswith(b"data:"):  # SSE framing, should a proxy force it
        line = line[5:]
    if not line.strip() or line.startswith(b":"):
        return None
    try:
        doc = json.loads(line)
    except ValueError:
        raise errors.BadResponse("stream line is not valid JSON (truncated or from a proxy)", **ctx) from None
    if isinstance(doc, dict) and "error" in doc and "result" not in doc:
        err = errors.from_response(200, line, "application/json", **ctx)
        err.detail = scrub(err.detail)
        raise err
    result = doc.get("result") if isinstance(doc, dict) else None
    if not isinstance(result, dict):
        raise errors.BadResponse("stream line has no result object", **ctx)
    return result


def _frames(
    resp: requests.Response,
    ctx: dict[str, Any],
    scrub: Callable[[str], str],
    stop_on_last: bool,
    closed: threading.Event,
) -> Iterator[dict]:
    try:
        for line in _lines(resp, ctx, closed):
            result = decode_frame(line, ctx, scrub)
            if result is None:
                continue
            if stop_on_last and result.get("last"):
                # Argo CD's final entry is a sentinel with empty content; callers want real lines only.
                if result.get("content"):
                    yield result
                return
            yield result
    finally:
        closed.set()
        resp.close()


def _lines(resp: requests.Response, ctx: dict[str, Any], closed: threading.Event) -> Iterator[bytes]:
    """`resp.iter_lines()` with connection failures mapped to typed errors."""
    try:
        # iter_lines hands out each line as soon as its chunk arrives; the chunk size only bounds one read.
        yield from resp.iter_lines(chunk_size=8192)
    except Exception as exc:
        if closed.is_set():
            return  # we closed the socket under a blocked read (close() from another thread): a clean end
        # requests re-raises urllib3's ReadTimeoutError from a body read as a plain ConnectionError.
        if isinstance(exc, requests.ReadTimeout) or isinstance(exc.__context__, urllib3.exceptions.ReadTimeoutError):
            raise errors.Unavailable("stream idle longer than the read timeout", **ctx) from None
        if isinstance(exc, requests.ConnectionError | requests.exceptions.ChunkedEncodingError):
            raise errors.Unavailable("stream interrupted (connection lost)", **ctx) from None
        raise


def items(doc: Any) -> list[dict]:
    """Go encodes an empty slice as null or omits it; callers always get a list of objects.

    Anything else in `items` is not an Argo CD object and is dropped, so one odd answer cannot break a page.
    """
    found = doc.get("items") if isinstance(doc, dict) else None
    return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []


class ItemList(list):
    """A list of items that also keeps the list's `metadata` (e.g. `resourceVersion` to resume a watch from)."""

    def __init__(self, doc: Any) -> None:
        super().__init__(items(doc))
        self.metadata: dict = (doc.get("metadata") or {}) if isinstance(doc, dict) else {}

    @property
    def resource_version(self) -> str | None:
        return self.metadata.get("resourceVersion")


def as_list(value: str | Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)

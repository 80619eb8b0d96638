"""Async reading of Argo CD's line-delimited streams, for views served over ASGI.

A followed log stream stays open for minutes while it waits for lines. Read by the blocking ``Stream`` it would
hold a thread the whole time (one per open stream, whatever pool it came from); read here with httpx on the
event loop it holds a socket and a few kilobytes, so one web process can follow hundreds at once.

Same policy as ``_http.py``: the transport's token and TLS settings, a connect and a read timeout, typed errors
with the token scrubbed. A stream is one GET, not retried: when it breaks, the caller says so and the person
(or their browser) asks again.

Create an ``AsyncStream`` from sync code — it may log in first, and it builds its TLS context while the
client's temporary CA file still exists — then ``async with`` it and iterate on the event loop.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator
from typing import Any

import certifi
import httpx

from . import errors
from ._http import Params, Transport, decode_frame, encode_params


@functools.cache
def _default_tls() -> ssl.SSLContext:
    # Loading the CA store costs milliseconds of CPU; one context serves every stream of the process.
    return ssl.create_default_context(cafile=certifi.where())


def _tls(verify: bool | str) -> ssl.SSLContext | bool:
    if verify is False:
        return False
    if verify is True:
        return _default_tls()
    return ssl.create_default_context(cafile=verify)


class AsyncStream:
    """Async iterator over one NDJSON stream (``{"result": …}`` per line) that owns its HTTP connection.

    ``async with stream:`` opens it (raising the typed error for a refused request) and closes it on the way
    out, including when the task reading it is cancelled. Iteration yields each ``result`` and ends at the end
    of the body or, with ``stop_on_last``, at Argo CD's ``last: true`` sentinel.
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
        transport._ensure_token()
        self._method = method
        self._url = transport.base_url + path
        self._params = encode_params(params)
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if transport._token:
            self._headers["Authorization"] = f"Bearer {transport._token}"
        self._verify = _tls(transport.verify)
        read = transport.read_timeout if read_timeout is None else read_timeout
        self._timeout = httpx.Timeout(read, connect=transport.connect_timeout)
        self._ctx: dict[str, Any] = {"instance": transport.name, "method": method, "path": path}
        self._scrub = transport.scrub
        self._stop_on_last = stop_on_last
        self._client: httpx.AsyncClient | None = None
        self._resp: httpx.Response | None = None

    async def __aenter__(self) -> AsyncStream:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def open(self) -> None:
        self._client = httpx.AsyncClient(verify=self._verify, timeout=self._timeout, follow_redirects=False)
        request = self._client.build_request(self._method, self._url, params=self._params, headers=self._headers)
        try:
            self._resp = await self._client.send(request, stream=True)
            if not 200 <= self._resp.status_code < 300:
                body = await self._resp.aread()
                ctype = self._resp.headers.get("Content-Type", "")
                err = errors.from_response(self._resp.status_code, body, ctype, **self._ctx)
                err.detail = self._scrub(err.detail)
                raise err
        except httpx.HTTPError as exc:
            await self.aclose()
            raise self._transport_error(exc) from None
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        if self._resp is not None:
            await self._resp.aclose()
        if self._client is not None:
            await self._client.aclose()

    def __aiter__(self) -> AsyncIterator[dict]:
        return self._entries()

    async def _entries(self) -> AsyncIterator[dict]:
        if self._resp is None:
            raise RuntimeError("open the stream first (async with stream: …)")
        try:
            async for line in self._resp.aiter_lines():
                result = decode_frame(line.encode(), self._ctx, self._scrub)
                if result is None:
                    continue
                if self._stop_on_last and result.get("last"):
                    # Argo CD's final entry is a sentinel with empty content; callers want real lines only.
                    if result.get("content"):
                        yield result
                    return
                yield result
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None

    def _transport_error(self, exc: httpx.HTTPError) -> errors.ArgoCDError:
        # No `str(exc)`: httpx's text can carry the full URL and its query string.
        ctx = self._ctx
        if isinstance(exc, httpx.ConnectTimeout):
            return errors.Unavailable(f"could not connect within {self._timeout.connect:g}s", **ctx)
        if isinstance(exc, httpx.ReadTimeout):
            return errors.Unavailable("stream idle longer than the read timeout", **ctx)
        if isinstance(exc, httpx.ConnectError):
            text = repr(exc)
            if "SSL" in text or "CERTIFICATE" in text:
                return errors.Unavailable("TLS verification failed (check the CA bundle)", transient=False, **ctx)
            if "Name or service not known" in text or "getaddrinfo" in text or "nodename" in text:
                return errors.Unavailable("host name could not be resolved", **ctx)
            return errors.Unavailable("connection refused", **ctx)
        if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
            return errors.Unavailable("stream interrupted (connection lost)", **ctx)
        return errors.Unavailable(f"request failed: {type(exc).__name__}", **ctx)

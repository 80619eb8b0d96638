"""HTTP layer: a small router on ThreadingHTTPServer that behaves like Argo CD's grpc-gateway front.

Handlers get a `Request` and return a dict/list (JSON 200), `Raw` (pre-serialised JSON), `Response`, or
`Stream` (NDJSON chunked). They raise `ApiError` for gRPC-style errors.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, unquote_plus, urlsplit

from .errors import ApiError

GARBAGE_HTML = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


@dataclass
class Faults:
    """Runtime-mutable fault knobs (sim.faults)."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    fail_rate: float = 0.0
    garbage: bool = False
    sync_seconds: float = 1.0
    # An ingress losing answers: the next `bad_gateway_times` POSTs whose path ends with `bad_gateway_path` get
    # nginx's 502 page, either instead of being handled or after it (the change is made, only the answer is lost).
    bad_gateway_path: str = ""
    bad_gateway_times: int = 0
    bad_gateway_after: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def lose_answers(self, path_suffix: str, times: int = 1, *, after: bool = False) -> None:
        with self._lock:
            self.bad_gateway_path, self.bad_gateway_times, self.bad_gateway_after = path_suffix, times, after

    def take_bad_gateway(self, method: str, path: str) -> str:
        """ "before" or "after" when this request's answer is to be a 502, else ""."""
        with self._lock:
            if method != "POST" or self.bad_gateway_times <= 0 or not self.bad_gateway_path:
                return ""
            if not path.endswith(self.bad_gateway_path):
                return ""
            self.bad_gateway_times -= 1
            return "after" if self.bad_gateway_after else "before"


@dataclass
class Raw:
    """A body that is already JSON text (cached app serialisations)."""

    text: str


@dataclass
class Response:
    body: Any
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json"  # used as-is when body is bytes


@dataclass
class Stream:
    """A chunked NDJSON stream; `frames` yields dicts (wrapped already) or raises ApiError before the first."""

    frames: Iterator[dict | bytes]
    on_close: Callable[[], None] | None = None


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Any
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    ctx: Any = None
    server: Any = None
    client_gone: Callable[[], bool] = lambda: False

    def q(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[0] if values else default

    def qs(self, name: str) -> list[str]:
        return [v for v in self.query.get(name, []) if v != ""]

    def qbool(self, name: str) -> bool:
        return self.q(name).lower() in ("true", "1", "t")

    def has(self, name: str) -> bool:
        return name in self.query

    def json(self) -> Any:
        if not self.body.strip():
            return {}
        try:
            return json.loads(self.body)
        except ValueError as exc:
            # The gateway's JSON decoding failure is InvalidArgument.
            raise ApiError(3, f"invalid character in request body: {exc.msg}") from exc

    def obj(self) -> dict:
        body = self.json()
        if not isinstance(body, dict):
            raise ApiError(3, "json: cannot unmarshal non-object into Go value of type map[string]json.RawMessage")
        return body


Handler = Callable[[Request], Any]


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    auth: bool
    plus_decode: bool


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, template: str, handler: Handler, auth: bool = True, plus_decode: bool = False) -> None:
        # `{x}` is one path segment; `{x=**}` (grpc-gateway wildcard) takes the rest of the path.
        regex = re.sub(r"\{([a-zA-Z_.]+)=\*\*\}", lambda m: f"(?P<{m.group(1).replace('.', '__')}>.+)", template)
        regex = re.sub(r"\{([a-zA-Z_.]+)\}", lambda m: f"(?P<{m.group(1).replace('.', '__')}>[^/]+)", regex)
        self.routes.append(Route(method, re.compile(f"^{regex}/?$"), handler, auth, plus_decode))

    def match(self, method: str, raw_path: str) -> tuple[Route | None, dict[str, str], bool]:
        """Returns (route, params, path_known). path_known without route means 405."""
        known = False
        # grpc-gateway v1 matches the decoded path (so %2F splits segments); Argo CD's bug21955 workaround keeps
        # the raw path only for clusters/repositories/repocreds, the routes registered with plus_decode.
        decoded_path = unquote(raw_path)
        for route in self.routes:
            m = route.pattern.match(raw_path if route.plus_decode else decoded_path)
            if not m:
                continue
            known = True
            if route.method != method:
                continue
            decode = unquote_plus if route.plus_decode else (lambda v: v)
            params = {k.replace("__", "."): decode(v) for k, v in m.groupdict().items()}
            return route, params, True
        return None, {}, known


class SimHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], app: Any) -> None:
        self.app = app
        self.stopping = threading.Event()
        self.conn_lock = threading.Lock()
        self.connections: set[socket.socket] = set()
        self.threads: set[threading.Thread] = set()
        super().__init__(addr, SimHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(target=self._serve_one, args=(request, client_address), daemon=True)
        with self.conn_lock:
            self.connections.add(request)
            self.threads.add(thread)
        thread.start()

    def _serve_one(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self.conn_lock:
                self.connections.discard(request)
                self.threads.discard(threading.current_thread())

    def close_all(self, timeout: float = 3.0) -> None:
        """Cut every open connection (idle keep-alives and streams) and wait for handler threads."""
        with self.conn_lock:
            conns = list(self.connections)
            threads = list(self.threads)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Client disconnects are normal for a simulator; keep test output clean.
        pass


class SimHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle + delayed ACK adds ~40 ms each.
    disable_nagle_algorithm = True
    server_version = "argocd-sim"
    sys_version = ""
    server: SimHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    # --------------------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length:
            return self.rfile.read(int(length))
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0] or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return b""

    def _send(self, status: int, body: bytes, ctype: str, headers: list[tuple[str, str]] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers or []:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _client_gone(self) -> bool:
        """True once the peer closed its side (readable socket with EOF) or the server is stopping."""
        if self.server.stopping.is_set():
            return True
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _text(self, status: int, text: str) -> None:
        # Go's http.Error: text/plain with a trailing newline and nosniff.
        self._send(status, (text + "\n").encode(), "text/plain; charset=utf-8", [("X-Content-Type-Options", "nosniff")])

    def _dispatch(self, method: str) -> None:
        app = self.server.app
        try:
            body = self._read_body()
        except (OSError, ValueError):
            self.close_connection = True
            return
        faults: Faults = app.faults
        if faults.garbage:
            self._send(502, GARBAGE_HTML, "text/html")
            return
        delay = faults.latency_ms + (random.uniform(0, faults.jitter_ms) if faults.jitter_ms else 0.0)
        if delay > 0:
            time.sleep(delay / 1000.0)
        if faults.fail_rate and random.random() < faults.fail_rate:
            err = ApiError(
                14,
                'connection error: desc = "transport: Error while dialing: '
                'dial tcp 127.0.0.1:8083: connect: connection refused"',
            )
            self._send(503, err.body(), "application/json")
            return
        if method != "GET" and (self.headers.get("Content-Type") or "").lower() not in app.content_types:
            self._text(415, "Invalid content type")
            return
        parts = urlsplit(self.path)
        lose = faults.take_bad_gateway(method, parts.path)
        if lose == "before":
            self._send(502, GARBAGE_HTML, "text/html")
            return
        route, params, known = app.router.match(method if method != "HEAD" else "GET", parts.path)
        if route is None:
            if known:
                self._text(405, "Method Not Allowed")
            else:
                self._text(404, "Not Found")
            return
        req = Request(
            method=method,
            path=unquote(parts.path),
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=self.headers,
            body=body,
            params=params,
            server=app,
            client_gone=self._client_gone,
        )
        is_stream_route = "/stream/" in parts.path or parts.path.endswith("/logs")
        try:
            req.ctx = app.authenticate(req, required=route.auth)
            result = route.handler(req)
        except ApiError as err:
            if is_stream_route:
                self._send(err.http_status, err.stream_body(), "application/json")
            else:
                self._send(err.http_status, err.body(), "application/json")
            return
        except Exception as exc:  # noqa: BLE001 - a handler bug must still answer like the gateway would
            err = ApiError(2, f"simulator internal error: {exc!r}")
            self._send(500, err.body(), "application/json")
            raise
        if lose == "after":
            self._send(502, GARBAGE_HTML, "text/html")
            return
        self._write_result(req, result)

    def _write_result(self, req: Request, result: Any) -> None:
        headers: list[tuple[str, str]] = []
        status = 200
        if isinstance(result, Response):
            headers = list(result.headers)
            status = result.status
            if isinstance(result.body, bytes):
                self._send(status, result.body, result.content_type, headers)
                return
            result = result.body
        renewed = getattr(req.ctx, "renewed_token", "")
        if renewed and not any(k == "Set-Cookie" for k, _ in headers):
            from .auth import set_cookie_headers

            headers += set_cookie_headers(renewed)
        if isinstance(result, Stream):
            self._stream(req, result)
            return
        if isinstance(result, Raw):
            data = result.text.encode()
        else:
            data = json.dumps(result, separators=(",", ":"), ensure_ascii=False).encode()
        self._send(status, data, "application/json", headers)

    def _stream(self, req: Request, stream: Stream) -> None:
        sse = "text/event-stream" in (req.headers.get("Accept") or "")
        started = False
        state = self.server.app.state
        state.stream_opened()
        try:
            for frame in stream.frames:
                data = frame if isinstance(frame, bytes) else json.dumps(frame, separators=(",", ":")).encode()
                if not started:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream" if sse else "application/json")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.send_header("Cache-Control", "no-cache")
                    self.end_headers()
                    started = True
                if data == b"":
                    # An empty frame only makes sure the headers are out (stream opened); nothing is written.
                    continue
                payload = b"data: " + data + b"\n\n" if sse else data + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
                self.wfile.flush()
            if not started:
                # Nothing to stream (e.g. no pods matched): 200 with an empty chunked body.
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except ApiError as err:
            if not started:
                self._send(err.http_status, err.stream_body(), "application/json")
            else:
                try:
                    chunk = err.stream_body()
                    self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunk), chunk))
                except OSError:
                    pass
                self.close_connection = True
        except (OSError, ValueError):
            # Client went away (broken pipe / reset) or the server is stopping.
            self.close_connection = True
        finally:
            close = getattr(stream.frames, "close", None)
            if close:
                close()
            if stream.on_close:
                stream.on_close()
            state.stream_closed()

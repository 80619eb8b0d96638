"""Wire shapes the simulator cannot produce on demand: an error frame inside a 200 stream, a body cut short,
a non-JSON stream line. A few lines of raw HTTP on a local socket stand in for a misbehaving server or proxy."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest

from apps.argocd import ArgoCDClient, errors


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def frame(obj: dict) -> bytes:
    return chunk(json.dumps(obj).encode() + b"\n")


CHUNKED_200 = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"

RESPONSES = {
    "/stream-error": CHUNKED_200
    + frame({"result": {"content": "one", "last": False}})
    + frame({"error": {"grpc_code": 7, "http_code": 403, "message": "permission denied", "http_status": "Forbidden"}})
    + b"0\r\n\r\n",
    "/stream-garbage": CHUNKED_200 + frame({"result": {"content": "one"}}) + chunk(b"<html>oops\n") + b"0\r\n\r\n",
    "/stream-cut": CHUNKED_200 + frame({"result": {"content": "one"}}) + b'ff\r\n{"result":',
    "/truncated": b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"items":[',
    "/not-json": b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 13\r\n\r\n<html></html>",
}


@pytest.fixture
def raw_server() -> Iterator[str]:
    srv = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            with conn:
                request = conn.recv(65536).decode("latin-1")
                path = request.split(" ", 2)[1].split("?")[0]
                conn.sendall(RESPONSES.get(path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    t.join(2)
    srv.close()


def stream(client: ArgoCDClient, path: str):
    from apps.argocd import Stream

    return Stream(client._t, "GET", path, None)


def test_error_frame_inside_a_200_stream_raises_typed_error(raw_server):
    with ArgoCDClient(raw_server, token="a.b.c", name="raw", retries=0) as c:
        s = stream(c, "/stream-error")
        assert next(s)["content"] == "one"
        with pytest.raises(errors.PermissionDenied) as ei:
            next(s)
        assert ei.value.grpc_code == 7 and ei.value.instance == "raw"
        assert s.closed


def test_non_json_stream_line_is_bad_response(raw_server):
    with ArgoCDClient(raw_server, token="a.b.c", name="raw", retries=0) as c, pytest.raises(errors.BadResponse):
        list(stream(c, "/stream-garbage"))


def test_stream_cut_mid_frame_is_unavailable(raw_server):
    with ArgoCDClient(raw_server, token="a.b.c", name="raw", retries=0) as c:
        s = stream(c, "/stream-cut")
        assert next(s)["content"] == "one"
        with pytest.raises((errors.Unavailable, errors.BadResponse)):
            next(s)


@pytest.mark.parametrize("path", ["/truncated", "/not-json"])
def test_truncated_or_non_json_body_is_bad_response(raw_server, path):
    with ArgoCDClient(raw_server, token="a.b.c", name="raw", retries=0) as c:
        with pytest.raises(errors.BadResponse) as ei:
            c._t.request("GET", path)
        assert ei.value.path == path and ei.value.http_status in (200, None)


def test_list_items_that_are_not_objects_are_dropped():
    from apps.argocd._http import items

    assert items({"items": [1, "x", {"metadata": {"name": "a"}}]}) == [{"metadata": {"name": "a"}}]
    assert items({"items": "nope"}) == [] and items({"items": None}) == [] and items([1]) == []

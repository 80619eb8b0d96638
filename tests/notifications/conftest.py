from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The personas' passwords are hashed on every test; the production hasher's cost buys nothing here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


class Receiver:
    """A webhook receiver on a free port that checks each request's HMAC signature as a real consumer would."""

    def __init__(self, secret: str, codes: list[int] | None = None) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.secret = secret
        self.codes = list(codes or [])
        self.received: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                expected = "sha256=" + hmac.new(receiver.secret.encode(), raw, hashlib.sha256).hexdigest()
                signature = self.headers.get("X-Portal-Signature", "")
                with receiver.lock:
                    code = receiver.codes.pop(0) if receiver.codes else 200
                    receiver.received.append({
                        "raw": raw,
                        "json": json.loads(raw),
                        "signed": hmac.compare_digest(expected, signature),
                        "timestamp": self.headers.get("X-Portal-Timestamp", ""),
                        "code": code,
                    })  # fmt: skip
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout: float = 60) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.05)
        raise AssertionError(f"the receiver got {len(self.received)} request(s), expected {count}")

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


SECRET = "whsec-Very-Secret-Value-42"


@pytest.fixture
def receiver():
    r = Receiver(SECRET)
    yield r
    r.stop()

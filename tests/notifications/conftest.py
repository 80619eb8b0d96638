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


@pytest.fixture(autouse=True)
def local_receivers_allowed(monkeypatch, settings):
    """The test receivers listen on loopback, which webhooks may call only when allowed (here and in a worker)."""
    monkeypatch.setenv("NOTIFY_ALLOWED_HOSTS", "127.0.0.1")
    settings.NOTIFY_ALLOWED_HOSTS = ["127.0.0.1"]


@pytest.fixture(autouse=True)
def dns(monkeypatch) -> dict[str, str]:
    """Names the tests use, resolved in this process without a DNS server; a test changes the table to make a
    name resolve elsewhere. Any other name (127.0.0.1, localhost) resolves as usual."""
    import socket

    table = {"hooks.example.com": "93.184.215.14", "x.example.com": "93.184.215.14"}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in table:
            family = socket.AF_INET6 if ":" in table[host] else socket.AF_INET
            return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (table[host], port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


class Receiver:
    """A webhook receiver on a free port that checks each request's HMAC signature as a real consumer would."""

    def __init__(self, secret: str, codes: list[int] | None = None, location: str = "") -> None:
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
                        "host": self.headers.get("Host", ""),
                    })  # fmt: skip
                self.send_response(code)
                if location and 300 <= code < 400:
                    self.send_header("Location", location)
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


class Inbox:
    """A real SMTP server (aiosmtpd) on a free port that requires a login and keeps every message it accepts."""

    USER, PASSWORD = "portal-mailer", "smtp-Pass-Word-77"

    def __init__(self) -> None:
        import socket
        import threading
        import warnings

        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.messages: list = []
        self.logins: list[str] = []
        self.lock = threading.Lock()
        inbox = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's naming
                import email
                from email import policy

                with inbox.lock:
                    inbox.messages.append({
                        "to": list(envelope.rcpt_tos),
                        "raw": envelope.content,
                        "message": email.message_from_bytes(envelope.content, policy=policy.default),
                    })  # fmt: skip
                return "250 Message accepted"

        def authenticate(server, session, envelope, mechanism, auth_data):
            ok = auth_data.login.decode() == Inbox.USER and auth_data.password.decode() == Inbox.PASSWORD
            if ok:
                inbox.logins.append(auth_data.login.decode())
            return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 on a failure

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # login without TLS: fine on loopback in a test
            self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, authenticator=authenticate,
                                         auth_required=True, auth_require_tls=False)  # fmt: skip
            self.controller.start()

    def wait_for(self, count: int, timeout: float = 60) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.05)
        raise AssertionError(f"the mail server got {len(self.messages)} message(s), expected {count}")

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture
def inbox(monkeypatch, settings):
    """The SMTP server, and the settings that point the portal (and a worker started after it) at it."""
    server = Inbox()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"  # the test runner's default is locmem
    smtp = {"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(server.port), "EMAIL_HOST_USER": Inbox.USER,
            "EMAIL_HOST_PASSWORD": Inbox.PASSWORD, "DEFAULT_FROM_EMAIL": "portal@example.test"}  # fmt: skip
    for name, value in smtp.items():
        monkeypatch.setenv(name, value)
        setattr(settings, name, int(value) if name == "EMAIL_PORT" else value)
    yield server
    server.stop()


@pytest.fixture
def mail_worker(inbox, celery_worker):
    """A Celery worker that reads the mail server's settings (the inbox fixture sets them before it starts)."""
    return celery_worker

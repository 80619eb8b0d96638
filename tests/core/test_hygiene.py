"""What the portal tells strangers and writes to its log: readiness details, expected refusals."""

from __future__ import annotations

import io
import logging
import socket
from contextlib import contextmanager

import pytest

from apps.operations import workers


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------- /readyz
@pytest.mark.django_db
def test_anonymous_readiness_names_failed_checks_without_addresses(client, settings, caplog):
    port = closed_port()
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/8"
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": f"redis://127.0.0.1:{port}/8"}
    }
    with caplog.at_level(logging.WARNING, logger="apps.core.views"):
        response = client.get("/readyz")
    assert response.status_code == 503
    # With the cache away no worker's heartbeat can be read either.
    assert response.json() == {"status": "unavailable", "failed": ["broker", "cache", "workers"]}
    assert str(port) not in response.content.decode() and "127.0.0.1" not in response.content.decode()
    # The operator still learns why, from the log.
    assert str(port) in caplog.text


@pytest.mark.django_db
def test_platform_admin_sees_why_a_readiness_check_failed(client, settings, admin_user, alice):
    port = closed_port()
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/8"
    workers.beat("celery@test")  # a worker consumes: only the broker fails
    client.force_login(alice)
    member = client.get("/readyz")
    assert member.status_code == 503 and member.json() == {"status": "unavailable", "failed": ["broker"]}
    client.force_login(admin_user)
    admin = client.get("/readyz")
    body = admin.json()
    assert admin.status_code == 503 and body["failed"] == ["broker"]
    assert str(port) in body["detail"]["broker"]


# ---------------------------------------------------------------- expected refusals in the log
@contextmanager
def console_output():
    """What the portal's console handlers print (every handler a django.request record reaches)."""
    buffer = io.StringIO()
    handlers = []
    logger: logging.Logger | None = logging.getLogger("django.request")
    while logger is not None:
        handlers += [h for h in logger.handlers if h.get_name() == "console"]
        logger = logger.parent if logger.propagate else None
    assert handlers, "the console handler of the logging settings is not installed"
    streams = [h.setStream(buffer) for h in handlers]
    try:
        yield buffer
    finally:
        for handler, stream in zip(handlers, streams, strict=True):
            handler.setStream(stream)


@pytest.mark.django_db
def test_an_expected_refusal_logs_one_line_without_traceback(client, alice, settings, caplog):
    settings.DEBUG = True  # development prints django's records through a second handler as well
    client.force_login(alice)
    with console_output() as out, caplog.at_level(logging.INFO):
        response = client.get("/instances/new/")  # platform admins only
    assert response.status_code == 403
    printed = out.getvalue()
    assert printed.count("Forbidden") == 1 and "Traceback" not in printed, printed
    # One line for the refusal, besides the audit log's own line for the event it records.
    assert len([line for line in printed.strip().splitlines() if "portal.audit" not in line]) == 1, printed
    assert "portal.audit" in printed and "denied" in printed
    refusals = [r for r in caplog.records if r.name == "django.request"]
    assert len(refusals) == 1 and refusals[0].exc_info is None
    assert "Traceback" not in caplog.text


@pytest.mark.django_db
def test_a_server_error_still_logs_its_traceback(client, alice, settings):
    settings.ROOT_URLCONF = __name__
    client.raise_request_exception = False
    client.force_login(alice)
    with console_output() as out:
        response = client.get("/boom/")
    assert response.status_code == 500
    assert "Traceback" in out.getvalue() and "RuntimeError: boom" in out.getvalue()


def _boom(request):
    raise RuntimeError("boom")


def _urls():
    from django.urls import path

    return [path("boom/", _boom)]


urlpatterns = _urls()

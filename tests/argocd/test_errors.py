"""Typed errors: from Argo CD's error bodies, and from everything that can go wrong on the way there."""

from __future__ import annotations

import json
import socket
import time

import pytest

from apps.argocd import ArgoCDClient, errors

# ---------------------------------------------------------------- pure mapping (no HTTP)


def unary(code: int, msg: str) -> bytes:
    return json.dumps({"error": msg, "code": code, "message": msg}).encode()


def stream(code: int, http: int, msg: str) -> bytes:
    return json.dumps({"error": {"grpc_code": code, "http_code": http, "message": msg, "http_status": "x"}}).encode()


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (404, unary(5, 'applications.argoproj.io "x" not found'), errors.NotFound),
        (403, unary(7, "permission denied"), errors.PermissionDenied),
        (401, unary(16, "no session information"), errors.Unauthenticated),
        (400, unary(3, "bad spec"), errors.InvalidArgument),
        (409, unary(6, "exists"), errors.AlreadyExists),
        (400, unary(9, "another operation is already in progress"), errors.FailedPrecondition),
        (409, unary(10, "conflict"), errors.Conflict),
        (503, unary(14, "down"), errors.Unavailable),
        (500, unary(2, "error getting app resource tree"), errors.Internal),
        (500, unary(13, "Too many conflicts"), errors.Internal),
        (501, unary(12, "not implemented"), errors.Unimplemented),
        (403, stream(7, 403, "permission denied"), errors.PermissionDenied),
        (200, stream(5, 404, "gone"), errors.NotFound),
    ],
)
def test_grpc_code_decides_the_class(status, body, cls):
    err = errors.from_response(status, body, "application/json", instance="prod", method="GET", path="/p")
    assert type(err) is cls
    assert err.http_status == status and err.grpc_code is not None


def test_message_is_fit_for_a_person():
    body = unary(5, 'applications.argoproj.io "x" not found')
    err = errors.from_response(
        404, body, "application/json", instance="prod", method="GET", path="/api/v1/applications/x"
    )
    assert str(err) == "prod: application 'x' not found (GET /api/v1/applications/x)"
    assert err.detail == "application 'x' not found"
    assert not err.transient


def test_html_from_a_proxy_is_bad_response():
    err = errors.from_response(502, b"<html>Bad Gateway</html>", "text/html", instance="p", method="GET", path="/x")
    assert isinstance(err, errors.BadResponse) and err.transient
    assert "<html>" not in err.message


def test_plain_text_route_not_found_is_not_found():
    err = errors.from_response(404, b"Not Found\n", "text/plain; charset=utf-8", instance="p", method="POST", path="/x")
    assert isinstance(err, errors.NotFound) and err.grpc_code is None


# ---------------------------------------------------------------- over HTTP


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_not_found_with_project_and_permission_denied_without(client, some_app):
    project = some_app["spec"]["project"]
    with pytest.raises(errors.NotFound) as ei:
        client.get_application("no-such-app", project=project)
    assert ei.value.http_status == 404 and ei.value.grpc_code == 5
    assert ei.value.instance == client.name and ei.value.path == "/api/v1/applications/no-such-app"
    with pytest.raises(errors.PermissionDenied):
        client.get_application("no-such-app")


def test_invalid_argument(client, uid):
    with pytest.raises(errors.InvalidArgument) as ei:
        client.rollback_application(client.list_applications()[0]["metadata"]["name"], 987654)
    assert ei.value.http_status == 400 and ei.value.grpc_code == 3
    # Argo CD answers a create that differs from the existing object with InvalidArgument, not AlreadyExists.
    client.create_project({"metadata": {"name": f"p-{uid}"}, "spec": {"sourceRepos": ["*"]}})
    try:
        with pytest.raises(errors.InvalidArgument) as ei:
            client.create_project({"metadata": {"name": f"p-{uid}"}, "spec": {"sourceRepos": ["other"]}})
        assert "upsert" in ei.value.message
    finally:
        client.delete_project(f"p-{uid}")


def test_failed_precondition_when_an_operation_is_running(make_sim):
    sim = make_sim(sync_seconds=5.0)
    with ArgoCDClient(sim.url, token=sim.portal_token(), name="s") as c:
        name = next(
            a["metadata"]["name"] for a in c.list_applications() if not a["spec"].get("syncPolicy", {}).get("automated")
        )
        c.sync_application(name)
        with pytest.raises(errors.FailedPrecondition) as ei:
            c.sync_application(name)
        assert ei.value.http_status == 400 and ei.value.grpc_code == 9


def test_unauthenticated_without_token(sim):
    with (
        ArgoCDClient(sim.url, name="anon") as c,
        pytest.raises(errors.Unauthenticated) as ei,
    ):
        c.list_applications()
        assert ei.value.http_status == 401
        assert c.userinfo()["loggedIn"] is False


def test_permission_denied_for_readonly_user(sim, some_app):
    with ArgoCDClient(sim.url, username="alice", password="alice-password", name="ro") as c:
        assert c.get_application(some_app["metadata"]["name"])["metadata"]["name"] == some_app["metadata"]["name"]
        with pytest.raises(errors.PermissionDenied):
            c.sync_application(some_app["metadata"]["name"], dry_run=True)


def test_bad_login_is_unauthenticated(sim):
    with (
        ArgoCDClient(sim.url, username="admin", password="wrong", name="bad") as c,
        pytest.raises(errors.Unauthenticated) as ei,
    ):
        c.list_applications()
        assert "wrong" not in str(ei.value)


def test_unavailable_on_503(make_sim):
    sim = make_sim()
    sim.faults.fail_rate = 1.0
    with (
        ArgoCDClient(sim.url, token=sim.portal_token(), name="flaky", retries=1, backoff=0.01) as c,
        pytest.raises(errors.Unavailable) as ei,
    ):
        c.list_applications()
        assert ei.value.transient and ei.value.http_status == 503


def test_bad_response_on_html_from_proxy(make_sim):
    sim = make_sim()
    sim.faults.garbage = True
    with (
        ArgoCDClient(sim.url, token=sim.portal_token(), name="proxy", retries=0) as c,
        pytest.raises(errors.BadResponse) as ei,
    ):
        c.version()
        assert ei.value.instance == "proxy" and ei.value.method == "GET" and ei.value.path == "/api/version"
        assert "proxy" in ei.value.message


def test_timeout_is_unavailable_and_bounded(make_sim):
    sim = make_sim()
    sim.faults.latency_ms = 1500
    with ArgoCDClient(sim.url, token=sim.portal_token(), name="slow", read_timeout=0.3, retries=3) as c:
        t0 = time.monotonic()
        with pytest.raises(errors.Unavailable) as ei:
            c.list_applications()
        # A read timeout is not retried (the server is slow, not absent), so the wait is one timeout.
        assert time.monotonic() - t0 < 1.2
        assert "0.3s" in ei.value.message


def test_connection_refused_is_unavailable():
    with (
        ArgoCDClient(f"http://127.0.0.1:{free_port()}", token="a.b.c", name="gone", retries=0) as c,
        pytest.raises(errors.Unavailable) as ei,
    ):
        c.version()
        assert ei.value.message == "gone: connection refused (GET /api/version)"


def test_dns_failure_is_unavailable():
    with (
        ArgoCDClient("http://argocd.invalid", token="a.b.c", name="nodns", retries=0) as c,
        pytest.raises(errors.Unavailable),
    ):
        c.version()

"""Auth, secrecy of the token, timeouts, retries and TLS options — over real HTTP to the simulator."""

from __future__ import annotations

import logging
import socket

import pytest

from apps.argocd import ArgoCDClient, errors

from .conftest import CountingSession


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- auth


def test_token_auth(sim, client):
    info = client.userinfo()
    assert info["loggedIn"] is True and info["username"] == "portal"


def test_password_login_is_lazy_and_happens_once(sim):
    session = CountingSession()
    with ArgoCDClient(sim.url, username="admin", password="password", name="pw", session=session) as c:
        assert c.userinfo()["username"] == "admin"
        c.list_applications()
        assert session.count("POST", "/api/v1/session") == 1


def test_relogin_once_on_401_then_retry(sim):
    session = CountingSession()
    with ArgoCDClient(sim.url, username="admin", password="password", name="pw", session=session) as c:
        c.login()
        c._t._token = "stale.jwt.token"  # what an expired/revoked session looks like to the client
        assert c.list_applications()
        assert session.count("POST", "/api/v1/session") == 2
        assert session.count("GET", "/api/v1/applications") == 2  # the 401, then the retry


def test_relogin_is_not_attempted_twice(sim):
    """If the fresh token is refused too, the 401 surfaces instead of looping."""
    session = CountingSession()
    with ArgoCDClient(sim.url, username="admin", password="password", name="pw", session=session) as c:
        c.login()
        original_login = c._t.login

        def login_returning_junk() -> str:
            original_login()
            c._t._token = "still.bad.token"
            return c._t._token

        c._t.login = login_returning_junk
        c._t._token = "stale.jwt.token"
        with pytest.raises(errors.Unauthenticated):
            c.list_applications()
        assert session.count("GET", "/api/v1/applications") == 2


def test_static_token_401_is_not_retried(sim):
    session = CountingSession()
    with (
        ArgoCDClient(sim.url, token="bad.jwt.token", name="t", session=session) as c,
        pytest.raises(errors.Unauthenticated),
    ):
        c.list_applications()
    assert session.count("GET", "/api/v1/applications") == 1


def test_logout_forgets_the_token_and_next_call_logs_in_again(sim):
    session = CountingSession()
    with ArgoCDClient(sim.url, username="admin", password="password", name="pw", session=session) as c:
        c.login()
        c.delete_session()
        assert c.userinfo()["loggedIn"] is True
        assert session.count("POST", "/api/v1/session") == 2


def test_create_session_returns_a_usable_token(sim, client):
    token = client.create_session("alice", "alice-password")
    with ArgoCDClient(sim.url, token=token, name="alice") as c:
        assert c.userinfo()["username"] == "alice"


def test_token_never_leaks(make_sim, caplog):
    sim = make_sim()
    token = sim.portal_token()
    caplog.set_level(logging.DEBUG)
    c = ArgoCDClient(sim.url, token=token, name="secret", retries=1, backoff=0.01)
    pw = ArgoCDClient(sim.url, username="admin", password="password", name="pw")
    try:
        c.list_applications()
        pw.userinfo()
        session_token = pw._t._token
        assert token not in repr(c) and "password" not in repr(pw) and session_token not in repr(pw)
        with pytest.raises(errors.ArgoCDError) as ei:
            c.get_application("nope")
        assert token not in str(ei.value) and token not in repr(ei.value)
        sim.faults.fail_rate = 1.0
        with pytest.raises(errors.Unavailable) as ei:
            c.version()
        assert token not in str(ei.value) and token not in repr(ei.value)
    finally:
        c.close()
        pw.close()
    assert any(r.name == "apps.argocd" for r in caplog.records), "expected request logging at DEBUG"
    for rec in caplog.records:
        text = rec.getMessage()
        assert token not in text and session_token not in text and "password" not in text


def test_server_text_echoing_the_token_is_scrubbed(sim):
    c = ArgoCDClient(sim.url, token="abc.def.ghi", name="x")
    err = errors.from_response(401, b'{"code":16,"message":"bad token abc.def.ghi"}', "application/json",
                               instance="x", method="GET", path="/p")  # fmt: skip
    assert "abc.def.ghi" not in c._t.scrub(err.detail)


# ---------------------------------------------------------------- headers, TLS options


def test_content_type_sent_on_delete(client, uid):
    """Argo CD answers 415 to a DELETE without Content-Type: delete must work."""
    client.create_project({"metadata": {"name": f"ct-{uid}"}, "spec": {"sourceRepos": ["*"]}})
    client.delete_project(f"ct-{uid}")
    with pytest.raises((errors.NotFound, errors.PermissionDenied)):
        client.get_project(f"ct-{uid}")


def test_ca_bundle_pem_text_goes_to_a_temp_file_removed_on_close(sim):
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    c = ArgoCDClient(sim.url, token="a.b.c", ca_bundle=pem)
    import os

    path = c._t.verify
    assert isinstance(path, str)
    with open(path) as fh:
        assert fh.read() == pem
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    c.close()
    assert not os.path.exists(path)


def test_ca_bundle_path_used_as_is(tmp_path):
    f = tmp_path / "ca.pem"
    f.write_text("-----BEGIN CERTIFICATE-----\n")
    c = ArgoCDClient("https://x", ca_bundle=str(f))
    assert c._t.verify == str(f)
    c.close()
    assert f.exists()
    with pytest.raises(ValueError):
        ArgoCDClient("https://x", ca_bundle="/no/such/file.pem")
    assert ArgoCDClient("https://x", verify=False, ca_bundle=str(f))._t.verify is False


def test_tls_to_plain_http_server_is_unavailable_not_a_crash(sim):
    https_url = sim.url.replace("http://", "https://")
    with ArgoCDClient(https_url, token="a.b.c", name="tls", retries=0) as c, pytest.raises(errors.Unavailable):
        c.version()


# ---------------------------------------------------------------- retries and timeouts


def test_get_retried_on_503_with_backoff(make_sim):
    sim = make_sim()
    sim.faults.fail_rate = 1.0
    session = CountingSession()
    with (
        ArgoCDClient(sim.url, token=sim.portal_token(), name="f", retries=3, backoff=0.01, session=session) as c,
        pytest.raises(errors.Unavailable),
    ):
        c.list_applications()
    assert session.count("GET", "/api/v1/applications") == 4  # 1 + 3 retries


def test_get_retry_recovers_when_the_instance_does(make_sim):
    sim = make_sim()
    sim.faults.fail_rate = 1.0
    session = CountingSession()
    real_send = session.send

    def heal_after_two(request, **kw):
        if len(session.sent) == 2:
            sim.faults.fail_rate = 0.0
        return real_send(request, **kw)

    session.send = heal_after_two
    with ArgoCDClient(sim.url, token=sim.portal_token(), name="f", retries=3, backoff=0.01, session=session) as c:
        assert c.version()["Version"]
    assert len(session.sent) == 3


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.sync_application("whatever", dry_run=True),
        lambda c: c.create_project({"metadata": {"name": "x"}, "spec": {}}),
        lambda c: c.delete_project("x"),
        lambda c: c.update_project({"metadata": {"name": "x"}, "spec": {}}),
        lambda c: c.patch_application("x", {"metadata": {"labels": {"a": "b"}}}),
    ],
    ids=["POST", "POST-create", "DELETE", "PUT", "PATCH"],
)
def test_writes_not_retried_on_503(make_sim, call):
    sim = make_sim()
    sim.faults.fail_rate = 1.0
    session = CountingSession()
    with (
        ArgoCDClient(sim.url, token=sim.portal_token(), name="f", retries=3, backoff=0.01, session=session) as c,
        pytest.raises(errors.Unavailable),
    ):
        call(c)
    assert len(session.sent) == 1


def test_get_retried_on_connection_refused():
    session = CountingSession()
    c = ArgoCDClient(
        f"http://127.0.0.1:{free_port()}", token="a.b.c", name="r", retries=2, backoff=0.01, session=session
    )
    with pytest.raises(errors.Unavailable):
        c.list_applications()
    assert len(session.sent) == 3


def test_post_retried_only_when_connection_never_opened():
    """Refused means the server saw nothing, so even a POST may be re-sent; a 503 (above) may not."""
    session = CountingSession()
    c = ArgoCDClient(
        f"http://127.0.0.1:{free_port()}", token="a.b.c", name="r", retries=2, backoff=0.01, session=session
    )
    with pytest.raises(errors.Unavailable):
        c.sync_application("x")
    assert len(session.sent) == 3


def test_read_timeout_not_retried(make_sim):
    sim = make_sim()
    sim.faults.latency_ms = 800
    session = CountingSession()
    with (
        ArgoCDClient(sim.url, token=sim.portal_token(), name="slow", read_timeout=0.2, retries=3, session=session) as c,
        pytest.raises(errors.Unavailable) as ei,
    ):
        c.version()
    assert len(session.sent) == 1
    assert "no answer within 0.2s" in ei.value.message


def test_latency_below_timeout_is_fine(make_sim):
    sim = make_sim()
    sim.faults.latency_ms = 100
    with ArgoCDClient(sim.url, token=sim.portal_token(), name="ok", read_timeout=2) as c:
        assert c.version()


def test_bad_response_not_retried_for_post_but_retried_for_get(make_sim):
    sim = make_sim()
    sim.faults.garbage = True
    session = CountingSession()
    with (
        ArgoCDClient(sim.url, token=sim.portal_token(), name="g", retries=2, backoff=0.01, session=session) as c,
        pytest.raises(errors.BadResponse),
    ):
        c.version()
        assert len(session.sent) == 3  # the garbage page comes with 502: retried like any 502
        with pytest.raises(errors.BadResponse):
            c.create_project({"metadata": {"name": "x"}, "spec": {}})
        assert len(session.sent) == 4

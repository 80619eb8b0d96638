"""Instance pages: secrets stay write-only, edits, test connection, the can-i matrix, admin-only access."""

from __future__ import annotations

import json
from unittest.mock import ANY

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client, override_settings

from apps.audit.models import AuditEvent
from apps.core import fields
from apps.instances.models import Instance

pytestmark = pytest.mark.django_db


def _edit_form(instance: Instance, **overrides) -> dict:
    data = {"url": instance.url, "token": "", "username": instance.username, "password": "", "verify_tls": "on",
            "ca_bundle": "", "labels": "", "enabled": "on"}  # fmt: skip
    data.update(overrides)
    return data


def _raw_secrets(name: str) -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT token, password FROM instances_instance WHERE name = %s", [name])
        return cursor.fetchone()


def _every_page(client: Client, name: str) -> dict[str, str]:
    pages = {
        "list": client.get("/instances/"),
        "detail": client.get(f"/instances/{name}/"),
        "matrix": client.get(f"/instances/{name}/?cani=1"),
        "matrix-partial": client.get(f"/instances/{name}/?part=cani", HTTP_HX_REQUEST="true"),
        "edit": client.get(f"/instances/{name}/edit/"),
        "test": client.post(f"/instances/{name}/", {"test": "1"}, HTTP_HX_REQUEST="true"),
        "new": client.get("/instances/new/"),
    }
    assert {k: r.status_code for k, r in pages.items()} == dict.fromkeys(pages, 200)
    return {k: r.content.decode() for k, r in pages.items()}


def test_secrets_are_never_rendered_on_any_instance_page(admin_client, sim):
    admin_client.post(
        "/instances/new/",
        {"name": "sim-s", "url": sim.url, "username": "alice", "password": "alice-password", "verify_tls": "on",
         "enabled": "on"},
    )  # fmt: skip
    instance = Instance.objects.get(name="sim-s")
    assert instance.token and instance.password == "alice-password"
    pages = _every_page(admin_client, "sim-s")
    for page, html in pages.items():
        assert instance.token not in html, page
        assert "alice-password" not in html, page
    assert "token set" in pages["detail"] and "expires" in pages["detail"]
    events = json.dumps(list(AuditEvent.objects.values("request", "before", "after", "error")))
    assert instance.token not in events and "alice-password" not in events


def test_a_blank_secret_on_edit_keeps_the_stored_one(admin_client, registered, portal_token):
    response = admin_client.post("/instances/sim-reg/edit/", _edit_form(registered, labels="env=prod"))
    assert response.status_code == 302, response.content.decode()[:3000]
    registered.refresh_from_db()
    assert registered.token == portal_token
    assert registered.labels == {"env": "prod"}
    event = AuditEvent.objects.exclude(outcome="started").get(kind="instance", action="update")
    assert event.before["labels"] == {} and event.after["labels"] == {"env": "prod"}
    assert portal_token not in json.dumps([event.before, event.after, event.request])


def test_a_new_token_on_edit_is_checked_and_replaces_the_old_one(admin_client, sim, registered, portal_token):
    fresh = sim.portal_token()
    assert admin_client.post("/instances/sim-reg/edit/", _edit_form(registered, token=fresh)).status_code == 302
    registered.refresh_from_db()
    assert registered.token == fresh


def test_a_rejected_token_on_edit_changes_nothing(admin_client, registered, portal_token):
    other_url = registered.url.replace("127.0.0.1", "localhost")
    response = admin_client.post("/instances/sim-reg/edit/", _edit_form(registered, token="garbage", url=other_url))
    assert response.status_code == 200
    assert "did not accept the token" in response.content.decode()
    registered.refresh_from_db()
    assert registered.token == portal_token and registered.url.startswith("http://127.0.0.1")
    assert AuditEvent.objects.exclude(outcome="started").get(kind="instance", action="update").outcome == "failed"


def test_changing_the_account_needs_its_password(admin_client, registered):
    response = admin_client.post("/instances/sim-reg/edit/", _edit_form(registered, username="someone-else"))
    assert "Changing the account needs its password" in response.content.decode()


def test_secrets_are_encrypted_at_rest(sim, registered, portal_token):
    Instance.objects.filter(pk=registered.pk).update(password="a-stored-password")
    raw_token, raw_password = _raw_secrets("sim-reg")
    assert raw_token != portal_token and portal_token not in raw_token
    assert "a-stored-password" not in raw_password
    assert fields.decrypt(raw_token) == portal_token
    assert Instance.objects.get(pk=registered.pk).password == "a-stored-password"


def test_rotate_keys_re_encrypts_every_secret_with_the_first_key(settings, registered, portal_token):
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    new_key = Fernet.generate_key().decode()
    before, _ = _raw_secrets("sim-reg")
    try:
        with override_settings(FIELD_ENCRYPTION_KEYS=[new_key, old_key]):
            call_command("rotate_keys")
        after, _ = _raw_secrets("sim-reg")
        assert after != before
        assert Fernet(new_key.encode()).decrypt(after.encode()).decode() == portal_token
        with override_settings(FIELD_ENCRYPTION_KEYS=[new_key]):  # the old key can now be dropped
            fields._fernet.cache_clear()
            assert Instance.objects.get(pk=registered.pk).token == portal_token
    finally:
        fields._fernet.cache_clear()


def test_rotate_keys_stops_and_changes_nothing_when_a_secret_cannot_be_decrypted(registered):
    before, _ = _raw_secrets("sim-reg")
    try:
        with (
            override_settings(FIELD_ENCRYPTION_KEYS=[Fernet.generate_key().decode()]),
            pytest.raises(CommandError, match="no configured key decrypts it"),
        ):
            call_command("rotate_keys")
    finally:
        fields._fernet.cache_clear()
    assert _raw_secrets("sim-reg")[0] == before


def test_test_connection_shows_version_and_userinfo(admin_client, registered):
    response = admin_client.post("/instances/sim-reg/", {"test": "1"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert "Connected to Argo CD" in html and "<strong>portal</strong>" in html
    registered.refresh_from_db()
    assert registered.version.startswith("v") and registered.version in html
    assert registered.last_seen is not None and registered.last_error == ""
    event = AuditEvent.objects.exclude(outcome="started").get(kind="instance", action="test")
    assert (event.outcome, event.instance, event.request) == (
        "succeeded",
        "sim-reg",
        {"version": registered.version, "request_id": ANY},
    )


def test_test_connection_without_htmx_redirects_with_a_message(admin_client, registered):
    response = admin_client.post("/instances/sim-reg/", {"test": "1"}, follow=True)
    assert response.status_code == 200
    assert "Connected: Argo CD v" in response.content.decode()


def _test_failure(admin_client, url: str, token: str = "x.y.z") -> tuple[str, Instance]:
    instance = Instance.objects.create(name="sim-broken", url=url, token=token)
    response = admin_client.post("/instances/sim-broken/", {"test": "1"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    instance.refresh_from_db()
    event = AuditEvent.objects.exclude(outcome="started").get(kind="instance", action="test")
    assert event.outcome == "failed" and event.error == instance.last_error
    return response.content.decode(), instance


def test_test_connection_to_a_stopped_instance_says_it_is_down(admin_client):
    from apps.simulator.server import SimServer

    server = SimServer(port=0, name="sim-stopped", apps=1, projects=1).start()
    token = server.portal_token()
    url = server.url
    server.stop()
    html, instance = _test_failure(admin_client, url, token)
    assert "Connection failed: sim-broken:" in html
    assert "refused" in instance.last_error.lower()


def test_test_connection_to_a_port_with_nothing_listening_says_so(admin_client, free_port):
    html, instance = _test_failure(admin_client, f"http://127.0.0.1:{free_port}")
    assert "Connection failed" in html and "refused" in html.lower()
    assert instance.last_seen is None


def test_test_connection_to_a_garbage_answer_explains_it(admin_client):
    from apps.simulator.server import SimServer

    with SimServer(port=0, name="sim-garbage", apps=1, projects=1) as server:
        token = server.portal_token()
        server.faults.garbage = True
        html, instance = _test_failure(admin_client, server.url, token)
    assert "Connection failed" in html
    assert instance.last_error and "<html" not in html


def test_test_connection_with_a_revoked_token_says_it_is_not_accepted(admin_client, sim):
    html, instance = _test_failure(admin_client, sim.url, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")
    assert "not accepted" in html


def test_can_i_matrix_shows_what_the_portal_account_may_do(admin_client, registered):
    response = admin_client.get("/instances/sim-reg/?part=cani", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert "Some questions failed" not in html
    assert 'data-cell="clusters:delete"><span class="badge ok">yes' in html
    assert 'data-cell="accounts:update"><span class="badge ok">yes' in html
    assert 'data-cell="clusters:sync"><span class="muted">—' in html
    assert "grants of rotate can never work" not in html
    # role:admin's application policies name "*/*", which the REST can-i object "*" cannot match: not a "no".
    assert 'data-cell="applications:sync"><span class="badge denied">' not in html
    assert "can never work</span>" not in html


def test_can_i_matrix_shows_when_grants_can_never_work_for_a_read_only_account(admin_client, sim):
    Instance.objects.create(name="sim-ro", url=sim.url, token=sim.login_token("alice"))
    html = admin_client.get("/instances/sim-ro/?part=cani", HTTP_HX_REQUEST="true").content.decode()
    assert 'data-cell="clusters:get"><span class="badge ok">yes' in html
    assert 'data-cell="clusters:update"><span class="badge denied">no' in html
    assert 'data-cell="accounts:update"><span class="badge denied">no' in html
    assert "grants of rotate can never work" in html
    assert "grants of edit clusters can never work" in html


def test_can_i_answers_yes_for_applications_when_a_policy_names_every_object(admin_client):
    from apps.simulator.server import SimServer

    policy = "p, role:syncer, applications, sync, *, allow\ng, alice, role:syncer\n"
    with SimServer(port=0, name="sim-policy", apps=1, projects=1, policy_csv=policy) as server:
        Instance.objects.create(name="sim-policy", url=server.url, token=server.login_token("alice"))
        html = admin_client.get("/instances/sim-policy/?part=cani", HTTP_HX_REQUEST="true").content.decode()
    assert 'data-cell="applications:sync"><span class="badge ok">yes' in html
    assert 'data-cell="applications:delete"><span class="badge" title=' in html
    assert '<tr data-action="sync"><td>sync</td><td>applications sync</td><td><span class="badge ok">works' in html


def test_can_i_matrix_of_a_dead_instance_reports_the_error_not_a_500(admin_client, free_port):
    Instance.objects.create(name="sim-dead", url=f"http://127.0.0.1:{free_port}", token="x.y.z")
    response = admin_client.get("/instances/sim-dead/?cani=1")
    assert response.status_code == 200
    assert "Some questions failed" in response.content.decode()


def test_detail_page_shows_health_and_index_freshness(admin_client, registered):
    from django.utils import timezone

    from apps.index.models import IndexState

    html = admin_client.get("/instances/sim-reg/").content.decode()
    assert "The indexer has not reported on this instance yet." in html
    IndexState.objects.create(instance=registered, app_count=30, connected=True, last_resync_at=timezone.now())
    html = admin_client.get("/instances/sim-reg/").content.decode()
    assert "<dd>30</dd>" in html and "connected" in html
    assert 'hx-get="/instances/sim-reg/?part=cani"' in html and 'href="/instances/sim-reg/?cani=1#cani"' in html


def test_disable_enable_and_delete_are_audited(admin_client, registered):
    admin_client.post("/instances/sim-reg/", {"disable": "1"})
    registered.refresh_from_db()
    assert registered.enabled is False
    admin_client.post("/instances/sim-reg/", {"enable": "1"})
    registered.refresh_from_db()
    assert registered.enabled is True
    response = admin_client.post("/instances/sim-reg/", {"delete": "1", "confirm_name": "wrong"}, follow=True)
    assert "nothing was deleted" in response.content.decode()
    assert Instance.objects.filter(name="sim-reg").exists()
    response = admin_client.post("/instances/sim-reg/", {"delete": "1", "confirm_name": "sim-reg"})
    assert response.status_code == 302 and response["Location"] == "/instances/"
    assert not Instance.objects.filter(name="sim-reg").exists()
    events = list(
        AuditEvent.objects.exclude(outcome="started")
        .filter(kind="instance")
        .order_by("id")
        .values_list("action", "outcome")
    )
    assert events == [("disable", "succeeded"), ("enable", "succeeded"), ("delete", "succeeded")]
    assert AuditEvent.objects.exclude(outcome="started").get(action="delete").before["name"] == "sim-reg"


ADMIN_PAGES = ["/instances/", "/instances/new/", "/instances/sim-reg/", "/instances/sim-reg/edit/"]


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_a_member_gets_the_portal_403_page_on_admin_pages(member_client, registered, path):
    for response in (member_client.get(path), member_client.post(path, {"test": "1", "delete": "1"})):
        assert response.status_code == 403
        assert "403 · Not allowed" in response.content.decode()
    assert Instance.objects.filter(name="sim-reg").exists()


def test_anonymous_visitors_are_sent_to_the_login_page(client, registered):
    response = client.get("/instances/sim-reg/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/instances/new/", {"name": "sim-c", "url": "http://127.0.0.1:1", "token": "t"}),
        ("/instances/sim-reg/", {"test": "1"}),
        ("/instances/sim-reg/", {"disable": "1"}),
        ("/instances/sim-reg/", {"delete": "1", "confirm_name": "sim-reg"}),
        ("/instances/sim-reg/edit/", {"url": "http://127.0.0.1:1"}),
    ],
)
def test_every_post_needs_a_csrf_token(admin_user, registered, path, data):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post(path, data).status_code == 403
    assert Instance.objects.get(name="sim-reg").enabled is True
    assert not AuditEvent.objects.filter(kind="instance").exists()
    client.get(path)  # sets the CSRF cookie, as a browser would
    response = client.post(path, {**data, "csrfmiddlewaretoken": client.cookies["csrftoken"].value})
    assert response.status_code in (200, 302)


def test_deleting_an_instance_revokes_the_api_key_the_portal_created(admin_client, sim):
    admin_client.post(
        "/instances/new/",
        {"name": "sim-rev", "url": sim.url, "username": "portal", "password": "portal-password", "verify_tls": "on",
         "enabled": "on"},
    )  # fmt: skip
    token_id = Instance.objects.get(name="sim-rev").token_id
    assert any(t["id"] == token_id for t in sim.state.accounts["portal"].tokens)
    response = admin_client.post("/instances/sim-rev/", {"delete": "1", "confirm_name": "sim-rev"}, follow=True)
    assert f"Its API key {token_id} was revoked in Argo CD." in response.content.decode()
    assert not any(t["id"] == token_id for t in sim.state.accounts["portal"].tokens)
    event = AuditEvent.objects.exclude(outcome="started").get(kind="instance", action="delete", instance="sim-rev")
    assert "was revoked" in event.request["credential_revocation"]


def test_a_token_about_to_expire_is_flagged(admin_client, registered):
    from datetime import timedelta

    from django.utils import timezone

    Instance.objects.filter(pk=registered.pk).update(token_expires_at=timezone.now() + timedelta(days=3))
    assert "expires soon" in admin_client.get("/instances/").content.decode()
    Instance.objects.filter(pk=registered.pk).update(token_expires_at=timezone.now() + timedelta(days=300))
    assert "expires soon" not in admin_client.get("/instances/").content.decode()


def test_view_is_shown_to_work_when_the_index_sees_applications(admin_client, registered):
    from apps.index.models import IndexState

    IndexState.objects.create(instance=registered, app_count=30, connected=True)
    html = admin_client.get("/instances/sim-reg/?part=cani", HTTP_HX_REQUEST="true").content.decode()
    assert '<tr data-action="view"><td>view</td><td>applications get</td><td><span class="badge ok">works' in html
    assert "the index sees 30 applications" in html


@pytest.mark.django_db
def test_instance_page_says_when_the_portal_token_is_rotated_and_lists_rotations(admin_client, registered):
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from apps.operations.models import Operation

    registered.token_expires_at = timezone.now() + timedelta(days=30)
    registered.save()
    Operation.objects.create(
        kind=Operation.Kind.ROTATE_INSTANCE_TOKEN, instance=registered, instance_name=registered.name,
        state=Operation.State.FAILED, error="could not delete the old token",
    )  # fmt: skip
    body = admin_client.get(f"/instances/{registered.name}/").content.decode()
    due = registered.token_expires_at - timedelta(days=settings.PORTAL_TOKEN_ROTATE_WITHIN_DAYS)
    assert f"rotated automatically from {due:%Y-%m-%d %H:%M} UTC" in body
    assert "could not delete the old token" in body
    assert "/kinds/settings/sim-reg/settings/" in body


@pytest.mark.django_db
def test_changing_the_url_needs_the_credential_again(registered):
    from apps.instances.services import InstanceConnectionError, update_instance

    with pytest.raises(InstanceConnectionError, match="enter the token"):
        update_instance(
            registered, request=None, url="https://elsewhere.example.com", verify_tls=True, ca_bundle="",
            labels={}, enabled=True,
        )  # fmt: skip
    registered.refresh_from_db()
    assert registered.url != "https://elsewhere.example.com"


@pytest.mark.django_db
def test_an_instance_going_unreachable_and_back_is_audited_once_each_way(registered, free_port):
    from apps.instances.services import check_instance
    from apps.notifications.models import EventType
    from apps.notifications.services import event_type

    url = registered.url
    assert check_instance(registered)["ok"]
    registered.url = f"http://127.0.0.1:{free_port}"  # nothing answers there: the instance is down
    check_instance(registered)
    check_instance(registered)  # still down: no second event
    registered.url = url
    check_instance(registered)
    events = list(AuditEvent.objects.filter(kind="instance", action="health").order_by("id"))
    assert [e.outcome for e in events] == ["failed", "succeeded"]
    assert events[0].error.startswith("unreachable") and events[0].actor == "system"
    assert event_type(events[0]) == EventType.INSTANCE_UNREACHABLE and event_type(events[1]) is None

"""Registering instances through the form and the command, against the simulator over real HTTP."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.instances.models import Instance
from apps.instances.services import InstanceConnectionError, jwt_claims, register_instance

pytestmark = pytest.mark.django_db


def _form(**overrides) -> dict:
    data = {"name": "sim-one", "url": "", "token": "", "username": "", "password": "", "verify_tls": "on",
            "ca_bundle": "", "labels": "", "enabled": "on"}  # fmt: skip
    data.update(overrides)
    return data


def test_admin_registers_an_instance_with_a_token(admin_client, sim, portal_token):
    response = admin_client.post(
        "/instances/new/", _form(url=sim.url, token=portal_token, labels="env=test\nregion = eu")
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"] == "/instances/sim-one/"
    instance = Instance.objects.get(name="sim-one")
    assert instance.token == portal_token
    assert instance.password == ""
    assert instance.username == "portal"
    assert instance.labels == {"env": "test", "region": "eu"}
    assert instance.version.startswith("v")
    assert instance.last_seen is not None and instance.last_error == ""
    assert instance.token_id == jwt_claims(portal_token)["jti"]
    event = AuditEvent.objects.exclude(outcome="started").get(kind="instance", action="create")
    assert (event.outcome, event.instance, event.actor) == ("succeeded", "sim-one", "root")
    assert event.after["credential"] == "api-key"
    assert portal_token not in json.dumps([event.request, event.before, event.after])


def test_username_and_password_are_exchanged_for_an_api_key_of_that_account(admin_client, sim):
    response = admin_client.post(
        "/instances/new/", _form(name="sim-key", url=sim.url, username="portal", password="portal-password")
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    instance = Instance.objects.get(name="sim-key")
    claims = jwt_claims(instance.token)
    assert claims["sub"] == "portal:apiKey"
    assert instance.token_id == claims["jti"]
    assert instance.password == "", "with an API key the password is not kept"
    assert instance.token_expires_at > timezone.now() + timedelta(days=settings.PORTAL_TOKEN_LIFETIME_DAYS - 1)
    assert any(t["id"] == instance.token_id for t in sim.state.accounts["portal"].tokens)
    event = AuditEvent.objects.exclude(outcome="started").get(kind="instance", action="create", instance="sim-key")
    assert event.request["credential"] == "api-key" and "password" not in event.request


def test_the_page_says_how_long_the_login_session_used_for_the_key_exchange_stays_valid(admin_client, sim):
    # Argo CD's API cannot end a login session (DELETE /api/v1/session only clears a cookie), so the
    # portal does not pretend it did: it says until when that session stays valid.
    response = admin_client.post(
        "/instances/new/",
        _form(name="sim-exchange", url=sim.url, username="portal", password="portal-password"),
        follow=True,
    )
    page = response.content.decode()
    assert "The login session used to create the API key stays valid in sim-exchange until" in page
    event = AuditEvent.objects.exclude(outcome="started").get(kind="instance", action="create", instance="sim-exchange")
    until = datetime.fromisoformat(event.request["login_session_valid_until"])
    assert timezone.now() + timedelta(hours=23) < until <= timezone.now() + timedelta(hours=24, minutes=1)
    assert f"{until:%Y-%m-%d %H:%M} UTC" in page
    form = admin_client.get("/instances/new/").content.decode()
    assert "stays valid until it expires" in form


def test_an_account_without_api_key_capability_keeps_a_session_and_its_password(admin_client, sim):
    response = admin_client.post(
        "/instances/new/", _form(name="sim-alice", url=sim.url, username="alice", password="alice-password")
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    instance = Instance.objects.get(name="sim-alice")
    assert jwt_claims(instance.token)["sub"] == "alice:login"
    assert instance.password == "alice-password"
    assert instance.token_expires_at is not None
    with instance.client() as client:
        assert client.userinfo()["username"] == "alice"
    page = admin_client.get("/instances/sim-alice/").content.decode()
    assert "session, renewed by logging in as alice" in page


def test_a_wrong_password_is_shown_and_nothing_is_saved(admin_client, sim):
    response = admin_client.post(
        "/instances/new/", _form(name="sim-bad", url=sim.url, username="portal", password="wrong-password")
    )
    assert response.status_code == 200
    assert "Invalid username or password" in response.content.decode()
    assert not Instance.objects.filter(name="sim-bad").exists()
    event = AuditEvent.objects.exclude(outcome="started").get(kind="instance", instance="sim-bad")
    assert (event.action, event.outcome) == ("create", "failed")
    assert "wrong-password" not in json.dumps([event.request, event.error])


def test_a_token_argo_cd_does_not_accept_is_refused(admin_client, sim):
    response = admin_client.post("/instances/new/", _form(name="sim-bad", url=sim.url, token="not-a-token"))
    assert response.status_code == 200
    assert "did not accept the token" in response.content.decode()
    assert not Instance.objects.filter(name="sim-bad").exists()


def test_an_instance_that_does_not_answer_is_refused_with_a_clear_message(admin_client, free_port):
    url = f"http://127.0.0.1:{free_port}"
    response = admin_client.post("/instances/new/", _form(name="sim-down", url=url, token="x.y.z"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "sim-down:" in page and "refused" in page.lower()
    assert not Instance.objects.filter(name="sim-down").exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"token": ""}, "Give an API token, or a username and a password."),
        ({"token": "t", "username": "portal", "password": "p"}, "not both"),
        ({"name": "Not_Valid"}, "Use lower-case letters"),
        ({"url": "not a url"}, "Enter a valid URL"),
        ({"url": "ftp://argocd.example.com"}, "Enter a valid URL"),
        ({"url": "https://user:pw@argocd.example.com"}, "without credentials"),
        ({"url": "https://argocd.example.com:99999"}, "Enter a valid URL"),
        ({"labels": "env"}, "Line 1 is not key=value"),
        ({"labels": "{not json"}, "Labels are not valid JSON"),
        ({"labels": '{"a": ' * 100_000 + "1" + "}" * 100_000}, "nests deeper than 100 levels"),
        ({"ca_bundle": "hello"}, "BEGIN CERTIFICATE"),
    ],
)
def test_bad_input_is_explained_and_nothing_is_called_or_saved(admin_client, sim, overrides, message):
    data = _form(name="sim-x", url=sim.url, token="some-token")
    data.update(overrides)
    response = admin_client.post("/instances/new/", data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Instance.objects.exists()
    assert not AuditEvent.objects.filter(kind="instance").exists()


def test_labels_may_be_given_as_json(admin_client, sim, portal_token):
    admin_client.post("/instances/new/", _form(url=sim.url, token=portal_token, labels='{"env": "prod", "tier": 1}'))
    assert Instance.objects.get(name="sim-one").labels == {"env": "prod", "tier": "1"}


def test_a_second_instance_with_the_same_name_is_refused(admin_client, sim, registered, portal_token):
    response = admin_client.post("/instances/new/", _form(name="sim-reg", url=sim.url, token=portal_token))
    assert "already registered" in response.content.decode()


def test_register_instance_is_idempotent_by_name(sim):
    first = register_instance(name="sim-idem", url=sim.url, username="portal", password="portal-password")
    second = register_instance(
        name="sim-idem", url=sim.url, username="portal", password="portal-password", labels={"a": "b"}
    )
    assert first.pk == second.pk
    key_ids = {t["id"] for t in sim.state.accounts["portal"].tokens}
    assert second.token_id in key_ids and first.token_id not in key_ids, "the replaced key is revoked"
    assert Instance.objects.get(name="sim-idem").labels == {"a": "b"}
    actions = list(
        AuditEvent.objects.exclude(outcome="started")
        .filter(instance="sim-idem")
        .order_by("id")
        .values_list("action", "actor")
    )
    assert actions == [("create", "system"), ("update", "system"), ("revoke-replaced-key", "system")]


def test_register_instance_raises_a_clear_error_when_it_cannot_connect(free_port):
    with pytest.raises(InstanceConnectionError, match="refused"):
        register_instance(name="sim-gone", url=f"http://127.0.0.1:{free_port}", token="t")
    assert not Instance.objects.exists()


def test_add_instance_command_with_a_token(sim, portal_token, capsys):
    call_command("add_instance", "sim-cmd", sim.url, "--token", portal_token, "--insecure", "--label", "env=ci")
    instance = Instance.objects.get(name="sim-cmd")
    assert instance.token == portal_token
    assert instance.verify_tls is False
    assert instance.labels == {"env": "ci"}
    out = capsys.readouterr().out
    assert "Registered sim-cmd" in out and portal_token not in out


def test_add_instance_command_with_username_and_password(sim):
    call_command("add_instance", "sim-cmd2", sim.url, "--username", "portal", "--password", "portal-password")
    assert jwt_claims(Instance.objects.get(name="sim-cmd2").token)["sub"] == "portal:apiKey"


def test_add_instance_command_fails_clearly(sim, free_port):
    with pytest.raises(CommandError, match="Invalid username or password"):
        call_command("add_instance", "sim-cmd3", sim.url, "--username", "portal", "--password", "nope")
    with pytest.raises(CommandError, match="--username needs --password"):
        call_command("add_instance", "sim-cmd3", sim.url, "--username", "portal")
    with pytest.raises(CommandError, match="refused"):
        call_command("add_instance", "sim-cmd3", f"http://127.0.0.1:{free_port}", "--token", "t")
    assert not Instance.objects.filter(name="sim-cmd3").exists()


def test_the_periodic_check_updates_every_enabled_instance(sim, portal_token, free_port):
    from apps.instances.tasks import check_instances

    up = Instance.objects.create(name="sim-up", url=sim.url, token=portal_token)
    down = Instance.objects.create(name="sim-down", url=f"http://127.0.0.1:{free_port}", token="x.y.z")
    off = Instance.objects.create(name="sim-off", url=sim.url, token=portal_token, enabled=False)
    assert check_instances() == 1
    up.refresh_from_db(), down.refresh_from_db(), off.refresh_from_db()
    assert up.last_seen and up.version and not up.last_error
    assert down.last_seen is None and "refused" in down.last_error.lower()
    assert off.last_seen is None and off.last_error == ""


def test_single_label_host_names_are_valid_urls(admin_client, sim, portal_token):
    url = sim.url.replace("127.0.0.1", "localhost")
    from apps.instances.models import validate_instance_url

    validate_instance_url("https://argocd-server")
    validate_instance_url("http://sim-1:8081/argocd")
    response = admin_client.post("/instances/new/", _form(name="sim-local", url=url, token=portal_token))
    assert response.status_code == 302


def test_tls_is_verified_against_the_given_ca_bundle(admin_client, tls_sim):
    server, pem = tls_sim
    token = server.portal_token()
    refused = admin_client.post("/instances/new/", _form(name="sim-tls", url=server.tls_url, token=token))
    assert "certificate" in refused.content.decode().lower()
    assert not Instance.objects.filter(name="sim-tls").exists()
    response = admin_client.post(
        "/instances/new/", _form(name="sim-tls", url=server.tls_url, token=token, ca_bundle=pem)
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    instance = Instance.objects.get(name="sim-tls")
    assert instance.ca_bundle.startswith("-----BEGIN CERTIFICATE-----") and instance.verify_tls
    page = admin_client.post("/instances/sim-tls/", {"test": "1"}, HTTP_HX_REQUEST="true").content.decode()
    assert "Connected to Argo CD" in page
    assert "verified against its own CA bundle" in admin_client.get("/instances/sim-tls/").content.decode()


@pytest.mark.filterwarnings("ignore:Unverified HTTPS request")  # exactly what this test asks for
def test_tls_verification_can_be_switched_off(admin_client, tls_sim):
    server, _ = tls_sim
    data = _form(name="sim-insecure", url=server.tls_url, token=server.portal_token())
    del data["verify_tls"]
    assert admin_client.post("/instances/new/", data).status_code == 302
    instance = Instance.objects.get(name="sim-insecure")
    assert instance.verify_tls is False
    assert "not verified" in admin_client.get("/instances/sim-insecure/").content.decode()


def test_revoking_the_replaced_key_is_audited_before_argo_cd_is_called(sim, monkeypatch):
    from apps.argocd import ArgoCDClient

    first = register_instance(name="sim-revoke", url=sim.url, username="portal", password="portal-password")
    seen_at_call: list[list[str]] = []
    real_delete = ArgoCDClient.delete_account_token

    def delete_and_look(self, name, token_id):
        seen_at_call.append(
            list(AuditEvent.objects.filter(action="revoke-replaced-key").values_list("outcome", flat=True))
        )
        return real_delete(self, name, token_id)

    monkeypatch.setattr(ArgoCDClient, "delete_account_token", delete_and_look)
    register_instance(name="sim-revoke", url=sim.url, username="portal", password="portal-password")
    assert seen_at_call == [["started"]], "the intent is committed before the key is deleted"
    intent, outcome = AuditEvent.objects.filter(action="revoke-replaced-key").order_by("id")
    assert (intent.outcome, outcome.outcome, outcome.intent_id) == ("started", "succeeded", intent.pk)
    assert (outcome.instance, outcome.kind, outcome.actor) == ("sim-revoke", "instance", "system")
    assert intent.request["key_id"] == first.token_id and intent.request["account"] == "portal"
    assert first.token_id not in {t["id"] for t in sim.state.accounts["portal"].tokens}


def test_a_replaced_key_argo_cd_refuses_to_revoke_is_audited_as_failed(sim):
    first = register_instance(name="sim-revoke-2", url=sim.url, username="portal", password="portal-password")
    sim.state.accounts["portal"].tokens = [t for t in sim.state.accounts["portal"].tokens if t["id"] != first.token_id]
    register_instance(name="sim-revoke-2", url=sim.url, username="portal", password="portal-password")
    outcome = AuditEvent.objects.exclude(outcome="started").get(action="revoke-replaced-key", instance="sim-revoke-2")
    assert outcome.outcome == "failed" and first.token_id in outcome.error and "sim-revoke-2" in outcome.error

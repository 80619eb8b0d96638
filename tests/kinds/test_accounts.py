"""Accounts: tokens shown once, token delete, password change (current password required), can-i."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.instances.models import Instance

from .conftest import events, shown_token

pytestmark = pytest.mark.django_db
HX = {"HX-Request": "true"}


def test_account_detail_lists_tokens_with_issue_and_expiry(admin_client, argo, sim):
    sim.portal_token(expires_in=3600, token_id="listed-token")
    body = admin_client.get("/kinds/accounts/sim-k/portal/").content.decode()
    assert "listed-token" in body and "UTC" in body and "apiKey" in body


def test_generated_token_is_shown_once_and_not_audited(admin_client, argo, sim, unique):
    r = admin_client.post(
        "/kinds/accounts/sim-k/portal/",
        {"create-token": "1", "token_id": f"gen-{unique}", "expires_in": "600"},
        headers=HX,
    )
    body = r.content.decode()
    assert r.status_code == 200 and "<html" not in body and "copy it now" in body
    token = shown_token(body)
    assert any(t["id"] == f"gen-{unique}" for t in sim.state.accounts["portal"].tokens)
    assert token not in admin_client.get("/kinds/accounts/sim-k/portal/").content.decode()
    event = events(kind="account", action="create-token")[-1]
    assert event.outcome == AuditEvent.Outcome.SUCCEEDED and event.request["id"] == f"gen-{unique}"
    assert all(token not in str((e.request, e.before, e.after, e.error)) for e in AuditEvent.objects.all())
    r = admin_client.post("/kinds/accounts/sim-k/portal/", {"delete-token": "1", "token_id": f"gen-{unique}"})
    assert r.status_code == 302
    assert not any(t["id"] == f"gen-{unique}" for t in sim.state.accounts["portal"].tokens)
    assert events(kind="account", action="delete-token")[-1].outcome == AuditEvent.Outcome.SUCCEEDED


@pytest.fixture
def private_sim(db):
    """A simulator of its own: changing a password must not disturb the session-wide one."""
    from apps.simulator.server import SimServer

    server = SimServer(port=0, name="sim-pw", apps=2, projects=1, seed=3).start()
    Instance.objects.create(name="sim-k", url=server.url, token=server.portal_token())
    yield server
    server.stop()


def test_password_change_needs_the_current_password(admin_client, private_sim):
    sim = private_sim
    url = "/kinds/accounts/sim-k/alice/"
    new = {"new_password": "Alice-new-passw0rd", "new_password_again": "Alice-new-passw0rd"}
    missing = admin_client.post(url, {"password": "1", **new}, headers=HX).content.decode()
    assert "Enter the current password" in missing
    wrong = admin_client.post(url, {"password": "1", "current_password": "wrong", **new}, headers=HX).content.decode()
    assert "current password does not match" in wrong and sim.state.accounts["alice"].password == "alice-password"
    mismatch = admin_client.post(
        url, {"password": "1", "current_password": "portal-password", "new_password": "a", "new_password_again": "b"}
    )
    assert "differ" in mismatch.content.decode()
    ok = admin_client.post(url, {"password": "1", "current_password": "portal-password", **new})
    assert ok.status_code == 302 and sim.state.accounts["alice"].password == "Alice-new-passw0rd"
    recorded = events(kind="account", action="change-password")
    assert [e.outcome for e in recorded] == [AuditEvent.Outcome.FAILED, AuditEvent.Outcome.SUCCEEDED]
    assert all("Alice-new-passw0rd" not in str((e.request, e.after)) for e in recorded)


def test_can_i_answers_yes_or_no(admin_client, argo):
    url = "/kinds/accounts/sim-k/portal/"
    yes = admin_client.post(
        url, {"can-i": "1", "resource": "projects", "verb": "get", "subresource": "default"}, headers=HX
    )
    assert ">yes</strong>" in yes.content.decode()
    slash = admin_client.post(
        url, {"can-i": "1", "resource": "applications", "verb": "get", "subresource": "a/b"}, headers=HX
    )
    assert "cannot check an object containing" in slash.content.decode()
    bad = admin_client.post(url, {"can-i": "1", "resource": "widgets", "verb": "get", "subresource": "*"}, headers=HX)
    assert "unsupported resource" in bad.content.decode()


def test_viewer_may_ask_can_i_but_not_make_tokens(client, alice, grant, argo, sim):
    grant(alice, ["view"])
    client.force_login(alice)
    page = client.get("/kinds/accounts/sim-k/portal/").content.decode()
    assert "What may the portal's own account on sim-k do?" in page and "Generate a token" not in page
    r = client.post("/kinds/accounts/sim-k/portal/", {"create-token": "1", "token_id": "sneaky"})
    assert r.status_code == 403
    assert not any(t["id"] == "sneaky" for t in sim.state.accounts["portal"].tokens)
    assert events(outcome=AuditEvent.Outcome.DENIED, kind="account", action="admin", actor="alice")


def test_the_portals_own_token_cannot_be_deleted_from_the_accounts_page(admin_client, argo, sim):
    from apps.kinds.rotations import claims

    own = claims(argo.token)["jti"]
    page = admin_client.get("/kinds/accounts/sim-k/portal/").content.decode()
    assert "used by the portal" in page
    r = admin_client.post("/kinds/accounts/sim-k/portal/", {"delete-token": "1", "token_id": own}, headers=HX)
    assert "lock the portal out" in r.content.decode()
    assert own in [t["id"] for t in sim.state.accounts["portal"].tokens]


def test_an_account_without_api_key_is_offered_no_token_and_argocd_is_not_asked(admin_client, argo, sim):
    page = admin_client.get("/kinds/accounts/sim-k/alice/").content.decode()
    assert "Generate a token" not in page and "lacks the apiKey capability" in page
    assert "Generate a token" in admin_client.get("/kinds/accounts/sim-k/portal/").content.decode()
    r = admin_client.post("/kinds/accounts/sim-k/alice/", {"create-token": "1", "token_id": "nope"}, headers=HX)
    assert "Account alice on sim-k lacks the apiKey capability" in r.content.decode()
    assert not sim.state.accounts["alice"].tokens and not events(kind="account", action="create-token")


@pytest.mark.parametrize("expires_in", ["-5", "soon"])
def test_a_negative_or_unreadable_token_expiry_is_refused(admin_client, argo, sim, unique, expires_in):
    data = {"create-token": "1", "token_id": f"neg-{unique}", "expires_in": expires_in}
    r = admin_client.post("/kinds/accounts/sim-k/portal/", data, headers=HX)
    assert "0 (never expires) or a positive number of seconds" in r.content.decode()
    assert not any(t["id"] == f"neg-{unique}" for t in sim.state.accounts["portal"].tokens)
    assert not events(kind="account", action="create-token")


def test_the_permission_checker_says_it_answers_for_the_portals_account(admin_client, argo):
    page = admin_client.get("/kinds/accounts/sim-k/alice/").content.decode()
    assert "What may the portal's own account on sim-k do?" in page
    assert "answers for the account the portal signs in with on sim-k, not for alice" in page
    assert "Can I" not in page

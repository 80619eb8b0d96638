"""Constraints on grants in the application pages: the sync form explains them, the sync view enforces them,
autosync and refresh are granted on their own."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.operations.models import Operation

from .test_operations import sync_form

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def u(view, instance, name):
    return reverse(f"applications:{view}", args=[instance.name, name])


@pytest.fixture
def member(client, alice):
    client.force_login(alice)
    return client


def test_member_sync_with_a_forbidden_prune_is_refused_naming_the_constraint_and_audited(
    member, alice, grant, instance, fresh_app
):
    g = grant(alice, ["sync"], project="payments")
    g.constraints = {"prune": False}
    g.save()
    name = fresh_app()

    response = member.post(u("sync", instance, name), sync_form(prune="on"), **HX)

    assert response.status_code == 403
    assert "prune is not allowed" in response.content.decode()
    assert not Operation.objects.exists()
    event = AuditEvent.objects.get(action="sync", outcome="denied")
    assert (event.actor, event.instance, event.name) == ("alice", instance.name, name)
    assert "refused by constraint prune" in event.error
    assert event.request["prune"] is True


def test_member_sync_within_the_constraints_starts_the_operation(member, alice, grant, instance, fresh_app):
    g = grant(alice, ["sync"], project="payments")
    g.constraints = {"prune": False, "revision": "own", "replace": False}
    g.save()
    name = fresh_app()

    response = member.post(u("sync", instance, name), sync_form(sync_options=["CreateNamespace=true"]), **HX)

    assert response.status_code == 200
    op = Operation.objects.get()
    assert (op.kind, op.target, op.params["prune"]) == ("sync", name, False)


@pytest.mark.parametrize(
    ("constraints", "extra", "named"),
    [
        ({"revision": "own"}, {"revision": "some-branch"}, "revision"),
        ({"revision": "globs", "revision_globs": ["release-*"]}, {"revision": "main-hotfix"}, "revision"),
        ({"force": False}, {"force": "on", "strategy": "apply"}, "force"),
        ({"replace": False}, {"sync_options": ["Replace=true"]}, "replace"),
        ({"server_side_apply": False}, {"sync_options": ["ServerSideApply=true"]}, "server_side_apply"),
        ({"partial": False}, {"resources": ["apps/Deployment/payments-dev/api"]}, "partial"),
        ({"dry_run_only": True}, {}, "dry_run_only"),
    ],
)
def test_a_hand_made_post_past_the_disabled_options_is_refused_by_the_server(
    member, alice, grant, instance, fresh_app, constraints, extra, named
):
    g = grant(alice, ["sync"], project="payments")
    g.constraints = constraints
    g.save()
    name = fresh_app()

    response = member.post(u("sync", instance, name), sync_form(**extra))

    assert response.status_code == 403
    assert not Operation.objects.exists()
    assert f"refused by constraint {named}" in AuditEvent.objects.get(outcome="denied").error


def test_revision_glob_lets_the_member_sync_a_release_tag(member, alice, grant, instance, fresh_app):
    g = grant(alice, ["sync"], project="payments")
    g.constraints = {"revision": "globs", "revision_globs": ["release-*"]}
    g.save()
    name = fresh_app()
    response = member.post(u("sync", instance, name), sync_form(revision="release-7"), **HX)
    assert response.status_code == 200
    assert Operation.objects.get().params["revision"] == "release-7"


def _disabled(html: str, field_name: str, value: str = "") -> bool:
    for tag in re.findall(r"<input[^>]*>", html):
        if f'name="{field_name}"' in tag and (not value or f'value="{value}"' in tag):
            return " disabled" in tag
    raise AssertionError(f"no input {field_name} {value}")


def test_sync_form_disables_what_the_members_grant_does_not_allow_with_the_reason(
    member, alice, grant, instance, fresh_app
):
    g = grant(alice, ["sync"], project="payments")
    g.constraints = {"prune": False, "replace": False, "dry_run_only": True, "revision": "own"}
    g.save()
    name = fresh_app()

    html = member.get(u("sync", instance, name)).content.decode()

    assert _disabled(html, "prune") and _disabled(html, "dry_run")
    assert _disabled(html, "sync_options", "Replace=true")
    assert not _disabled(html, "force") and not _disabled(html, "sync_options", "ServerSideApply=true")
    assert "Your grants limit this sync" in html
    assert "prune is not allowed" in html and "only dry runs are allowed" in html
    assert "only the app&#x27;s own target revision" in html
    # The dry-run box is closed ticked, and a hidden input sends it: the form as shown submits a dry run.
    assert re.search(r'<input type="checkbox" name="dry_run"[^>]*checked', html)
    assert '<input type="hidden" name="dry_run" value="on">' in html
    response = member.post(u("sync", instance, name), sync_form(dry_run="on"), **HX)
    assert response.status_code == 200
    assert Operation.objects.get().params["dryRun"] is True


def test_the_detail_pages_sync_dialog_shows_the_same_limits(member, alice, grant, instance, fresh_app):
    g = grant(alice, ["sync"], project="payments")
    g.constraints = {"force": False}
    g.save()
    html = member.get(u("detail", instance, fresh_app())).content.decode()
    assert _disabled(html, "force") and "force is not allowed" in html


def test_without_constraints_nothing_is_disabled(member, alice, grant, instance, fresh_app):
    grant(alice, ["sync"], project="payments")
    html = member.get(u("sync", instance, fresh_app())).content.decode()
    assert not _disabled(html, "prune") and "Your grants limit this sync" not in html


# ---------------------------------------------------------------- autosync and refresh


def test_member_with_autosync_turns_automated_sync_on_with_self_heal_audited(
    member, alice, grant, instance, fresh_app, argocd
):
    grant(alice, ["autosync"], project="payments")
    name = fresh_app()
    html = member.get(u("detail", instance, name)).content.decode()
    assert "Set sync policy" in html

    response = member.post(u("autosync", instance, name), {"automated": "on", "self_heal": "on"})

    assert response.status_code == 302
    assert argocd.get_application(name)["spec"]["syncPolicy"]["automated"] == {"prune": False, "selfHeal": True}
    event = AuditEvent.objects.get(action="autosync", outcome="succeeded")
    assert event.actor == "alice" and event.name == name

    member.post(u("autosync", instance, name), {})
    assert not (argocd.get_application(name)["spec"].get("syncPolicy") or {}).get("automated")


def test_autosync_with_prune_under_a_no_prune_grant_is_refused_and_changes_nothing(
    member, alice, grant, instance, fresh_app, argocd
):
    g = grant(alice, ["autosync"], project="payments")
    g.constraints = {"prune": False}
    g.save()
    name = fresh_app()
    response = member.post(u("autosync", instance, name), {"automated": "on", "prune": "on"})
    assert response.status_code == 403
    assert not (argocd.get_application(name)["spec"].get("syncPolicy") or {}).get("automated")
    assert "refused by constraint prune" in AuditEvent.objects.get(action="autosync", outcome="denied").error


def test_sync_alone_does_not_allow_autosync_or_refresh(member, alice, grant, instance, fresh_app, argocd):
    grant(alice, ["sync"], project="payments")
    name = fresh_app()
    html = member.get(u("detail", instance, name)).content.decode()
    assert "Set sync policy" not in html and "Hard refresh" not in html

    assert member.post(u("autosync", instance, name), {"automated": "on"}).status_code == 403
    assert not (argocd.get_application(name)["spec"].get("syncPolicy") or {}).get("automated")
    assert member.post(u("refresh", instance, name), {"mode": "hard"}).status_code == 403
    assert AuditEvent.objects.filter(action="refresh", outcome="denied", actor="alice").exists()


def test_refresh_grant_allows_refresh(member, alice, grant, instance, fresh_app):
    grant(alice, ["refresh"], project="payments")
    name = fresh_app()
    assert "Hard refresh" in member.get(u("detail", instance, name)).content.decode()
    response = member.post(u("refresh", instance, name), {"mode": "normal"}, follow=True)
    assert f"Argo CD has refreshed {name}." in response.content.decode()


def test_an_existing_edit_grant_keeps_autosync_and_refresh(member, alice, grant, instance, fresh_app, argocd):
    grant(alice, ["edit"], project="payments")
    name = fresh_app()
    assert member.post(u("refresh", instance, name), {"mode": "normal"}).status_code == 302
    assert member.post(u("autosync", instance, name), {"automated": "on", "prune": "on"}).status_code == 302
    assert argocd.get_application(name)["spec"]["syncPolicy"]["automated"]["prune"] is True


def test_rollback_with_prune_under_a_no_prune_grant_is_refused_and_without_prune_starts(
    member, alice, grant, instance, seed_apps
):
    app = next(
        a
        for a in seed_apps.values()
        if a["status"].get("history") and not (a["spec"].get("syncPolicy") or {}).get("automated")
    )
    g = grant(alice, ["rollback"], project=app["spec"]["project"])
    g.constraints = {"prune": False}
    g.save()
    name, entry = app["metadata"]["name"], app["status"]["history"][0]

    refused = member.post(u("rollback", instance, name), {"id": str(entry["id"]), "prune": "on", "nonce": "c" * 32})
    assert refused.status_code == 403 and not Operation.objects.exists()
    assert "refused by constraint prune" in AuditEvent.objects.get(action="rollback", outcome="denied").error

    allowed = member.post(u("rollback", instance, name), {"id": str(entry["id"]), "nonce": "d" * 32})
    assert allowed.status_code == 302 and Operation.objects.get().kind == "rollback"

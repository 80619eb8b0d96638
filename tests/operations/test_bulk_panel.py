"""The bulk panel: options, a confirmation naming apps, instances and refusals (changing nothing), then the act,
decided per app (grants, constraints, windows) with every refusal audited."""

from __future__ import annotations

import pytest
from django.utils import timezone

from apps.access.models import Grant
from apps.audit.models import AuditEvent
from apps.index.models import ApplicationSummary
from apps.instances.models import Instance
from apps.operations.models import Operation
from apps.operations.services import new_nonce
from apps.teams.models import Membership, Team

pytestmark = pytest.mark.django_db
PANEL = "/operations/bulk/"
APPS = ["prod/payments-api", "prod/payments-web", "stage/search-api"]


@pytest.fixture
def indexed(db):
    now = timezone.now()
    for inst, project, name in [("prod", "payments", "payments-api"), ("prod", "payments", "payments-web"),
                                ("stage", "search", "search-api")]:  # fmt: skip
        instance, _ = Instance.objects.get_or_create(name=inst, defaults={"url": "http://127.0.0.1:9", "token": "t"})
        ApplicationSummary.objects.create(instance=instance, project=project, name=name, seen_at=now)


def grant(user, *, actions, project, constraints=None) -> None:
    team, _ = Team.objects.get_or_create(name=project, slug=project)
    Membership.objects.get_or_create(team=team, user=user)
    Grant.objects.create(team=team, instance_glob="*", project_glob=project, app_glob="*", actions=actions,
                         constraints=constraints or {})  # fmt: skip


def test_the_panel_from_the_list_offers_the_options_for_the_selection_and_changes_nothing(client, alice, indexed):
    grant(alice, actions=["sync"], project="payments")
    client.force_login(alice)
    body = client.post(PANEL, {"app": APPS, "panel": "1"}).content.decode()
    for spec in APPS:
        assert f'<input type="hidden" name="app" value="{spec}">' in body
    for label in ("Prune", "Dry run", "Apply only", "Force", "Hard refresh"):
        assert label in body
    assert 'name="review"' in body
    assert not Operation.objects.exists() and not AuditEvent.objects.exclude(action="login").exists()


def test_the_confirmation_names_apps_and_instances_and_why_others_are_refused_without_acting(client, alice, indexed):
    grant(alice, actions=["sync"], project="payments", constraints={"force": False})
    grant(alice, actions=["sync"], project="search")
    client.force_login(alice)
    form = {"app": APPS, "action": "sync", "force": "on", "prune": "on", "review": "1", "nonce": new_nonce()}
    body = client.post(PANEL, form).content.decode()
    assert "Confirm: Sync 1 application on 1 instance with prune, force" in body
    assert '<li data-instance="stage"><strong>stage</strong>: <code>search-api</code></li>' in body
    assert "<code>prod/payments-api</code> — force is not allowed" in body
    assert "<code>prod/payments-web</code> — force is not allowed" in body
    assert 'name="confirm"' in body and f'value="{form["nonce"]}"' in body
    assert not Operation.objects.exists() and not AuditEvent.objects.exclude(action="login").exists()


def test_confirming_syncs_the_permitted_apps_with_the_options_and_audits_the_refused(client, alice, indexed):
    grant(alice, actions=["sync"], project="payments", constraints={"force": False})
    grant(alice, actions=["sync"], project="search")
    client.force_login(alice)
    form = {"app": APPS, "action": "sync", "force": "on", "apply_only": "on", "confirm": "1", "nonce": new_nonce()}
    response = client.post(PANEL, form)
    assert response.status_code == 200
    parent = Operation.objects.get(kind="bulk_sync")
    assert parent.params["force"] is True and parent.params["strategy"] == "apply" and parent.params["prune"] is False
    assert [(c.instance_name, c.target) for c in parent.children.all()] == [("stage", "search-api")]
    assert f'id="op-{parent.pk}"' in response.content.decode()
    denied = AuditEvent.objects.filter(outcome="denied", action="sync", actor="alice")
    assert sorted(denied.values_list("name", flat=True)) == ["payments-api", "payments-web"]
    assert all("force" in e.error for e in denied)

    client.post(PANEL, form)  # the same confirmation sent twice: one bulk sync
    assert Operation.objects.filter(kind="bulk_sync").count() == 1
    client.post(PANEL, {**form, "apply_only": ""})  # other options, same page: another one
    assert Operation.objects.filter(kind="bulk_sync").count() == 2


def test_nobody_syncs_what_they_may_not_and_nothing_starts(client, alice, indexed):
    grant(alice, actions=["view"], project="payments")
    client.force_login(alice)
    response = client.post(PANEL, {"app": APPS[:2], "action": "sync", "confirm": "1", "nonce": new_nonce()})
    assert response.status_code == 403 and "you may not sync it" in response.content.decode()
    assert not Operation.objects.exists()
    assert AuditEvent.objects.filter(outcome="denied", action="sync").count() == 2


def test_an_empty_selection_or_a_get_is_refused(client, alice, indexed):
    client.force_login(alice)
    assert client.post(PANEL, {"panel": "1"}).status_code == 400
    assert client.get(PANEL).status_code == 405


def test_bulk_hard_refresh_asks_argo_cd_per_app_and_audits_each(client, alice, sim):
    instance = Instance.objects.create(name=sim.name, url=sim.url, token=sim.portal_token(), verify_tls=False)
    names = sorted(name for (_ns, name), rec in sim.state.apps.items() if rec.obj["spec"]["project"] == "payments")
    now = timezone.now()
    for name in [*names[:2], "gone-from-argocd"]:
        ApplicationSummary.objects.create(instance=instance, project="payments", name=name, namespace="argocd",
                                          seen_at=now)  # fmt: skip
    ApplicationSummary.objects.create(instance=instance, project="search", name="search-x", seen_at=now)
    grant(alice, actions=["view", "refresh"], project="payments")
    grant(alice, actions=["view"], project="search")
    client.force_login(alice)
    specs = [f"{sim.name}/{n}" for n in [*names[:2], "gone-from-argocd", "search-x"]]
    body = client.post(PANEL, {"app": specs, "action": "hard-refresh", "confirm": "1"}).content.decode()
    assert "Hard refresh 3 applications on 1 instance" in body
    assert body.count('<span class="badge Succeeded">refreshed</span>') == 2
    assert "search-x</code> — you may not refresh it" in body
    done = AuditEvent.objects.filter(action="refresh", outcome="succeeded")
    assert sorted(done.values_list("name", flat=True)) == names[:2]
    assert all(e.request["refresh"] == "hard" for e in done)
    assert AuditEvent.objects.get(action="refresh", outcome="failed").name == "gone-from-argocd"
    assert AuditEvent.objects.get(action="refresh", outcome="denied").name == "search-x"

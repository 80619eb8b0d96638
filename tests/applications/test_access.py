"""Who may see and do what on the application pages; denials are audited."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.operations.models import Operation

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def u(view, instance, name):
    return reverse(f"applications:{view}", args=[instance.name, name])


def test_alice_with_only_view_sees_the_app_but_cannot_sync_it(client, alice, grant, instance):
    grant(alice, ["view"], project="payments")
    client.force_login(alice)
    page = client.get(u("detail", instance, "payments-api-dev")).content.decode()
    assert 'id="sync-dialog"' not in page and 'id="delete-dialog"' not in page and "?tab=logs" not in page
    response = client.post(u("sync", instance, "payments-api-dev"), {"nonce": "e" * 32, "strategy": "hook"})
    assert response.status_code == 403
    assert not Operation.objects.exists()
    event = AuditEvent.objects.get(action="sync")
    assert (event.outcome, event.actor, event.name, event.project) == (
        "denied",
        "alice",
        "payments-api-dev",
        "payments",
    )


def test_view_only_cannot_read_logs_or_run_actions(client, alice, grant, instance):
    grant(alice, ["view"], project="payments")
    client.force_login(alice)
    assert client.get(u("detail", instance, "payments-api-dev") + "?tab=logs", **HX).status_code == 403
    assert client.get(u("log_stream", instance, "payments-api-dev")).status_code == 403
    data = {"version": "v1", "kind": "Deployment", "group": "apps", "resource_name": "api", "action": "restart"}
    assert client.post(u("resource", instance, "payments-api-dev"), {**data, "run_action": ""}).status_code == 403
    assert (
        client.post(u("delete", instance, "payments-api-dev"), {"confirm_name": "payments-api-dev"}).status_code == 403
    )


def test_bob_without_any_grant_gets_404(client, bob, instance):
    client.force_login(bob)
    assert client.get(u("detail", instance, "payments-api-dev")).status_code == 404
    assert client.post(u("sync", instance, "payments-api-dev"), {"nonce": "f" * 32}).status_code == 404
    assert client.get(reverse("applications:create") + f"?instance={instance.name}").status_code == 404


def test_a_grant_on_one_project_does_not_show_another(client, alice, grant, instance):
    grant(alice, ["view", "sync"], project="payments")
    client.force_login(alice)
    assert client.get(u("detail", instance, "checkout-api-dev")).status_code == 404
    assert AuditEvent.objects.get(name="checkout-api-dev").outcome == "denied"


def test_an_editor_cannot_move_an_app_into_a_project_they_cannot_edit(
    client, alice, grant, instance, fresh_app, argocd
):
    name = fresh_app()
    grant(alice, ["edit"], project="payments")
    grant(alice, ["view"], project="checkout")
    client.force_login(alice)
    patch = [{"op": "replace", "path": "/spec/project", "value": "checkout"}]
    response = client.post(
        u("edit", instance, name), {"patch_type": "json", "patch": json.dumps(patch), "apply_patch": ""}
    )
    assert response.status_code == 403
    assert argocd.get_application(name)["spec"]["project"] == "payments"


@pytest.mark.parametrize(
    "patch_type,patch",
    [
        ("json", [{"op": "remove", "path": "/spec/project"}]),
        (
            "json",
            [
                {"op": "replace", "path": "/spec/project", "value": "payments"},
                {"op": "replace", "path": "/spec/project", "value": "default"},
            ],
        ),
        ("json", [{"op": "copy", "from": "/metadata/namespace", "path": "/spec/project"}]),
        ("merge", {"spec": {"project": None}}),
    ],
)
def test_no_patch_moves_an_app_out_of_the_editors_projects(
    client, alice, grant, instance, fresh_app, argocd, patch_type, patch
):
    name = fresh_app()
    grant(alice, ["edit"], project="payments")
    client.force_login(alice)
    data = {"patch_type": patch_type, "patch": json.dumps(patch), "apply_patch": ""}
    assert client.post(u("edit", instance, name), data).status_code in (403, 404)
    assert argocd.get_application(name)["spec"]["project"] == "payments"


def test_an_empty_project_in_an_edit_counts_as_default(client, alice, grant, instance, fresh_app, argocd):
    name = fresh_app()
    grant(alice, ["edit"], project="payments")
    client.force_login(alice)
    spec = {**argocd.get_application(name)["spec"], "project": ""}
    document = json.dumps({"metadata": {"name": name, "namespace": "argocd"}, "spec": spec})
    response = client.post(u("edit", instance, name), {"format": "json", "document": document, "apply": ""})
    assert response.status_code in (403, 404)
    assert argocd.get_application(name)["spec"]["project"] == "payments"


def test_a_create_document_with_a_non_string_name_is_refused_not_a_500(client, alice, grant, instance):
    grant(alice, ["create"], project="payments")
    client.force_login(alice)
    doc = json.dumps({"metadata": {"name": 123}, "spec": {"project": ["payments"]}})
    new = reverse("applications:create") + f"?instance={instance.name}"
    response = client.post(new, {"instance": instance.name, "document": doc, "create_yaml": ""})
    assert response.status_code in (200, 400, 403, 404)


def test_create_needs_the_create_action_on_the_project(client, alice, grant, instance, seed_apps, argocd):
    grant(alice, ["view"], project="payments")
    client.force_login(alice)
    spec = next(a for a in seed_apps.values() if a["spec"]["project"] == "payments")["spec"]
    doc = json.dumps({"metadata": {"name": "alice-app", "namespace": "argocd"}, "spec": spec})
    new = reverse("applications:create") + f"?instance={instance.name}"
    response = client.post(new, {"instance": instance.name, "document": doc, "create_yaml": ""})
    assert response.status_code == 403
    assert AuditEvent.objects.get(action="create").outcome == "denied"


def test_the_create_form_offers_only_where_the_user_may_create(client, alice, grant, instance):
    grant(alice, ["sync"])
    client.force_login(alice)
    new = reverse("applications:create")
    assert "New application" not in client.get("/applications/").content.decode()
    assert instance.name not in client.get(new).content.decode()
    refused = client.get(f"{new}?instance={instance.name}")
    assert refused.status_code == 403 and "You may not create applications on" in refused.content.decode()

    grant(alice, ["create"], project="payments")
    alice.refresh_from_db()  # the grants are cached on the user object per request; a new request reloads them
    assert "New application" in client.get("/applications/").content.decode()
    assert f"<option>{instance.name}</option>" in client.get(new).content.decode()
    body = client.get(f"{new}?instance={instance.name}").content.decode()
    assert '<option value="payments">' in body
    assert '<option value="checkout">' not in body and '<option value="default">' not in body


def test_a_viewer_reads_the_spec_without_an_editor_and_an_editor_gets_the_forms(client, alice, grant, instance):
    grant(alice, ["view"], project="payments")
    client.force_login(alice)
    page = client.get(u("edit", instance, "payments-api-dev")).content.decode()
    assert "Spec of payments-api-dev" in page and '<pre class="spec">' in page and "repoURL" in page
    assert "<textarea" not in page and 'name="apply"' not in page and 'name="preview"' not in page

    grant(alice, ["edit"], project="payments")
    alice.refresh_from_db()
    page = client.get(u("edit", instance, "payments-api-dev")).content.decode()
    assert "Edit payments-api-dev" in page and "<textarea" in page and 'name="apply_patch"' in page


def test_a_probe_of_an_instance_without_a_grant_answers_404_and_is_audited(client, bob, instance):
    client.force_login(bob)
    assert client.get(u("detail", instance, "payments-api-dev")).status_code == 404
    assert client.get(reverse("applications:detail", args=["no-such-instance", "x"])).status_code == 404
    probes = AuditEvent.objects.filter(actor="bob", outcome="denied").order_by("id")
    assert [(e.instance, e.name, e.error) for e in probes] == [
        (instance.name, "payments-api-dev", "answered 404: no grant on this instance"),
        ("no-such-instance", "x", "answered 404: no enabled instance of that name"),
    ]
    assert probes[0].request["path"] == u("detail", instance, "payments-api-dev")


def test_asking_a_granted_instance_for_a_missing_app_is_audited(client, alice, grant, instance):
    grant(alice, ["view"], project="payments")
    client.force_login(alice)
    assert client.get(u("detail", instance, "no-such-app")).status_code == 404
    event = AuditEvent.objects.get(actor="alice", outcome="denied")
    assert (event.name, event.error) == ("no-such-app", "answered 404: no such application in Argo CD")


def test_a_probe_of_a_kind_on_an_unknown_instance_is_audited(client, bob, instance):
    client.force_login(bob)
    assert client.get("/kinds/projects/no-such-instance/default/").status_code == 404
    event = AuditEvent.objects.get(actor="bob", outcome="denied")
    assert (event.instance, event.kind, event.name) == ("no-such-instance", "project", "default")


def test_every_other_refusal_and_probe_is_audited_once(client, alice, bob, grant, instance):
    grant(alice, ["view"], project="payments")
    client.force_login(alice)
    assert client.get("/audit/999999999/").status_code == 404  # a guessed event id
    assert client.get("/instances/new/").status_code == 403  # a page for platform admins
    assert client.post(u("sync", instance, "payments-api-dev"), {"nonce": "a" * 32}).status_code == 403
    events = AuditEvent.objects.filter(actor="alice", outcome="denied").order_by("id")
    assert [(e.name, e.error) for e in events] == [
        ("/audit/999999999/", "answered 404: not found, or not visible"),
        ("/instances/new/", "answered 403: refused"),
        ("payments-api-dev", "not granted"),  # recorded by require() with what it knows, and only there
    ]

"""Create, edit (YAML/JSON, preview, JSON patch) and delete, each checked by reading the app back from Argo CD."""

from __future__ import annotations

import contextlib
import json
import uuid
from unittest.mock import ANY

import pytest
import yaml
from django.urls import reverse

from apps.argocd import errors
from apps.audit.models import AuditEvent

pytestmark = pytest.mark.django_db
NEW = reverse("applications:create")


def u(view, instance, name):
    return reverse(f"applications:{view}", args=[instance.name, name])


def model(seed_apps, project="payments"):
    return next(a for a in seed_apps.values() if a["spec"]["project"] == project)


def exists(argocd, name):
    try:
        argocd.get_application(name)
        return True
    except (errors.NotFound, errors.PermissionDenied):
        return False


@pytest.fixture
def cleanup(argocd):
    names = []
    yield names
    for name in names:
        with contextlib.suppress(errors.ArgoCDError):
            argocd.delete_application(name, cascade=False)


def test_create_form_lists_the_instances_projects(admin_client, instance):
    assert instance.name.encode() in admin_client.get(NEW).content
    body = admin_client.get(f"{NEW}?instance={instance.name}").content.decode()
    assert '<option value="payments">' in body and 'name="repo_url"' in body


def test_creating_an_app_from_the_form_creates_it_in_argocd(admin_client, instance, seed_apps, argocd, cleanup):
    src, dest = model(seed_apps)["spec"]["source"], model(seed_apps)["spec"]["destination"]
    name = f"new-{uuid.uuid4().hex[:6]}"
    cleanup.append(name)
    server = dest.get("server") or {c["name"]: c["server"] for c in argocd.list_clusters()}[dest["name"]]
    data = {
        "instance": instance.name,
        "name": name,
        "namespace": "argocd",
        "project": "payments",
        "labels": "team=payments\ntier=web",
        "repo_url": src["repoURL"],
        "path": src.get("path", ""),
        "target_revision": "HEAD",
        "source_type": "directory",
        "directory_recurse": "on",
        "dest_server": server,
        "dest_namespace": dest["namespace"],
        "sync_options": ["CreateNamespace=true"],
        "retry_limit": "3",
        "backoff_duration": "5s",
        "backoff_factor": "2",
        "backoff_max_duration": "3m",
        "revision_history_limit": "5",
        "ignore_differences": "- group: apps\n  kind: Deployment\n  jsonPointers: [/spec/replicas]\n",
        "create": "",
    }
    response = admin_client.post(f"{NEW}?instance={instance.name}", data)
    assert response.status_code == 302, response.content.decode()[-1500:]
    assert response["Location"] == u("detail", instance, name)
    app = argocd.get_application(name)
    assert app["metadata"]["labels"] == {"team": "payments", "tier": "web"}
    assert app["spec"]["source"]["directory"] == {"recurse": True}
    assert app["spec"]["syncPolicy"]["retry"]["limit"] == 3
    assert app["spec"]["ignoreDifferences"][0]["jsonPointers"] == ["/spec/replicas"]
    event = AuditEvent.objects.exclude(outcome="started").get(action="create", name=name)
    assert event.outcome == "succeeded" and event.after["spec"]["project"] == "payments"
    page = admin_client.get(response["Location"])  # a destination given by server, not by name
    assert page.status_code == 200 and server.encode() in page.content


def test_creating_in_an_unknown_project_shows_argocds_message_and_creates_nothing(
    admin_client, instance, seed_apps, argocd
):
    name = f"bad-{uuid.uuid4().hex[:6]}"
    doc = {
        "metadata": {"name": name, "namespace": "argocd"},
        "spec": {**model(seed_apps)["spec"], "project": "no-such-project"},
    }
    response = admin_client.post(
        f"{NEW}?instance={instance.name}",
        {"instance": instance.name, "document": yaml.safe_dump(doc), "create_yaml": ""},
    )
    assert response.status_code == 422
    assert b"no-such-project" in response.content and b"flash-error" in response.content
    assert not exists(argocd, name)
    assert AuditEvent.objects.exclude(outcome="started").get(action="create", name=name).outcome == "failed"


def test_invalid_yaml_in_the_create_form_names_the_line(admin_client, instance):
    response = admin_client.post(
        f"{NEW}?instance={instance.name}",
        {"instance": instance.name, "document": "metadata:\n  name: [x\n", "create_yaml": ""},
    )
    assert response.status_code == 422 and b"Invalid YAML at line" in response.content


def test_editing_the_spec_as_yaml_updates_the_app(admin_client, instance, fresh_app, argocd):
    name = fresh_app()
    doc = yaml.safe_load(admin_client.get(u("edit", instance, name)).context["edit_form"].initial["document"])
    before = doc["spec"]["source"]["targetRevision"]
    doc["spec"]["source"]["targetRevision"] = "release-2"
    doc["metadata"].setdefault("labels", {})["edited"] = "yes"
    response = admin_client.post(
        u("edit", instance, name), {"format": "yaml", "document": yaml.safe_dump(doc), "apply": ""}
    )
    assert response.status_code == 302
    app = argocd.get_application(name)
    assert app["spec"]["source"]["targetRevision"] == "release-2" and app["metadata"]["labels"]["edited"] == "yes"
    event = AuditEvent.objects.exclude(outcome="started").get(action="edit", name=name)
    assert event.outcome == "succeeded"
    assert event.before["spec"]["source"]["targetRevision"] == before
    assert event.after["spec"]["source"]["targetRevision"] == "release-2"


def test_preview_shows_a_diff_and_changes_nothing(admin_client, instance, fresh_app, argocd):
    name = fresh_app()
    app = argocd.get_application(name)
    doc = {"metadata": {"name": name, "namespace": "argocd"}, "spec": {**app["spec"], "revisionHistoryLimit": 3}}
    response = admin_client.post(
        u("edit", instance, name), {"format": "json", "document": json.dumps(doc), "preview": ""}
    )
    assert response.status_code == 200
    assert b"<td>+  revisionHistoryLimit: 3</td>" in response.content
    assert b'form="edit-form" name="diff_view" value="split"' in response.content
    split = admin_client.post(
        u("edit", instance, name), {"format": "json", "document": json.dumps(doc), "preview": "", "diff_view": "split"}
    )
    assert b'<table class="diff split"' in split.content
    assert b'<input type="hidden" name="diff_view" value="split">' in split.content
    assert argocd.get_application(name)["spec"] == app["spec"]


def test_invalid_yaml_is_reported_with_its_line_and_changes_nothing(admin_client, instance, fresh_app, argocd):
    name = fresh_app()
    spec = argocd.get_application(name)["spec"]
    response = admin_client.post(
        u("edit", instance, name), {"format": "yaml", "document": "spec:\n  project: [\n", "apply": ""}
    )
    assert response.status_code == 200
    assert b"Invalid YAML at line 3" in response.content
    assert argocd.get_application(name)["spec"] == spec
    assert not AuditEvent.objects.filter(action="edit").exists()


def test_an_edit_argocd_rejects_shows_its_message_and_leaves_the_app(admin_client, instance, fresh_app, argocd):
    name = fresh_app()
    app = argocd.get_application(name)
    doc = {
        "metadata": {"name": name},
        "spec": {**app["spec"], "destination": {"server": "https://nowhere:6443", "namespace": "x"}},
    }
    response = admin_client.post(
        u("edit", instance, name), {"format": "yaml", "document": yaml.safe_dump(doc), "apply": ""}
    )
    assert response.status_code == 200 and b"flash-error" in response.content
    assert argocd.get_application(name)["spec"] == app["spec"]
    assert AuditEvent.objects.exclude(outcome="started").get(action="edit", name=name).outcome == "failed"


def test_a_json_patch_is_applied(admin_client, instance, fresh_app, argocd):
    name = fresh_app()
    patch = [{"op": "replace", "path": "/spec/source/targetRevision", "value": "v9"}]
    response = admin_client.post(
        u("edit", instance, name), {"patch_type": "json", "patch": json.dumps(patch), "apply_patch": ""}
    )
    assert response.status_code == 302
    assert argocd.get_application(name)["spec"]["source"]["targetRevision"] == "v9"
    event = AuditEvent.objects.exclude(outcome="started").get(action="edit", name=name)
    assert event.request["patch"] == patch and event.after["spec"]["source"]["targetRevision"] == "v9"


def test_a_json_patch_that_does_not_apply_shows_argocds_message_and_changes_nothing(
    admin_client, instance, fresh_app, argocd
):
    name = fresh_app()
    spec = argocd.get_application(name)["spec"]
    patch = [{"op": "remove", "path": "/spec/no/such/field"}]
    response = admin_client.post(
        u("edit", instance, name), {"patch_type": "json", "patch": json.dumps(patch), "apply_patch": ""}
    )
    assert response.status_code == 200 and b"flash-error" in response.content
    assert argocd.get_application(name)["spec"] == spec
    assert AuditEvent.objects.exclude(outcome="started").get(action="edit", name=name).outcome == "failed"


def test_a_merge_patch_is_applied(admin_client, instance, fresh_app, argocd):
    name = fresh_app()
    patch = {"metadata": {"labels": {"merged": "yes"}}}
    response = admin_client.post(
        u("edit", instance, name), {"patch_type": "merge", "patch": json.dumps(patch), "apply_patch": ""}
    )
    assert response.status_code == 302
    assert argocd.get_application(name)["metadata"]["labels"]["merged"] == "yes"


def test_a_patch_that_is_not_json_is_refused_before_calling_argocd(admin_client, instance, fresh_app):
    name = fresh_app()
    response = admin_client.post(
        u("edit", instance, name), {"patch_type": "json", "patch": "[{oops", "apply_patch": ""}
    )
    assert response.status_code == 200 and b"Invalid JSON at line 1" in response.content


def test_delete_needs_the_typed_name(admin_client, instance, fresh_app, argocd):
    name = fresh_app()
    response = admin_client.post(u("delete", instance, name), {"confirm_name": "wrong", "cascade": "on"})
    assert response.status_code == 302 and response["Location"] == u("detail", instance, name)
    assert exists(argocd, name)
    response = admin_client.post(
        u("delete", instance, name), {"confirm_name": name, "cascade": "on", "propagation_policy": "background"}
    )
    assert response.status_code == 302
    event = AuditEvent.objects.exclude(outcome="started").get(action="delete", name=name)
    assert event.outcome == "succeeded" and event.request == {
        "cascade": True,
        "propagationPolicy": "background",
        "request_id": ANY,
    }
    from .conftest import wait_for

    wait_for(lambda: not exists(argocd, name))

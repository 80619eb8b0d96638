"""The history tab: a rollback is previewed (the chosen revision's manifests against the current ones) before it
is confirmed, and each entry names the portal user who started it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.operations.models import Operation

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def tab(instance, name, query=""):
    return reverse("applications:detail", args=[instance.name, name]) + "?tab=history" + query


@pytest.fixture(scope="module")
def manual_app(seed_apps):
    """A seed app with several deployments of different revisions and no automated sync."""
    return next(
        a
        for name, a in sorted(seed_apps.items())
        if len({h["revision"] for h in a["status"].get("history") or []}) > 1
        and not (a["spec"].get("syncPolicy") or {}).get("automated")
    )


def test_choosing_an_entry_previews_the_manifest_changes_and_starts_nothing(admin_client, instance, manual_app):
    name, history = manual_app["metadata"]["name"], manual_app["status"]["history"]
    old = next(h for h in history if h["revision"] != manual_app["status"]["sync"]["revision"])
    body = admin_client.get(tab(instance, name, f"&rollback={old['id']}"), **HX).content.decode()
    assert "<html" not in body and f"Roll back to deployment {old['id']}?" in body
    # The simulator tags each image with the revision it was rendered from.
    assert "<td>+        image: registry.example.com/" in body and f":{old['revision'][:7]}</td>" in body
    assert f'id="rollback-nonce-{old["id"]}"' in body and 'name="rollback"' in body
    assert 'hx-target="#tab"' in body and f"rollback={old['id']}&amp;diff_view=split" in body
    assert not Operation.objects.exists()


def test_the_preview_can_be_shown_side_by_side(admin_client, instance, manual_app):
    name, entry = manual_app["metadata"]["name"], manual_app["status"]["history"][0]
    body = admin_client.get(tab(instance, name, f"&rollback={entry['id']}&diff_view=split"), **HX).content.decode()
    assert '<table class="diff split"' in body or "The manifests of both revisions are the same." in body


def test_an_unknown_entry_says_so(admin_client, instance, manual_app):
    body = admin_client.get(tab(instance, manual_app["metadata"]["name"], "&rollback=9999"), **HX).content.decode()
    assert "has no deployment with id 9999" in body and 'name="rollback"' not in body


def test_someone_without_rollback_gets_no_preview_nor_button(client, alice, grant, instance, seed_apps):
    app = next(a for a in seed_apps.values() if a["spec"]["project"] == "payments" and a["status"].get("history"))
    grant(alice, ["view"], project="payments")
    client.force_login(alice)
    entry = app["status"]["history"][0]
    body = client.get(tab(instance, app["metadata"]["name"], f"&rollback={entry['id']}"), **HX).content.decode()
    assert "Roll back to deployment" not in body and "Rollback…" not in body


def test_history_names_the_portal_user_who_started_a_deployment(admin_client, instance, alice, manual_app):
    name, history = manual_app["metadata"]["name"], manual_app["status"]["history"]
    ours = next(h for h in history if h["initiatedBy"].get("username"))  # Argo CD says "admin": the portal's account
    theirs = next(h for h in history if h is not ours)
    assert ours["deployStartedAt"] != theirs["deployStartedAt"]
    Operation.objects.create(
        kind="rollback", instance=instance, instance_name=instance.name, target=name, requested_by=alice,
        state="succeeded", result={"phase": "Succeeded", "startedAt": ours["deployStartedAt"]},
    )  # fmt: skip
    Operation.objects.create(  # another app's operation that started at the same second names nobody here
        kind="sync", instance=instance, instance_name=instance.name, target="other-app", requested_by=alice,
        state="succeeded", result={"phase": "Succeeded", "startedAt": theirs["deployStartedAt"]},
    )  # fmt: skip
    body = admin_client.get(tab(instance, name), **HX).content.decode()
    cells = body.split('<td class="initiator">')[1:]
    by_id = {h["id"]: cells[i].split("</td>", 1)[0] for i, h in enumerate(reversed(history))}
    assert by_id[ours["id"]].startswith("alice <small") and "via portal" in by_id[ours["id"]]
    expected = "automated" if theirs["initiatedBy"].get("automated") else theirs["initiatedBy"]["username"]
    assert by_id[theirs["id"]] == expected

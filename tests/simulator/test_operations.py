"""Operation lifecycle: sync, terminate, rollback, dry-run, partial sync, windows, failures, self-heal."""

from __future__ import annotations

import pytest

from .helpers import Client, new_app_body, unique, wait_for


def create(admin: Client, name: str, **spec) -> dict:
    r = admin.post("/api/v1/applications", new_app_body(name, **spec))
    assert r.status_code == 200, r.text
    return r.json()


def phase(admin: Client, name: str) -> str | None:
    return (admin.app(name)["status"].get("operationState") or {}).get("phase")


def wait_done(admin: Client, name: str, timeout: float = 10) -> dict:
    return wait_for(
        lambda: (a := admin.app(name)) and "operation" not in a and a, timeout=timeout, what=f"{name} op done"
    )


def test_sync_lifecycle(sim, admin):
    name = unique("ops-sync")
    app = create(admin, name)
    assert app["status"]["sync"]["status"] == "OutOfSync"
    assert app["status"]["health"]["status"] == "Missing"
    rv0 = int(app["metadata"]["resourceVersion"])

    r = admin.post(
        f"/api/v1/applications/{name}/sync", {"prune": True, "infos": [{"name": "ticket", "value": "OPS-1"}]}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["operation"]["initiatedBy"] == {"username": "admin"}
    assert body["operation"]["info"] == [{"name": "ticket", "value": "OPS-1"}]
    assert "operationState" not in body["status"]
    assert int(body["metadata"]["resourceVersion"]) > rv0

    running = wait_for(
        lambda: (s := admin.app(name)["status"].get("operationState")) and s["phase"] == "Running" and s, what="Running"
    )
    assert running["operation"]["sync"]["prune"] is True
    seen_counts = set()

    def progressed():
        a = admin.app(name)
        state = a["status"].get("operationState") or {}
        seen_counts.add(len((state.get("syncResult") or {}).get("resources") or []))
        return "operation" not in a and a

    done = wait_for(progressed, what="sync completion")
    state = done["status"]["operationState"]
    assert state["phase"] == "Succeeded"
    assert state["message"] == "successfully synced (all tasks run)"
    assert state["startedAt"] and state["finishedAt"]
    assert {r["status"] for r in state["syncResult"]["resources"]} == {"Synced"}
    assert len(seen_counts) > 1, "syncResult entries should advance over sync_seconds"
    assert done["status"]["sync"]["status"] == "Synced"
    history = done["status"]["history"]
    assert len(history) == 1 and history[0]["id"] == 0
    assert set(history[0]) >= {"id", "revision", "deployedAt", "deployStartedAt", "source", "initiatedBy"}
    assert history[0]["initiatedBy"] == {"username": "admin"}
    assert history[0]["revision"] == state["syncResult"]["revision"]
    assert done["status"]["health"]["status"] in ("Progressing", "Healthy")
    wait_for(lambda: admin.app(name)["status"]["health"]["status"] == "Healthy", what="Healthy")

    reasons = [e["reason"] for e in admin.get(f"/api/v1/applications/{name}/events").json()["items"]]
    assert reasons[0] == "ResourceCreated"
    assert "OperationStarted" in reasons and "OperationCompleted" in reasons


def test_second_sync_while_running_is_refused(admin):
    name = unique("ops-busy")
    create(admin, name)
    assert admin.post(f"/api/v1/applications/{name}/sync", {}).status_code == 200
    r = admin.post(f"/api/v1/applications/{name}/sync", {})
    assert r.status_code == 400
    assert r.json() == {
        "error": "another operation is already in progress",
        "code": 9,
        "message": "another operation is already in progress",
    }
    wait_done(admin, name)


def test_terminate(admin):
    name = unique("ops-term")
    create(admin, name)
    r = admin.delete(f"/api/v1/applications/{name}/operation")
    assert r.status_code == 400
    assert r.json()["message"] == "Unable to terminate operation. No operation is in progress"
    admin.post(f"/api/v1/applications/{name}/sync", {})
    wait_for(lambda: phase(admin, name) == "Running", what="Running")
    r = admin.delete(f"/api/v1/applications/{name}/operation")
    assert r.status_code == 200 and r.json() == {}
    done = wait_done(admin, name)
    assert done["status"]["operationState"]["phase"] == "Failed"
    assert done["status"]["operationState"]["message"] == "Operation terminated"
    assert "history" not in done["status"]


def test_rollback(admin):
    name = unique("ops-rb")
    create(admin, name)
    for _ in range(2):
        admin.post(f"/api/v1/applications/{name}/sync", {})
        wait_done(admin, name)
    sim_history = admin.app(name)["status"]["history"]
    assert [h["id"] for h in sim_history] == [0, 1]

    r = admin.post(f"/api/v1/applications/{name}/rollback", {"id": 42})
    assert r.status_code == 400
    assert r.json()["message"] == f"application argocd/{name} does not have deployment with id 42"

    r = admin.post(f"/api/v1/applications/{name}/rollback", {"id": 0})
    assert r.status_code == 200, r.text
    assert r.json()["operation"]["sync"]["revision"] == sim_history[0]["revision"]
    done = wait_done(admin, name)
    assert done["status"]["operationState"]["phase"] == "Succeeded"
    assert done["status"]["history"][-1]["id"] == 2
    assert done["status"]["history"][-1]["revision"] == sim_history[0]["revision"]


def test_rollback_refused_with_auto_sync(admin):
    name = unique("ops-rb-auto")
    create(admin, name, syncPolicy={"automated": {"prune": True}})
    wait_for(lambda: "history" in admin.app(name)["status"] and "operation" not in admin.app(name), what="auto sync")
    r = admin.post(f"/api/v1/applications/{name}/rollback", {"id": 0})
    assert r.status_code == 400
    assert r.json() == {
        "error": "rollback cannot be initiated when auto-sync is enabled",
        "code": 9,
        "message": "rollback cannot be initiated when auto-sync is enabled",
    }


def test_dry_run_changes_nothing(admin):
    name = unique("ops-dry")
    before = create(admin, name)
    admin.post(f"/api/v1/applications/{name}/sync", {"dryRun": True})
    done = wait_done(admin, name)
    assert done["status"]["operationState"]["phase"] == "Succeeded"
    assert done["status"]["operationState"]["operation"]["sync"]["dryRun"] is True
    assert "history" not in done["status"]
    assert done["status"]["sync"]["status"] == before["status"]["sync"]["status"] == "OutOfSync"
    assert done["status"]["health"]["status"] == "Missing"


def test_partial_sync_only_touches_selected_resources(admin):
    name = unique("ops-part")
    app = create(admin, name)
    svc = next(r for r in app["status"]["resources"] if r["kind"] == "Service")
    sel = {"group": "", "kind": "Service", "name": svc["name"], "namespace": svc["namespace"]}
    admin.post(f"/api/v1/applications/{name}/sync", {"resources": [sel]})
    done = wait_done(admin, name)
    results = done["status"]["operationState"]["syncResult"]["resources"]
    assert [(r["kind"], r["name"]) for r in results] == [("Service", svc["name"])]
    assert "history" not in done["status"], "partial syncs are not recorded in history"
    statuses = {r["kind"]: r["status"] for r in done["status"]["resources"]}
    assert statuses["Service"] == "Synced" and statuses["Deployment"] == "OutOfSync"


def test_sync_window_blocks_manual_sync(admin):
    proj = unique("win")
    project = {
        "metadata": {"name": proj},
        "spec": {
            "sourceRepos": ["*"],
            "destinations": [{"server": "*", "namespace": "*"}],
            "syncWindows": [{"kind": "deny", "schedule": "* * * * *", "duration": "1h", "applications": ["blocked-*"]}],
        },
    }
    assert admin.post("/api/v1/projects", {"project": project}).status_code == 200
    name = unique("blocked")
    create(admin, name, project=proj)
    r = admin.post(f"/api/v1/applications/{name}/sync", {})
    assert r.status_code == 403
    assert r.json()["message"] == "cannot sync: blocked by sync window"
    windows = admin.get(f"/api/v1/applications/{name}/syncwindows").json()
    assert windows["canSync"] is False and windows["activeWindows"][0]["kind"] == "deny"
    assert admin.get(f"/api/v1/projects/{proj}/syncwindows").json()["windows"][0]["kind"] == "deny"
    # manualSync on the deny window lets people (not the controller) sync.
    project = admin.get(f"/api/v1/projects/{proj}").json()
    project["spec"]["syncWindows"][0]["manualSync"] = True
    assert admin.put(f"/api/v1/projects/{proj}", {"project": project}).status_code == 200
    assert admin.post(f"/api/v1/applications/{name}/sync", {}).status_code == 200
    wait_done(admin, name)


def test_failing_app_with_retry(admin):
    name = unique("ops-fail")
    body = new_app_body(name)
    body["metadata"]["labels"]["sim/fail-sync"] = "true"
    assert admin.post("/api/v1/applications", body).status_code == 200
    r = admin.post(f"/api/v1/applications/{name}/sync", {"retryStrategy": {"limit": 1, "backoff": {"duration": "1s"}}})
    assert r.json()["operation"]["retry"]["limit"] == 1
    wait_for(lambda: (admin.app(name)["status"].get("operationState") or {}).get("retryCount") == 1, what="retry")
    done = wait_done(admin, name)
    state = done["status"]["operationState"]
    assert state["phase"] == "Failed"
    assert "one or more objects failed to apply" in state["message"]
    assert any(r["status"] == "SyncFailed" for r in state["syncResult"]["resources"])
    assert "history" not in done["status"]


def test_self_heal_after_drift(sim, admin):
    name = unique("ops-heal")
    create(admin, name, syncPolicy={"automated": {"prune": True, "selfHeal": True}})
    wait_for(
        lambda: len(admin.app(name)["status"].get("history") or []) == 1 and "operation" not in admin.app(name),
        what="first auto sync",
    )
    sim.state.drift(name)
    wait_for(lambda: len(admin.app(name)["status"].get("history") or []) == 2, what="self-heal sync")
    app = wait_done(admin, name)
    assert app["status"]["sync"]["status"] == "Synced"
    assert app["status"]["history"][-1]["initiatedBy"] == {"automated": True}


def test_history_truncated_to_limit(admin):
    name = unique("ops-hist")
    create(admin, name, revisionHistoryLimit=2)
    for _ in range(3):
        admin.post(f"/api/v1/applications/{name}/sync", {})
        wait_done(admin, name)
    history = admin.app(name)["status"]["history"]
    assert [h["id"] for h in history] == [1, 2]


def test_resource_action_scale_changes_live_state(admin):
    name = unique("ops-act")
    create(admin, name)
    admin.post(f"/api/v1/applications/{name}/sync", {})
    wait_done(admin, name)
    tree = admin.get(f"/api/v1/applications/{name}/resource-tree").json()
    dep = next(n for n in tree["nodes"] if n["kind"] == "Deployment")
    query = {
        "namespace": dep["namespace"],
        "resourceName": dep["name"],
        "kind": "Deployment",
        "group": "apps",
        "version": "v1",
    }
    actions = {
        a["name"] for a in admin.get(f"/api/v1/applications/{name}/resource/actions", params=query).json()["actions"]
    }
    assert actions == {"restart", "pause", "resume", "scale"}
    body = {**query, "action": "scale", "resourceActionParameters": [{"name": "replicas", "value": "5"}]}
    assert admin.post(f"/api/v1/applications/{name}/resource/actions/v2", body).status_code == 200
    import json

    diff = admin.get(f"/api/v1/applications/{name}/managed-resources", params={"kind": "Deployment"}).json()["items"][0]
    assert json.loads(diff["liveState"])["spec"]["replicas"] == 5
    assert diff["modified"] is True
    pods = [n for n in admin.get(f"/api/v1/applications/{name}/resource-tree").json()["nodes"] if n["kind"] == "Pod"]
    assert len(pods) == 5
    assert admin.app(name)["status"]["sync"]["status"] == "OutOfSync"
    # v1: bare JSON string body.
    assert admin.post(f"/api/v1/applications/{name}/resource/actions", "pause", params=query).status_code == 200
    assert admin.app(name)["status"]["health"]["status"] == "Suspended"
    reasons = [e["reason"] for e in admin.get(f"/api/v1/applications/{name}/events").json()["items"]]
    assert reasons.count("ResourceActionRan") == 2


def test_delete_cascade_and_policy_rules(admin):
    name = unique("ops-del")
    create(admin, name)
    r = admin.delete(f"/api/v1/applications/{name}", params={"cascade": "false", "propagationPolicy": "foreground"})
    assert r.status_code == 400
    assert admin.delete(f"/api/v1/applications/{name}", params={"propagationPolicy": "foreground"}).json() == {}
    wait_for(
        lambda: admin.get(f"/api/v1/applications/{name}", params={"project": "default"}).status_code == 404, what="gone"
    )
    r = admin.get(f"/api/v1/applications/{name}", params={"project": "default"})
    assert r.json()["message"] == f'applications.argoproj.io "{name}" not found'


def test_refresh_and_resource_versions_increase(admin):
    name = unique("ops-rv")
    app = create(admin, name)
    rv = int(app["metadata"]["resourceVersion"])
    refreshed = admin.get(f"/api/v1/applications/{name}", params={"refresh": "hard"}).json()
    assert int(refreshed["metadata"]["resourceVersion"]) > rv


@pytest.mark.parametrize("rev", ["0123456789abcdef0123456789abcdef01234567", "v1.2.3"])
def test_revision_metadata_is_deterministic(admin, rev):
    name = admin.get("/api/v1/applications").json()["items"][0]["metadata"]["name"]
    a = admin.get(f"/api/v1/applications/{name}/revisions/{rev}/metadata").json()
    b = admin.get(f"/api/v1/applications/{name}/revisions/{rev}/metadata").json()
    assert a == b and a["author"] and a["message"] and a["date"]


def test_cascade_delete_shows_deletion_timestamp_first(admin):
    name = unique("ops-del2")
    create(admin, name)
    admin.delete(f"/api/v1/applications/{name}")
    app = admin.get(f"/api/v1/applications/{name}").json()
    assert app["metadata"]["deletionTimestamp"]
    assert "resources-finalizer.argocd.argoproj.io" in app["metadata"]["finalizers"]
    r = admin.post(f"/api/v1/applications/{name}/sync", {})
    assert r.status_code == 400 and r.json()["message"] == "application is deleting"
    wait_for(lambda: admin.get(f"/api/v1/applications/{name}").status_code == 403, what="app removed")

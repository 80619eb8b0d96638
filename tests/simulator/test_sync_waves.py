"""Sync phases, waves and hooks: the operation's results grow step by step, as Argo CD reports them."""

from __future__ import annotations

import json

import pytest

from apps.simulator import resources

from .helpers import Client, login, new_app_body, unique, validate, wait_for

APP_PATH = "/api/v1/applications/{name}"
TREE_PATH = "/api/v1/applications/{applicationName}/resource-tree"


@pytest.fixture
def slow_sim(fresh):
    # Long enough that each phase and wave is visible to a reader polling the app.
    return fresh(apps=3, projects=1, sync_seconds=6)


@pytest.fixture
def admin(slow_sim) -> Client:
    return login(slow_sim.url, "admin", "password")


def app_name(prefix: str, post_sync: bool) -> str:
    while True:
        name = unique(prefix)
        if resources.has_post_sync_hook(name) == post_sync:
            return name


def create(admin: Client, name: str, labels: dict | None = None) -> None:
    body = new_app_body(name)
    body["metadata"]["labels"].update(labels or {})
    r = admin.post("/api/v1/applications", body)
    assert r.status_code == 200, r.text


def read(admin: Client, name: str) -> dict:
    app = admin.app(name)
    validate("GET", APP_PATH, app)
    return app


def rows_of(app: dict) -> list[dict]:
    return ((app["status"].get("operationState") or {}).get("syncResult") or {}).get("resources") or []


def step_of(row: dict) -> tuple:
    return (row["syncPhase"], row.get("hookType", ""), row["kind"], row["name"])


def tree_kinds(admin: Client, name: str) -> dict[str, dict]:
    r = admin.get(f"/api/v1/applications/{name}/resource-tree")
    assert r.status_code == 200, r.text
    validate("GET", TREE_PATH, r.json())
    return {n["kind"]: n for n in r.json()["nodes"]}


def follow(admin: Client, name: str, on_read=None) -> tuple[list[dict], dict]:
    """Every distinct operationState seen until the operation is over, and the final app."""
    seen: list[dict] = []

    def done():
        app = read(admin, name)
        state = app["status"].get("operationState")
        if state and (not seen or seen[-1] != state):
            seen.append(state)
            if on_read:
                on_read(app)
        return "operation" not in app and app

    final = wait_for(done, timeout=30, what=f"{name} operation over")
    return seen, final


def test_resources_carry_sync_waves_and_hooks_are_not_managed_resources(admin):
    name = app_name("waves-ann", post_sync=True)
    create(admin, name)
    r = admin.get(f"/api/v1/applications/{name}/managed-resources")
    assert r.status_code == 200, r.text
    waves = {}
    for item in r.json()["items"]:
        target = json.loads(item["targetState"])
        waves[item["kind"]] = target["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]
    assert waves == {"ConfigMap": "-1", "Service": "0", "Deployment": "1"}
    hooks = resources.hooks(name, admin.app(name)["spec"], "0" * 40)
    assert sorted(m["metadata"]["annotations"]["argocd.argoproj.io/hook"] for m in hooks.values()) == [
        "PostSync",
        "PreSync",
    ]


def test_sync_results_grow_phase_by_phase_then_wave_by_wave(admin):
    name = app_name("waves-grow", post_sync=True)
    create(admin, name)
    assert admin.post(f"/api/v1/applications/{name}/sync", {}).status_code == 200
    hook_in_tree = []
    health_after_deployment_wave = []

    def look_at_tree(app: dict) -> None:
        if app["status"]["operationState"]["message"] == "waiting for healthy state of apps/Deployment/web":
            health_after_deployment_wave.append(app["status"]["health"]["status"])
        running = [r for r in rows_of(app) if r.get("hookPhase") == "Running" and r.get("hookType")]
        if running:
            job = tree_kinds(admin, name).get("Job")
            hook_in_tree.append(job is not None and job["health"]["status"] in ("Progressing", "Healthy"))

    seen, final = follow(admin, name, look_at_tree)
    state = final["status"]["operationState"]
    assert state["phase"] == "Succeeded"
    assert state["message"] == "successfully synced (all tasks run)"
    rows = state["syncResult"]["resources"]
    assert [step_of(r) for r in rows] == [
        ("PreSync", "PreSync", "Job", "web-migrate"),
        ("Sync", "", "ConfigMap", "web-config"),
        ("Sync", "", "Service", "web"),
        ("Sync", "", "Deployment", "web"),
        ("PostSync", "PostSync", "Job", "web-smoke-test"),
    ]
    hooks = [r for r in rows if r.get("hookType")]
    assert {r["hookPhase"] for r in hooks} == {"Succeeded"}
    assert all(r["group"] == "batch" and r["version"] == "v1" and r["status"] == "Synced" for r in hooks)
    # Every read in between showed a prefix of the final list (hook phases aside): it only ever grew.
    lengths = []
    for s in seen:
        got = [step_of(r) for r in s["syncResult"]["resources"]]
        assert got == [step_of(r) for r in rows][: len(got)]
        lengths.append(len(got))
    assert lengths == sorted(lengths)
    assert {1, 2, 3, 4, 5} <= set(lengths), lengths
    messages = [s["message"] for s in seen]
    assert "waiting for completion of hook batch/Job/web-migrate" in messages
    assert "waiting for completion of hook batch/Job/web-smoke-test" in messages
    assert "waiting for healthy state of apps/Deployment/web" in messages
    assert health_after_deployment_wave and set(health_after_deployment_wave) == {"Progressing"}
    # The PreSync hook was seen running before it succeeded, and nothing of the Sync phase ran meanwhile.
    pre = [(s["syncResult"]["resources"] or [{}])[0].get("hookPhase") for s in seen if s["syncResult"]["resources"]]
    assert pre.index("Running") < pre.index("Succeeded")
    assert any(
        len(s["syncResult"]["resources"]) == 1 and s["syncResult"]["resources"][0]["hookPhase"] == "Running"
        for s in seen
    )
    assert hook_in_tree and all(hook_in_tree), "a running hook shows in the resource tree"
    # HookSucceeded: the finished hooks are gone from the tree; the synced resources are there.
    wait_for(lambda: "Job" not in tree_kinds(admin, name), what="hooks deleted")
    assert {"ConfigMap", "Service", "Deployment"} <= set(tree_kinds(admin, name))


def test_a_failing_pre_sync_hook_fails_the_sync_before_anything_is_applied(admin):
    name = app_name("waves-fail", post_sync=True)
    create(admin, name, {"sim/fail-hook": "true"})
    assert admin.post(f"/api/v1/applications/{name}/sync", {}).status_code == 200
    seen, final = follow(admin, name)
    state = final["status"]["operationState"]
    assert state["phase"] == "Failed"
    assert state["message"].startswith("one or more synchronization tasks completed unsuccessfully")
    assert "backoff limit" in state["message"]
    rows = state["syncResult"]["resources"]
    assert [(r["syncPhase"], r["kind"], r["hookPhase"]) for r in rows] == [("PreSync", "Job", "Failed")]
    assert rows[0]["message"] == "Job has reached the specified backoff limit"
    assert any(s["syncResult"]["resources"] and s["syncResult"]["resources"][0]["hookPhase"] == "Running" for s in seen)
    assert "history" not in final["status"]
    assert final["status"]["sync"]["status"] == "OutOfSync"
    # The failed hook stays for inspection; none of the app's own resources were created.
    kinds = tree_kinds(admin, name)
    assert kinds["Job"]["health"]["status"] == "Degraded"
    assert not {"ConfigMap", "Service", "Deployment"} & set(kinds)


def test_terminating_mid_wave_keeps_the_waves_already_applied(admin):
    name = app_name("waves-stop", post_sync=False)
    create(admin, name)
    assert admin.post(f"/api/v1/applications/{name}/sync", {}).status_code == 200
    wait_for(
        lambda: [r["kind"] for r in rows_of(read(admin, name))] == ["Job", "ConfigMap"],
        timeout=30,
        what="the first wave applied",
    )
    assert admin.delete(f"/api/v1/applications/{name}/operation").status_code == 200
    seen, final = follow(admin, name)
    state = final["status"]["operationState"]
    assert state["phase"] == "Failed" and state["message"] == "Operation terminated"
    kinds = [r["kind"] for r in state["syncResult"]["resources"]]
    assert kinds[:2] == ["Job", "ConfigMap"] and "Deployment" not in kinds
    tree = tree_kinds(admin, name)
    assert "ConfigMap" in tree and "Deployment" not in tree
    statuses = {r["kind"]: r["status"] for r in final["status"]["resources"]}
    assert statuses["ConfigMap"] == "Synced" and statuses["Deployment"] == "OutOfSync"


def test_selective_sync_runs_no_hooks(admin):
    name = app_name("waves-sel", post_sync=True)
    create(admin, name)
    sel = {"group": "", "kind": "ConfigMap", "name": "web-config", "namespace": "default"}
    assert admin.post(f"/api/v1/applications/{name}/sync", {"resources": [sel]}).status_code == 200
    _seen, final = follow(admin, name)
    rows = final["status"]["operationState"]["syncResult"]["resources"]
    assert [(r["syncPhase"], r["kind"]) for r in rows] == [("Sync", "ConfigMap")]

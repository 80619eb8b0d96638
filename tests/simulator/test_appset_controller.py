"""The ApplicationSet controller: generated apps are created, kept, updated and deleted as Argo CD's would be."""

from __future__ import annotations

import pytest

from .helpers import Client, login, validate, wait_for

IN_CLUSTER = "https://kubernetes.default.svc"
FINALIZER = "resources-finalizer.argocd.argoproj.io"
POLICIES = ["create-only", "create-update", "create-delete", "sync"]


def appset(name: str, envs=("dev", "staging"), path: str = "apps", **sync_policy) -> dict:
    body: dict = {
        "metadata": {"name": name},
        "spec": {
            "goTemplate": True,
            "generators": [{"list": {"elements": [{"env": e} for e in envs]}}],
            "template": {
                "metadata": {"name": f"{name}-{{{{.env}}}}", "labels": {"set": name}},
                "spec": {
                    "project": "default",
                    "source": {"repoURL": "https://github.com/acme/x.git", "path": f"{path}/{{{{.env}}}}"},
                    "destination": {"server": IN_CLUSTER, "namespace": "{{.env}}"},
                },
            },
        },
    }
    if sync_policy:
        body["spec"]["syncPolicy"] = sync_policy
    return body


@pytest.fixture
def env(fresh):
    sim = fresh(apps=3, sync_seconds=0.2)
    return sim, login(sim.url, "admin", "password")


def names(admin: Client, prefix: str) -> list[str]:
    items = admin.get("/api/v1/applications").json()["items"]
    return sorted(a["metadata"]["name"] for a in items if a["metadata"]["name"].startswith(prefix + "-"))


def conditions(admin: Client, name: str) -> dict[str, dict]:
    body = admin.get(f"/api/v1/applicationsets/{name}").json()
    return {c["type"]: c for c in body["status"]["conditions"]}


def test_creating_a_set_creates_its_applications_owned_by_it(env):
    sim, admin = env
    r = admin.post("/api/v1/applicationsets", appset("web"))
    assert r.status_code == 200, r.text
    uid = r.json()["metadata"]["uid"]
    assert names(admin, "web") == ["web-dev", "web-staging"]
    app = admin.app("web-dev")
    validate("GET", "/api/v1/applications/{name}", app)
    assert app["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "ApplicationSet",
            "name": "web",
            "uid": uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert app["metadata"]["finalizers"] == [FINALIZER] and app["metadata"]["labels"] == {"set": "web"}
    assert app["spec"]["source"]["path"] == "apps/dev"
    got = admin.get("/api/v1/applicationsets/web").json()
    validate("GET", "/api/v1/applicationsets/{name}", got)
    validate("GET", "/api/v1/applicationsets", admin.get("/api/v1/applicationsets").json())
    assert [(r["kind"], r["name"], r["namespace"]) for r in got["status"]["resources"]] == [
        ("Application", "web-dev", "argocd"),
        ("Application", "web-staging", "argocd"),
    ]
    assert got["status"]["resourcesCount"] == 2
    assert got["status"]["resources"][0]["status"] == app["status"]["sync"]["status"]
    assert got["status"]["resources"][0]["health"]["status"] == app["status"]["health"]["status"]
    conds = conditions(admin, "web")
    assert (conds["ErrorOccurred"]["status"], conds["ErrorOccurred"]["reason"]) == ("False", "ApplicationSetUpToDate")
    assert conds["ParametersGenerated"]["status"] == "True"
    assert conds["ResourcesUpToDate"]["message"] == "All applications have been generated successfully"
    tree = admin.get("/api/v1/applicationsets/web/resource-tree").json()
    validate("GET", "/api/v1/applicationsets/{name}/resource-tree", tree)
    assert sorted(n["name"] for n in tree["nodes"]) == ["web-dev", "web-staging"]
    events = admin.get("/api/v1/applicationsets/web/events").json()
    assert any(e["message"] == 'created Application "web-dev"' for e in events["items"])
    # Nothing changes on later passes: the controller does not churn versions it has nothing to write.
    rv = got["metadata"]["resourceVersion"]
    app_rv = app["metadata"]["resourceVersion"]
    reconcile_now(sim)
    assert admin.get("/api/v1/applicationsets/web").json()["metadata"]["resourceVersion"] == rv
    assert admin.app("web-dev")["metadata"]["resourceVersion"] == app_rv


@pytest.mark.parametrize("policy", POLICIES)
def test_changing_a_set_creates_updates_and_deletes_apps_as_its_policy_allows(env, policy):
    _sim, admin = env
    assert admin.post("/api/v1/applicationsets", appset("svc", applicationsSync=policy)).status_code == 200
    assert names(admin, "svc") == ["svc-dev", "svc-staging"]
    changed = appset("svc", envs=("staging", "prod"), path="v2", applicationsSync=policy)
    r = admin.post("/api/v1/applicationsets?upsert=true", changed)
    assert r.status_code == 200, r.text
    may_update = policy in ("create-update", "sync")
    may_delete = policy in ("create-delete", "sync")
    expected = ["svc-prod", "svc-staging"] + ([] if may_delete else ["svc-dev"])
    wait_for(lambda: names(admin, "svc") == sorted(expected), what=f"apps under {policy}")
    assert admin.app("svc-prod")["spec"]["source"]["path"] == "v2/prod"
    assert admin.app("svc-staging")["spec"]["source"]["path"] == ("v2/staging" if may_update else "apps/staging")
    if not may_delete:
        # The app no longer generated stays, still owned by the set.
        assert admin.app("svc-dev")["metadata"]["ownerReferences"][0]["name"] == "svc"
    assert conditions(admin, "svc")["ResourcesUpToDate"]["status"] == "True"


@pytest.mark.parametrize("policy", ["sync", "create-only"])
def test_a_hand_edited_generated_app_is_put_back_unless_the_policy_forbids_updates(env, policy):
    sim, admin = env
    admin.post("/api/v1/applicationsets", appset("ed", applicationsSync=policy))
    app = admin.app("ed-dev")
    app["spec"]["source"]["path"] = "hand/edited"
    assert admin.put("/api/v1/applications/ed-dev", app).status_code == 200
    if policy == "sync":
        wait_for(lambda: admin.app("ed-dev")["spec"]["source"]["path"] == "apps/dev", what="the template restored")
    else:
        # Run controller passes right here, then look: nothing may have been put back.
        reconcile_now(sim)
        reconcile_now(sim)
        assert admin.app("ed-dev")["spec"]["source"]["path"] == "hand/edited"


def reconcile_now(sim) -> None:
    from apps.simulator import appset_controller

    appset_controller.tick(sim.state, force=True)


def test_an_owned_app_deleted_by_hand_is_generated_again(env):
    _sim, admin = env
    admin.post("/api/v1/applicationsets", appset("again", applicationsSync="create-only"))
    uid = admin.app("again-dev")["metadata"]["uid"]
    assert admin.delete("/api/v1/applications/again-dev?cascade=false").status_code == 200
    wait_for(lambda: "again-dev" in names(admin, "again") and admin.app("again-dev")["metadata"]["uid"] != uid)


def synced_recs(sim, admin: Client, prefix: str) -> list:
    for name in names(admin, prefix):
        assert admin.post(f"/api/v1/applications/{name}/sync", {}).status_code == 200
    wait_for(
        lambda: all(admin.app(n)["status"]["sync"]["status"] == "Synced" for n in names(admin, prefix)),
        what="generated apps synced",
    )
    wanted = names(admin, prefix)
    with sim.state.lock:
        return [sim.state.apps[("argocd", n)] for n in wanted]


@pytest.mark.parametrize(("policy", "preserve"), [("sync", False), ("sync", True), ("create-delete", False)])
def test_deleting_a_set_deletes_its_apps_and_their_resources_unless_preserved(env, policy, preserve):
    sim, admin = env
    body = appset("gone", applicationsSync=policy, preserveResourcesOnDeletion=preserve)
    assert admin.post("/api/v1/applicationsets", body).status_code == 200
    assert admin.app("gone-dev")["metadata"].get("finalizers") == (None if preserve else [FINALIZER])
    recs = synced_recs(sim, admin, "gone")
    assert all(rec.live for rec in recs)
    r = admin.delete("/api/v1/applicationsets/gone")
    assert r.status_code == 200
    validate("DELETE", "/api/v1/applicationsets/{name}", r.json())
    assert admin.get("/api/v1/applicationsets/gone").status_code == 404
    wait_for(lambda: names(admin, "gone") == [], what="generated apps garbage collected")
    # The cascade deletes what the apps deployed; a preserving set leaves it running in the cluster.
    assert all(bool(rec.live) is preserve for rec in recs)


@pytest.mark.parametrize("policy", ["create-only", "create-update"])
def test_a_set_whose_policy_forbids_deletes_leaves_its_apps_behind_unowned(env, policy):
    _sim, admin = env
    admin.post("/api/v1/applicationsets", appset("keep", applicationsSync=policy))
    assert admin.delete("/api/v1/applicationsets/keep").status_code == 200
    assert names(admin, "keep") == ["keep-dev", "keep-staging"]
    assert "ownerReferences" not in admin.app("keep-dev")["metadata"]
    # A new set of the same name does not find them owned (but adopts them, as CreateOrUpdate does).
    admin.post("/api/v1/applicationsets", appset("keep"))
    new_uid = admin.get("/api/v1/applicationsets/keep").json()["metadata"]["uid"]
    assert admin.app("keep-dev")["metadata"]["ownerReferences"][0]["uid"] == new_uid


def test_invalid_generated_apps_and_failing_generators_are_reported_as_conditions(env):
    sim, admin = env
    body = appset("bad")
    body["spec"]["generators"][0]["list"]["elements"] = [{"env": "dev"}, {"env": "lost", "server": "x"}]
    body["spec"]["template"]["spec"]["destination"]["server"] = "{{ .server }}"
    body["spec"]["generators"][0]["list"]["elements"][0]["server"] = IN_CLUSTER
    assert admin.post("/api/v1/applicationsets", body).status_code == 200
    assert names(admin, "bad") == ["bad-dev"]
    conds = conditions(admin, "bad")
    assert conds["ErrorOccurred"]["status"] == "True"
    assert conds["ErrorOccurred"]["reason"] == "ApplicationValidationError"
    assert "application destination spec is invalid" in conds["ErrorOccurred"]["message"]
    assert conds["ParametersGenerated"]["status"] == "True"
    assert (conds["ResourcesUpToDate"]["status"], conds["ResourcesUpToDate"]["reason"]) == (
        "False",
        "ApplicationValidationError",
    )
    validate("GET", "/api/v1/applicationsets/{name}", admin.get("/api/v1/applicationsets/bad").json())
    # A generator that stops working (here: a matrix edited behind the API's back) is reported, apps stay.
    with sim.state.lock:
        sim.state.appsets[("argocd", "bad")]["spec"]["generators"] = [{"matrix": {"generators": []}}]
    wait_for(lambda: conditions(admin, "bad")["ParametersGenerated"]["status"] == "False", what="error condition")
    conds = conditions(admin, "bad")
    assert conds["ParametersGenerated"]["reason"] == "ErrorOccurred"
    assert conds["ErrorOccurred"]["reason"] == "ApplicationGenerationFromParamsError"
    assert "exactly 2 child generators" in conds["ErrorOccurred"]["message"]
    assert names(admin, "bad") == ["bad-dev"]


def test_the_seeded_set_reports_truthfully_and_owns_apps_once_a_cluster_opts_in(fresh):
    sim = fresh(apps=2)
    admin = login(sim.url, "admin", "password")
    seeded = admin.get("/api/v1/applicationsets").json()["items"][0]
    name = seeded["metadata"]["name"]
    assert seeded["status"]["resourcesCount"] == 0 and "resources" not in seeded["status"]
    assert len(admin.get("/api/v1/applications").json()["items"]) == 2
    with sim.state.lock:
        cluster = next(c for c in sim.state.clusters.values() if c.get("name") == "in-cluster")
        cluster.setdefault("labels", {})["preview"] = "enabled"
    wait_for(
        lambda: admin.get(f"/api/v1/applicationsets/{name}").json()["status"].get("resourcesCount") == 1,
        what="the seeded set to generate",
    )
    items = admin.get("/api/v1/applications").json()["items"]
    owned = [a for a in items if (a["metadata"].get("ownerReferences") or [{}])[0].get("name") == name]
    assert [a["metadata"]["name"] for a in owned] == ["payments-preview-in-cluster"]

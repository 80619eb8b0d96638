"""Application endpoints against the simulator: reads table-driven on the shared instance, writes on own apps."""

from __future__ import annotations

import time

import pytest

from apps.argocd import ArgoCDClient, errors

from .conftest import CountingSession, app_body


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def first_pod(tree: dict) -> dict:
    return next(n for n in tree["nodes"] if n["kind"] == "Pod")


def top_resource(tree: dict) -> dict:
    return next(n for n in tree["nodes"] if not n.get("parentRefs") and n["kind"] == "Deployment" and n.get("uid"))


def app_with_deployment(c: ArgoCDClient, manual: bool = False) -> tuple[str, dict]:
    """(name, live Deployment node) of the first app that has one (and, if `manual`, no auto-sync)."""
    for app in c.list_applications():
        if manual and (app["spec"].get("syncPolicy") or {}).get("automated"):
            continue
        tree = c.get_resource_tree(app["metadata"]["name"])
        dep = next(
            (n for n in tree["nodes"] if not n.get("parentRefs") and n["kind"] == "Deployment" and n.get("uid")), None
        )
        if dep:
            return app["metadata"]["name"], dep
    raise AssertionError("no app with a live Deployment")


def test_version_and_settings(client, sim):
    v = client.version()
    assert v["Version"].startswith("v") and "GoVersion" in v
    with ArgoCDClient(sim.url, name="anon") as anon:
        assert set(anon.version()) == {"Version"}
    assert "url" in client.get_settings()
    assert isinstance(client.list_plugins(), list)


def test_list_applications_and_filters(client):
    apps = client.list_applications()
    assert len(apps) >= 30 and apps.resource_version
    names = [a["metadata"]["name"] for a in apps]
    assert names == sorted(names)
    projects = sorted({a["spec"]["project"] for a in apps})
    two = projects[:2]
    filtered = client.list_applications(projects=two)
    assert filtered and {a["spec"]["project"] for a in filtered} <= set(two)
    assert len(filtered) == sum(1 for a in apps if a["spec"]["project"] in two)
    slim = client.list_applications(fields=["items.metadata.name", "items.status.sync.status"])
    assert set(slim[0]) <= {"metadata", "status"} and "spec" not in slim[0]


def test_list_applications_selector_and_repo(client):
    apps = client.list_applications()
    labelled = next(a for a in apps if a["metadata"].get("labels"))
    key, value = next(iter(labelled["metadata"]["labels"].items()))
    by_label = client.list_applications(selector=f"{key}={value}")
    assert labelled["metadata"]["name"] in {a["metadata"]["name"] for a in by_label}
    assert all(a["metadata"]["labels"].get(key) == value for a in by_label)
    repo = apps[0]["spec"]["source"]["repoURL"]
    by_repo = client.list_applications(repo=repo)
    assert by_repo and all(a["spec"]["source"]["repoURL"] == repo for a in by_repo)


@pytest.mark.parametrize(
    ("call", "check"),
    [
        (lambda c, a: c.get_application(a), lambda r, a: r["metadata"]["name"] == a),
        (lambda c, a: c.get_resource_tree(a), lambda r, a: any(n["kind"] == "Pod" for n in r["nodes"])),
        (lambda c, a: c.get_managed_resources(a), lambda r, a: r and isinstance(r[0]["liveState"], str)),
        (
            lambda c, a: c.get_managed_resources(a, kind="Deployment"),
            lambda r, a: all(i["kind"] == "Deployment" for i in r),
        ),
        (lambda c, a: c.list_application_events(a), lambda r, a: isinstance(r, list)),
        (lambda c, a: c.get_application_syncwindows(a), lambda r, a: "canSync" in r),
    ],
    ids=["get", "resource-tree", "managed-resources", "managed-resources-filtered", "events", "syncwindows"],
)
def test_application_reads(client, some_app, call, check):
    name = some_app["metadata"]["name"]
    assert check(call(client, name), name)


def test_get_application_with_refresh(client, some_app):
    name = some_app["metadata"]["name"]
    for refresh in (True, "hard"):
        app = client.get_application(name, refresh=refresh, project=some_app["spec"]["project"])
        assert app["metadata"]["name"] == name
        assert "argocd.argoproj.io/refresh" not in (app["metadata"].get("annotations") or {})


def test_revision_metadata(client, some_app):
    app = client.get_application(some_app["metadata"]["name"])
    revision = app["status"]["sync"].get("revision") or app["status"]["history"][-1]["revision"]
    meta = client.get_revision_metadata(app["metadata"]["name"], revision)
    assert meta.get("author") and meta.get("message")


def test_get_one_resource_and_its_actions(client, some_app):
    name, dep = app_with_deployment(client)
    ident = {"namespace": dep["namespace"], "resource_name": dep["name"], "version": dep["version"],
             "group": dep.get("group"), "kind": dep["kind"]}  # fmt: skip
    manifest = client.get_resource(name, **ident)
    assert manifest["kind"] == "Deployment" and manifest["metadata"]["name"] == dep["name"]
    actions = {a["name"] for a in client.list_resource_actions(name, **ident)}
    assert "restart" in actions
    with pytest.raises(errors.InvalidArgument):
        client.get_resource(name, namespace=dep["namespace"], resource_name="nope", version="v1", group="apps",
                            kind="Deployment")  # fmt: skip


def test_create_update_patch_delete(client, some_app, uid):
    name = f"t-{uid}"
    body = app_body(name, some_app)
    created = client.create_application(body)
    assert created["metadata"]["name"] == name
    assert client.create_application(body)["metadata"]["name"] == name  # identical spec: returns existing
    changed = {**body, "spec": {**body["spec"], "source": {**body["spec"]["source"], "targetRevision": "v2"}}}
    with pytest.raises(errors.InvalidArgument):
        client.create_application(changed)
    assert client.create_application(changed, upsert=True)["spec"]["source"]["targetRevision"] == "v2"

    app = client.get_application(name)
    app["metadata"]["labels"] = {"team": "t"}
    assert client.update_application(app)["metadata"]["labels"] == {"team": "t"}
    spec = {**app["spec"], "source": {**app["spec"]["source"], "targetRevision": "v3"}}
    assert client.update_application_spec(name, spec)["source"]["targetRevision"] == "v3"

    merged = client.patch_application(name, {"metadata": {"labels": {"extra": "1"}}})
    assert merged["metadata"]["labels"]["extra"] == "1"
    patched = client.patch_application(
        name, [{"op": "replace", "path": "/spec/source/targetRevision", "value": "v4"}], patch_type="json"
    )
    assert patched["spec"]["source"]["targetRevision"] == "v4"

    with pytest.raises(errors.InvalidArgument):
        client.delete_application(name, cascade=False, propagation_policy="foreground")
    client.delete_application(name, cascade=True, propagation_policy="background")
    wait_for(lambda: name not in {a["metadata"]["name"] for a in client.list_applications()})
    with pytest.raises(errors.NotFound):
        client.get_application(name, project=some_app["spec"]["project"])


def test_sync_then_terminate_then_rollback(make_sim):
    sim = make_sim(sync_seconds=3.0)
    session = CountingSession()
    with ArgoCDClient(sim.url, token=sim.portal_token(), name="s", session=session) as c:
        app = next(a for a in c.list_applications() if not (a["spec"].get("syncPolicy") or {}).get("automated"))
        name = app["metadata"]["name"]
        started = c.sync_application(
            name, prune=True, strategy="apply-force", sync_options=["CreateNamespace=true"],
            retry={"limit": 2}, infos={"triggeredBy": "portal"},
        )  # fmt: skip
        op = started["operation"]
        assert op["sync"]["prune"] is True and op["sync"]["syncStrategy"] == {"apply": {"force": True}}
        assert op["info"] == [{"name": "triggeredBy", "value": "portal"}]
        wait_for(lambda: c.get_application(name)["status"].get("operationState"))
        c.terminate_operation(name)
        final = wait_for(lambda: _completed(c.get_application(name)))
        assert final["status"]["operationState"]["phase"] == "Failed"
        with pytest.raises(errors.InvalidArgument):
            c.terminate_operation(name)

        history = c.get_application(name)["status"].get("history") or []
        assert history, "seeded apps should have deployment history"
        rolled = c.rollback_application(name, history[0]["id"], dry_run=True)
        assert rolled["operation"]["sync"]["dryRun"] is True
    assert session.count("POST", f"/api/v1/applications/{name}/sync") == 1


def _completed(app: dict) -> dict | None:
    state = app["status"].get("operationState") or {}
    return app if not app.get("operation") and state.get("phase") in ("Succeeded", "Failed", "Error") else None


def test_partial_sync_with_resources_and_hook_strategy(make_sim):
    sim = make_sim(sync_seconds=0.1)
    with ArgoCDClient(sim.url, token=sim.portal_token(), name="s") as c:
        name, dep = app_with_deployment(c, manual=True)
        res = [{"group": dep.get("group", ""), "kind": dep["kind"], "name": dep["name"], "namespace": dep["namespace"]}]
        op = c.sync_application(name, resources=res, strategy="hook", revision="HEAD")["operation"]
        assert op["sync"]["resources"][0]["name"] == dep["name"]
        assert op["sync"]["syncStrategy"] == {"hook": {"force": False}}
        done = wait_for(lambda: _completed(c.get_application(name)))
        assert done["status"]["operationState"]["phase"] == "Succeeded"


def test_run_action_v2_and_delete_resource(make_sim):
    sim = make_sim()
    session = CountingSession()
    with ArgoCDClient(sim.url, token=sim.portal_token(), name="s", session=session) as c:
        name, dep = app_with_deployment(c)
        ident = {"namespace": dep["namespace"], "resource_name": dep["name"], "version": dep["version"],
                 "group": dep.get("group"), "kind": dep["kind"]}  # fmt: skip
        c.run_resource_action(name, "restart", **ident)
        c.run_resource_action(name, "scale", parameters={"replicas": 3}, **ident)
        base = f"/api/v1/applications/{name}/resource/actions"
        assert session.count("POST", base + "/v2") == 2 and session.count("POST", base) == 0

        pod = first_pod(c.get_resource_tree(name))  # the restart replaced the pods
        c.delete_resource(name, namespace=pod["namespace"], resource_name=pod["name"], version="v1", kind="Pod",
                          force=True)  # fmt: skip


def test_run_action_falls_back_to_v1_when_v2_missing(make_sim, monkeypatch):
    """An Argo CD older than 3.1 has no /v2 route: grpc-gateway answers 404 text/plain; the client uses v1."""
    sim = make_sim()
    session = CountingSession()
    real_send = session.send

    def no_v2(request, **kw):
        if request.url.split("?")[0].endswith("/resource/actions/v2"):
            request.url = request.url.replace("/resource/actions/v2", "/resource/actions/v2-missing")
        return real_send(request, **kw)

    session.send = no_v2
    with ArgoCDClient(sim.url, token=sim.portal_token(), name="s", session=session) as c:
        name, dep = app_with_deployment(c)
        c.run_resource_action(name, "restart", namespace=dep["namespace"], resource_name=dep["name"],
                              version=dep["version"], group=dep.get("group"), kind=dep["kind"])  # fmt: skip
        assert session.count("POST", f"/api/v1/applications/{name}/resource/actions") == 1
        with pytest.raises(errors.NotFound):
            c.run_resource_action(name, "scale", parameters={"replicas": 2}, namespace=dep["namespace"],
                                  resource_name=dep["name"], version=dep["version"], group=dep.get("group"),
                                  kind=dep["kind"])  # fmt: skip


def test_patch_resource(make_sim):
    sim = make_sim()
    with ArgoCDClient(sim.url, token=sim.portal_token(), name="s") as c:
        name, dep = app_with_deployment(c)
        out = c.patch_resource(name, {"metadata": {"labels": {"patched": "yes"}}}, namespace=dep["namespace"],
                               resource_name=dep["name"], version=dep["version"], group=dep.get("group"),
                               kind=dep["kind"])  # fmt: skip
        assert out["metadata"]["labels"]["patched"] == "yes"

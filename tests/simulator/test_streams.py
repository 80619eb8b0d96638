"""Logs and watch streams: NDJSON framing, filters, follow, initial ADDED, live events, cleanup."""

from __future__ import annotations

import json
import queue
import threading
import time

import requests

from .helpers import Client, hard_close, login, new_app_body, unique, wait_for


def lines(resp) -> list[dict]:
    return [json.loads(x) for x in resp.text.splitlines() if x.strip()]


def some_app(admin: Client) -> tuple[str, list[dict]]:
    for a in admin.get("/api/v1/applications").json()["items"]:
        tree = admin.get(f"/api/v1/applications/{a['metadata']['name']}/resource-tree").json()
        pods = [n for n in tree["nodes"] if n["kind"] == "Pod"]
        if len(pods) >= 2:
            return a["metadata"]["name"], pods
    raise AssertionError("no app with 2 pods")


def test_logs_framing_and_filters(admin):
    name, pods = some_app(admin)
    r = admin.get(f"/api/v1/applications/{name}/logs", params={"tailLines": "5"})
    assert r.status_code == 200 and r.headers["Transfer-Encoding"] == "chunked"
    frames = lines(r)
    assert frames[-1]["result"]["last"] is True and frames[-1]["result"]["content"] == ""
    body = frames[:-1]
    assert len(body) == 5 * len(pods)
    assert {f["result"]["podName"] for f in body} == {p["name"] for p in pods}
    assert all(set(f["result"]) == {"content", "timeStamp", "last", "timeStampStr", "podName"} for f in body)

    one = lines(admin.get(f"/api/v1/applications/{name}/logs", params={"podName": pods[0]["name"], "tailLines": "3"}))
    assert {f["result"]["podName"] for f in one[:-1]} == {pods[0]["name"]} and len(one) == 4
    path = lines(admin.get(f"/api/v1/applications/{name}/pods/{pods[1]['name']}/logs", params={"tailLines": "2"}))
    assert {f["result"]["podName"] for f in path[:-1]} == {pods[1]["name"]}

    recent = lines(
        admin.get(f"/api/v1/applications/{name}/logs", params={"podName": pods[0]["name"], "sinceSeconds": "30"})
    )
    assert 1 <= len(recent) - 1 <= 4

    bad = lines(
        admin.get(f"/api/v1/applications/{name}/logs", params={"podName": pods[0]["name"], "container": "nope"})
    )
    assert "container nope is not valid" in bad[0]["result"]["content"]

    none = admin.get(f"/api/v1/applications/{name}/logs", params={"podName": "no-such-pod"})
    assert none.status_code == 200 and none.text == ""

    projected = lines(
        admin.get(f"/api/v1/applications/{name}/logs", params={"tailLines": "1", "fields": "result.content"})
    )
    assert set(projected[0]["result"]) == {"content"}


def test_logs_permission_error_uses_stream_shape(sim, fresh):
    s = fresh(policy_csv="p, alice, logs, get, */*, deny\n")
    alice = login(s.url, "alice", "alice-password")
    name = alice.get("/api/v1/applications").json()["items"][0]["metadata"]["name"]
    r = alice.get(f"/api/v1/applications/{name}/logs")
    assert r.status_code == 403
    err = r.json()["error"]
    assert err["grpc_code"] == 7 and err["http_code"] == 403 and err["http_status"] == "Forbidden"
    assert err["message"].startswith("permission denied: logs, get")


def test_logs_follow_keeps_streaming_until_client_leaves(sim, admin):
    name, pods = some_app(admin)
    base = sim.state.open_streams
    with admin.get(f"/api/v1/applications/{name}/logs", params={"follow": "true", "tailLines": "1"}, stream=True) as r:
        it = r.iter_lines()
        got = [json.loads(next(it)) for _ in range(len(pods) + 2)]
        assert all(not f["result"]["last"] for f in got)
        assert sim.state.open_streams == base + 1
    wait_for(lambda: sim.state.open_streams == base, timeout=5, what="follow stream closed server-side")


def watch_reader(resp, out: queue.Queue) -> None:
    try:
        for line in resp.iter_lines():
            if line:
                out.put(json.loads(line))
    except Exception:  # noqa: BLE001 - connection closed by the test
        pass


def next_matching(q: queue.Queue, pred, timeout: float = 8.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            frame = q.get(timeout=0.2)
        except queue.Empty:
            continue
        if pred(frame):
            return frame
    raise AssertionError("no matching watch frame")


def test_watch_initial_and_live_events(sim, admin):
    projects = {a["spec"]["project"] for a in admin.get("/api/v1/applications").json()["items"]}
    project = sorted(projects)[0]
    expected = [
        a["metadata"]["name"] for a in admin.get("/api/v1/applications", params={"projects": project}).json()["items"]
    ]
    name = unique("watch")
    q: queue.Queue = queue.Queue()
    r = admin.get("/api/v1/stream/applications", params={"projects": [project, "default"]}, stream=True)
    threading.Thread(target=watch_reader, args=(r, q), daemon=True).start()
    try:
        initial = []
        while len(initial) < len(expected):
            f = q.get(timeout=5)
            if f["result"]["application"]["spec"]["project"] == project:
                initial.append(f)
        assert {f["result"]["type"] for f in initial} == {"ADDED"}
        assert [f["result"]["application"]["metadata"]["name"] for f in initial] == expected

        admin.post("/api/v1/applications", new_app_body(name))
        added = next_matching(q, lambda f: f["result"]["application"]["metadata"]["name"] == name)
        assert added["result"]["type"] == "ADDED"
        admin.post(f"/api/v1/applications/{name}/sync", {})
        next_matching(
            q,
            lambda f: (
                f["result"]["type"] == "MODIFIED"
                and (f["result"]["application"]["status"].get("operationState") or {}).get("phase") == "Succeeded"
            ),
        )
        sim.state.drift(name)
        drifted = next_matching(
            q,
            lambda f: (
                f["result"]["application"]["metadata"]["name"] == name
                and f["result"]["application"]["status"]["sync"]["status"] == "OutOfSync"
            ),
        )
        assert drifted["result"]["type"] == "MODIFIED"
        admin.delete(f"/api/v1/applications/{name}", params={"cascade": "false"})
        gone = next_matching(q, lambda f: f["result"]["type"] == "DELETED")
        assert gone["result"]["application"]["metadata"]["name"] == name
    finally:
        hard_close(r)


def test_watch_fields_name_and_resource_version(sim, admin):
    app = admin.get("/api/v1/applications").json()["items"][0]
    name = app["metadata"]["name"]
    params = {"name": name, "fields": "result.type,result.application.metadata.name"}
    with admin.get("/api/v1/stream/applications", params=params, stream=True) as r:
        first = json.loads(next(r.iter_lines()))
    assert first == {"result": {"type": "ADDED", "application": {"metadata": {"name": name}}}}
    # With resourceVersion (and no name) there is no initial listing, only newer events.
    rv = admin.app(name)["metadata"]["resourceVersion"]
    q: queue.Queue = queue.Queue()
    r = admin.get(
        "/api/v1/stream/applications",
        params={"resourceVersion": rv, "selector": f"team={app['metadata']['labels']['team']}"},
        stream=True,
    )
    threading.Thread(target=watch_reader, args=(r, q), daemon=True).start()
    try:
        time.sleep(0.3)
        assert q.empty()
        sim.state.set_health(name, "Degraded")
        frame = next_matching(q, lambda f: True)
        assert frame["result"]["application"]["metadata"]["name"] == name
        assert frame["result"]["application"]["status"]["health"]["status"] == "Degraded"
    finally:
        hard_close(r)


def test_watch_requires_auth_with_stream_error(sim):
    r = requests.get(sim.url + "/api/v1/stream/applications")
    assert r.status_code == 401
    assert r.json() == {
        "error": {"grpc_code": 16, "http_code": 401, "message": "no session information", "http_status": "Unauthorized"}
    }


def test_dropping_many_streams_leaks_nothing(fresh):
    s = fresh(apps=20)
    admin = login(s.url, "admin", "password")
    admin.get("/api/v1/applications")
    time.sleep(0.2)
    base_threads = threading.active_count()
    assert s.state.subscriber_count() == 0
    for i in range(50):
        session = requests.Session()
        r = session.get(s.url + "/api/v1/stream/applications", headers=admin.s.headers, stream=True, timeout=5)
        next(r.iter_lines())
        if i % 2:
            r.close()
        else:
            hard_close(r)
        session.close()
    wait_for(lambda: s.state.subscriber_count() == 0, timeout=10, what="subscribers cleaned up")
    wait_for(lambda: s.state.open_streams == 0, timeout=10, what="streams closed")
    wait_for(lambda: threading.active_count() <= base_threads + 1, timeout=10, what="threads back to baseline")


def test_stop_ends_open_streams_promptly(fresh):
    s = fresh()
    admin = login(s.url, "admin", "password")
    r = admin.get("/api/v1/stream/applications", stream=True)
    next(r.iter_lines())
    started = time.monotonic()
    s.stop()
    assert time.monotonic() - started < 3
    assert s.state.subscriber_count() == 0
    r.close()


def test_resource_tree_stream(sim, admin):
    name = unique("tree-stream")
    admin.post("/api/v1/applications", new_app_body(name))
    q: queue.Queue = queue.Queue()
    r = admin.get(f"/api/v1/stream/applications/{name}/resource-tree", stream=True)
    threading.Thread(target=watch_reader, args=(r, q), daemon=True).start()
    try:
        first = q.get(timeout=5)
        assert "Deployment" not in {n["kind"] for n in first["result"].get("nodes", [])}
        admin.post(f"/api/v1/applications/{name}/sync", {})
        next_matching(q, lambda f: "Deployment" in {n["kind"] for n in f["result"]["nodes"]})
    finally:
        hard_close(r)


def test_logs_download_and_until_time(admin):
    name, pods = some_app(admin)
    r = admin.get(
        f"/api/v1/applications/{name}/logs", params={"podName": pods[0]["name"], "download": "true", "tailLines": "4"}
    )
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/octet-stream"
    assert r.headers["Content-Disposition"].startswith("attachment;filename=")
    assert len(r.text.splitlines()) == 4 and not r.text.startswith("{")
    full = lines(admin.get(f"/api/v1/applications/{name}/logs", params={"podName": pods[0]["name"]}))
    cut = full[10]["result"]["timeStampStr"]
    until = lines(admin.get(f"/api/v1/applications/{name}/logs", params={"podName": pods[0]["name"], "untilTime": cut}))
    assert until[-1]["result"]["last"] is True
    body = [f["result"] for f in until[:-1]]
    assert body and all(e["timeStampStr"] <= cut for e in body)
    assert body[-1]["timeStampStr"] == cut  # lines are stable across requests


def test_watch_as_server_sent_events(admin):
    name = admin.get("/api/v1/applications").json()["items"][0]["metadata"]["name"]
    headers = {"Accept": "text/event-stream"}
    with admin.get("/api/v1/stream/applications", params={"name": name}, headers=headers, stream=True) as r:
        assert r.headers["Content-Type"] == "text/event-stream"
        first = next(line for line in r.iter_lines() if line)
    assert first.startswith(b"data: ")
    assert json.loads(first[6:])["result"]["application"]["metadata"]["name"] == name

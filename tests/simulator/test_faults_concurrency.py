"""Fault knobs (latency, fail rate, garbage) and a mixed concurrent workload that must stay consistent."""

from __future__ import annotations

import json
import random
import threading
import time

import requests

from .helpers import login, wait_for


def test_latency_and_jitter(fresh):
    s = fresh(latency_ms=120, jitter_ms=40)
    started = time.monotonic()
    requests.get(s.url + "/api/version", timeout=5)
    elapsed = time.monotonic() - started
    assert 0.12 <= elapsed < 0.5
    s.faults.latency_ms = 0
    s.faults.jitter_ms = 0
    started = time.monotonic()
    requests.get(s.url + "/api/version", timeout=5)
    assert time.monotonic() - started < 0.1


def test_fail_rate(fresh):
    s = fresh(fail_rate=1.0)
    r = requests.get(s.url + "/api/version", timeout=5)
    assert r.status_code == 503
    body = r.json()
    assert body["code"] == 14 and body["error"] == body["message"] and "connection refused" in body["message"]
    s.faults.fail_rate = 0.5
    codes = [requests.get(s.url + "/api/version", timeout=5).status_code for _ in range(60)]
    assert 10 < codes.count(503) < 50 and codes.count(200) + codes.count(503) == 60
    s.faults.fail_rate = 0.0
    assert requests.get(s.url + "/api/version", timeout=5).status_code == 200


def test_garbage_mode(fresh):
    s = fresh()
    s.faults.garbage = True
    r = requests.get(s.url + "/api/v1/applications", timeout=5)
    assert r.status_code == 502 and r.headers["Content-Type"] == "text/html" and "502 Bad Gateway" in r.text
    s.faults.garbage = False
    assert requests.get(s.url + "/api/version", timeout=5).status_code == 200


def test_concurrent_reads_syncs_and_edits_stay_consistent(fresh):
    s = fresh(apps=30, sync_seconds=0.05)
    admin = login(s.url, "admin", "password")
    items = admin.get("/api/v1/applications").json()["items"]
    names = [
        a["metadata"]["name"]
        for a in items
        if "automated" not in (a["spec"].get("syncPolicy") or {})
        and a["metadata"]["labels"].get("sim/fail-sync") != "true"
    ][:8]
    initial_last = {
        a["metadata"]["name"]: a["status"]["history"][-1]["id"] for a in items if a["metadata"]["name"] in names
    }
    errors: list[str] = []
    accepted_syncs: dict[str, int] = {n: 0 for n in names}
    lock = threading.Lock()

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        session = requests.Session()
        session.headers.update(admin.s.headers)
        for _ in range(50):
            name = rng.choice(names)
            roll = rng.random()
            try:
                if roll < 0.5:
                    r = session.get(f"{s.url}/api/v1/applications/{name}", timeout=10)
                    ok = r.status_code == 200
                elif roll < 0.6:
                    r = session.get(
                        f"{s.url}/api/v1/applications", params={"fields": "items.metadata.name"}, timeout=10
                    )
                    ok = r.status_code == 200 and len(r.json()["items"]) == 30
                elif roll < 0.85:
                    r = session.post(f"{s.url}/api/v1/applications/{name}/sync", json={}, timeout=10)
                    ok = r.status_code in (200, 400)
                    if r.status_code == 400:
                        ok = r.json()["message"] == "another operation is already in progress"
                    else:
                        with lock:
                            accepted_syncs[name] += 1
                else:
                    patch = json.dumps({"metadata": {"annotations": {"touched": str(rng.randint(0, 10**6))}}})
                    r = session.patch(
                        f"{s.url}/api/v1/applications/{name}", json={"patch": patch, "patchType": "merge"}, timeout=10
                    )
                    ok = r.status_code == 200
                if not ok:
                    errors.append(f"{r.request.method} {r.url}: {r.status_code} {r.text[:200]}")
            except requests.RequestException as exc:
                errors.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:5]
    wait_for(lambda: all("operation" not in admin.app(n) for n in names), timeout=15, what="all ops done")
    for name in names:
        app = admin.app(name)
        ids = [h["id"] for h in app["status"]["history"]]
        assert len(ids) == len(set(ids)) and ids == sorted(ids), ids
        assert len(ids) <= (app["spec"].get("revisionHistoryLimit") or 10)
        assert ids[-1] - ids[0] + 1 == len(ids), "ids must stay consecutive"
        # Every accepted sync produced exactly one history entry, no more, no less.
        assert ids[-1] - initial_last[name] == accepted_syncs[name], (name, ids, accepted_syncs[name])
    assert len(admin.get("/api/v1/applications").json()["items"]) == 30

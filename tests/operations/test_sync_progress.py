"""Sync progress as Argo CD reports it: per-resource results by phase and wave while the sync runs, kept on the
Operation after the end, failed hooks shown with their message — on the operation card."""

from __future__ import annotations

import copy

import pytest
from django.template.loader import render_to_string

from apps.argocd import ArgoCDClient
from apps.operations.models import Operation
from apps.operations.progress import steps

from .conftest import final, wait_for


def test_results_are_grouped_by_phase_then_wave_in_the_order_the_sync_runs_them():
    rows = [
        {"kind": "Job", "name": "smoke", "syncPhase": "PostSync", "hookType": "PostSync", "hookPhase": "Running"},
        {"kind": "Deployment", "name": "api", "syncPhase": "Sync", "syncWave": 1, "status": "Synced"},
        {"kind": "ConfigMap", "name": "cfg", "syncPhase": "Sync", "syncWave": -1, "status": "Synced"},
        {
            "kind": "Job",
            "name": "migrate",
            "syncPhase": "PreSync",
            "hookType": "PreSync",
            "hookPhase": "Failed",
            "message": "Job has reached the specified backoff limit",
        },  # fmt: skip
        {"kind": "Service", "name": "api", "syncPhase": "Sync", "syncWave": 0, "status": "SyncFailed"},
    ]
    out = steps(rows)
    assert [(s["phase"], s["wave"]) for s in out] == [
        ("PreSync", None), ("Sync", -1), ("Sync", 0), ("Sync", 1), ("PostSync", None)
    ]  # fmt: skip
    assert [s["state"] for s in out] == ["Failed", "Done", "Failed", "Done", "Running"]
    assert out[0]["failed"][0]["message"] == "Job has reached the specified backoff limit"


pytestmark_db = pytest.mark.django_db(transaction=True)


def _fail_hook_app(sim, name: str) -> str:
    with ArgoCDClient(sim.url, token=sim.portal_token(), name=sim.name) as client:
        model = next(a for a in client.list_applications() if not (a["spec"].get("syncPolicy") or {}).get("automated"))
        spec = copy.deepcopy(model["spec"])
        spec.pop("syncPolicy", None)
        client.create_application({"metadata": {"name": name, "namespace": "argocd",
                                                "labels": {"sim/fail-hook": "true"}}, "spec": spec})  # fmt: skip
    return spec.get("project", "default")


@pytestmark_db
def test_the_card_shows_each_wave_while_the_sync_runs_and_keeps_them_and_a_failed_hook_after_the_end(
    worker, make_sim, register, submit, admin_user, sim_app
):
    sim = make_sim(sync_seconds=2.0)
    instance = register(sim)
    name, project = sim_app(sim)
    broken_project = _fail_hook_app(sim, "hook-fails")
    retry = {"retryStrategy": {"limit": 0}}
    op = submit(admin_user, kind="sync", instance=instance, project=project, target=name, params={})
    bad = submit(admin_user, kind="sync", instance=instance, project=broken_project, target="hook-fails", params=retry)

    seen_waves = []

    def over():
        op.refresh_from_db()
        seen_waves.append(tuple(s["wave"] for s in steps(op.resources) if s["phase"] == "Sync"))
        return op.is_final

    wait_for(over, timeout=30, what="the sync to end")
    assert any(0 < len(w) < 3 for w in seen_waves), seen_waves  # some waves were seen before the others
    op = final(op)
    assert op.state == Operation.State.SUCCEEDED, op.error
    waves = {r["kind"]: r["syncWave"] for r in op.resources if not r.get("hookType")}
    assert waves == {"ConfigMap": -1, "Service": 0, "Deployment": 1}
    card = render_to_string("operations/card.html", {"op": op})
    assert '<section class="sync-step" data-phase="PreSync">' in card
    for wave in (-1, 0, 1):
        assert f'data-phase="Sync" data-wave="{wave}"' in card
    assert "data-failed-hook" not in card

    bad = final(bad)
    assert bad.state == Operation.State.FAILED
    card = render_to_string("operations/card.html", {"op": bad})
    assert '<section class="sync-step failed" data-phase="PreSync">' in card
    assert "PreSync hook Job" in card and "Job has reached the specified backoff limit" in card
    assert "data-failed-hook" in card

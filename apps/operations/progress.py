"""A sync's per-resource results as Argo CD reports them (operationState.syncResult.resources), arranged by phase
and wave the way the sync runs them: PreSync hooks, then each wave of the Sync phase, then PostSync (SyncFail last).

Argo CD's ResourceResult has no wave; the app's status.resources carries each managed resource's `syncWave`
(omitted when 0), which is where the wave comes from. Hooks are not in status.resources: they show under their
phase without a wave.
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]
PHASE_ORDER = {"PreSync": 0, "Sync": 1, "PostSync": 2, "SyncFail": 3}
FAILED = {"Failed", "Error", "SyncFailed"}
RUNNING = {"Running", "Pending", "Terminating"}


def waves_of(app: JSON) -> dict[tuple[str, str, str, str], int]:
    """Each managed resource's sync wave, from status.resources."""
    out = {}
    for r in (app.get("status") or {}).get("resources") or []:
        key = (r.get("group") or "", r.get("kind") or "", r.get("namespace") or "", r.get("name") or "")
        try:
            out[key] = int(r.get("syncWave") or 0)
        except (TypeError, ValueError):
            out[key] = 0
    return out


def with_waves(rows: list[JSON] | None, app: JSON) -> list[JSON]:
    """The rows with `syncWave` filled from the app's status.resources (None for hooks and unknown resources)."""
    waves = waves_of(app)
    out = []
    for r in rows or []:
        key = (r.get("group") or "", r.get("kind") or "", r.get("namespace") or "", r.get("name") or "")
        out.append({**r, "syncWave": None if r.get("hookType") else waves.get(key)})
    return out


def row_state(r: JSON) -> str:
    """One result's state: a hook's phase, or the apply's outcome (a resource still Running is being applied)."""
    if r.get("hookType"):
        return r.get("hookPhase") or "Pending"
    if r.get("status") in FAILED or r.get("hookPhase") in FAILED:
        return "Failed"
    return r.get("status") or r.get("hookPhase") or "Pending"


def steps(rows: list[JSON] | None) -> list[JSON]:
    """The results grouped into the sync's steps (phase, wave), in the order the sync runs them."""
    groups: dict[tuple[int, int, str, Any], JSON] = {}
    for r in rows or []:
        phase = r.get("syncPhase") or "Sync"
        wave = r.get("syncWave")
        key = (PHASE_ORDER.get(phase, 1), wave if isinstance(wave, int) else 0, phase, wave)
        step = groups.setdefault(key, {"phase": phase, "wave": wave, "rows": []})
        step["rows"].append({**r, "state": row_state(r)})
    out = []
    for key in sorted(groups, key=lambda k: k[:3]):
        step = groups[key]
        states = [r["state"] for r in step["rows"]]
        step["failed"] = [r for r in step["rows"] if r["state"] in FAILED]
        step["state"] = "Failed" if step["failed"] else ("Running" if any(s in RUNNING for s in states) else "Done")
        out.append(step)
    return out

"""The ApplicationSet controller: turns each set's generated Applications into real ones and keeps them so.

Modelled on Argo CD's applicationset controller (`applicationset/controllers/applicationset_controller.go`):
- generated apps carry a controller owner reference to their set (kind ApplicationSet, the set's uid);
- `spec.syncPolicy.applicationsSync` decides what may happen to existing apps: `create-only` only creates
  missing ones, `create-update` also rewrites drifted ones, `create-delete` also deletes apps no longer
  generated, `sync` (the default) does all three;
- without `preserveResourcesOnDeletion` every generated app gets the resources finalizer, so deleting it
  (by the set or by garbage collection after the set is gone) deletes its resources too; with it, the
  app goes without its resources (a non-cascading delete);
- a set is deleted with Kubernetes' default (background) propagation: its owned apps are garbage
  collected, unless its policy forbids deletes, in which case the controller strips their owner
  references first and they stay;
- status carries the conditions ErrorOccurred, ParametersGenerated and ResourcesUpToDate, and
  `resources` / `resourcesCount` for the apps it owns.

Every function here runs with `state.lock` held.
"""

from __future__ import annotations

import copy
import time
import weakref
from typing import Any

from .errors import ApiError
from .state import NAMESPACE, AppRec, State, now_ts

ACTOR = "applicationset-controller"
RESOURCES_FINALIZER = "resources-finalizer.argocd.argoproj.io"
POLICIES = ("create-only", "create-update", "create-delete", "sync")
# The tick re-reads every set at most this often (generators may depend on clusters that change).
RESYNC_SECONDS = 1.0

_last_resync: weakref.WeakKeyDictionary[State, float] = weakref.WeakKeyDictionary()


def policy(appset: dict) -> str:
    value = ((appset.get("spec") or {}).get("syncPolicy") or {}).get("applicationsSync") or "sync"
    return value if value in POLICIES else "sync"


def allows_update(appset: dict) -> bool:
    return policy(appset) in ("create-update", "sync")


def allows_delete(appset: dict) -> bool:
    return policy(appset) in ("create-delete", "sync")


def preserves_resources(appset: dict) -> bool:
    return bool(((appset.get("spec") or {}).get("syncPolicy") or {}).get("preserveResourcesOnDeletion"))


def owner_reference(appset: dict) -> dict:
    meta = appset["metadata"]
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_uid(rec: AppRec) -> str:
    """The uid of the object that controls this app (its owner reference with `controller: true`)."""
    for ref in rec.obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == "ApplicationSet":
            return str(ref.get("uid") or "")
    return ""


def owned_apps(state: State, appset: dict) -> list[AppRec]:
    uid = appset["metadata"]["uid"]
    ns = appset["metadata"].get("namespace") or NAMESPACE
    return sorted(
        (rec for rec in state.apps.values() if rec.namespace == ns and controller_uid(rec) == uid),
        key=lambda r: r.name,
    )


def _owned_index(state: State) -> dict[str, list[AppRec]]:
    """Apps by the uid of their controlling set, in one pass (what the controller's field index gives it)."""
    index: dict[str, list[AppRec]] = {}
    for rec in state.apps.values():
        if rec.obj["metadata"].get("ownerReferences"):
            uid = controller_uid(rec)
            if uid:
                index.setdefault(uid, []).append(rec)
    return index


def _validate(state: State, apps: list[dict], appset_name: str) -> dict[int, str]:
    """What Argo CD's validateGeneratedApplications checks: unique names, known project, known cluster."""
    errors: dict[int, str] = {}
    seen: set[str] = set()
    for i, app in enumerate(apps):
        name = app["metadata"].get("name") or ""
        spec = app["spec"]
        if not name:
            errors[i] = "application name is empty"
            continue
        if name in seen:
            errors[i] = f"ApplicationSet {appset_name} contains applications with duplicate name: {name}"
            continue
        seen.add(name)
        if spec.get("project") not in state.projects:
            errors[i] = f"application references project {spec.get('project')} which does not exist"
            continue
        dest = spec.get("destination") or {}
        if state.cluster_of(dest.get("server", ""), dest.get("name", "")) is None:
            what = (
                f"there are no clusters with this name: {dest['name']}"
                if dest.get("name")
                else (f"cluster '{dest.get('server', '')}' has not been configured")
            )
            errors[i] = f"application destination spec is invalid: {what}"
    return errors


def _desired(app: dict, appset: dict) -> dict:
    """The Application object the controller writes for one generated app."""
    meta = app["metadata"]
    out: dict[str, Any] = {"name": meta["name"], "namespace": meta.get("namespace") or NAMESPACE}
    for key in ("labels", "annotations", "finalizers"):
        if meta.get(key):
            out[key] = copy.deepcopy(meta[key])
    out["ownerReferences"] = [owner_reference(appset)]
    spec = copy.deepcopy(app["spec"])
    spec["project"] = spec.get("project") or "default"
    return {"metadata": out, "spec": spec}


def _differs(rec: AppRec, want: dict) -> bool:
    have = rec.obj["metadata"]
    if rec.obj["spec"] != want["spec"]:
        return True
    if any((have.get(k) or None) != (want["metadata"].get(k) or None) for k in ("labels", "annotations")):
        return True
    if (have.get("finalizers") or None) != (want["metadata"].get("finalizers") or None):
        return True
    return (have.get("ownerReferences") or []) != want["metadata"]["ownerReferences"]


def delete_owned(state: State, rec: AppRec) -> None:
    """Delete one generated app the way Kubernetes does: its own finalizers decide whether resources go."""
    if rec.obj["metadata"].get("deletionTimestamp"):
        return
    cascade = RESOURCES_FINALIZER in (rec.obj["metadata"].get("finalizers") or [])
    state.delete_app(rec, cascade, "", ACTOR)


def _condition(ctype: str, status: str, reason: str, message: str) -> dict:
    return {"type": ctype, "status": status, "reason": reason, "message": message}


PARAMS_OK = "Successfully generated parameters for all Applications"
GENERATED_OK = "All applications have been generated successfully"


def _conditions(error_reason: str, error_message: str, params_ok: bool) -> list[dict]:
    """The three conditions Argo CD always writes together (setApplicationSetStatusCondition)."""
    if not error_reason:
        return [
            _condition("ErrorOccurred", "False", "ApplicationSetUpToDate", PARAMS_OK),
            _condition("ParametersGenerated", "True", "ParametersGenerated", PARAMS_OK),
            _condition("ResourcesUpToDate", "True", "ApplicationSetUpToDate", GENERATED_OK),
        ]
    params = (
        _condition("ParametersGenerated", "True", "ParametersGenerated", PARAMS_OK)
        if params_ok
        else _condition("ParametersGenerated", "False", "ErrorOccurred", error_message)
    )
    return [
        _condition("ErrorOccurred", "True", error_reason, error_message),
        params,
        _condition("ResourcesUpToDate", "False", error_reason, error_message),
    ]


def _set_status(state: State, appset: dict, conditions: list[dict], owned: list[AppRec]) -> None:
    """Write conditions and resources; publish only when something changed (keeps resourceVersion quiet)."""
    status = appset.setdefault("status", {})
    old = {c.get("type"): c for c in status.get("conditions") or []}
    stamp = now_ts()
    merged = []
    for cond in conditions:
        prev = old.get(cond["type"])
        same = prev is not None and prev.get("status") == cond["status"]
        merged.append({**cond, "lastTransitionTime": prev.get("lastTransitionTime") if same and prev else stamp})
    # A RolloutProgressing condition belongs to progressive syncs, which the simulator does not run.
    resources = [
        {
            "group": "argoproj.io",
            "version": "v1alpha1",
            "kind": "Application",
            "namespace": rec.namespace,
            "name": rec.name,
            "status": ((rec.obj.get("status") or {}).get("sync") or {}).get("status", "Unknown"),
            "health": {"status": ((rec.obj.get("status") or {}).get("health") or {}).get("status", "Unknown")},
        }
        for rec in sorted(owned, key=lambda r: r.name)
        if rec.namespace == (appset["metadata"].get("namespace") or NAMESPACE)
    ]
    before = (status.get("conditions"), status.get("resources"), status.get("resourcesCount"))
    comparable = [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in status.get("conditions") or []]
    if comparable == conditions and before[1:] == (resources or None, len(resources)):
        return
    status["conditions"] = merged
    if resources:
        status["resources"] = resources
    else:
        status.pop("resources", None)
    status["resourcesCount"] = len(resources)
    appset["metadata"]["resourceVersion"] = str(state.next_rv())
    state.publish_appset("MODIFIED", appset)


def _event(state: State, appset: dict, reason: str, message: str) -> None:
    meta = appset["metadata"]
    state.object_event(state.appset_events, "ApplicationSet", meta["name"], meta["uid"], reason, message)


def reconcile(state: State, appset: dict, owned: list[AppRec] | None = None) -> None:
    """One pass of the controller over one set (create / update / delete apps, then status)."""
    from .handlers.appsets import generate_apps

    owned = owned_apps(state, appset) if owned is None else owned
    try:
        generated = generate_apps(state, appset)
    except ApiError as exc:
        _set_status(state, appset, _conditions("ApplicationGenerationFromParamsError", exc.message, False), owned)
        return
    errors = _validate(state, generated, appset["metadata"]["name"])
    valid = [app for i, app in enumerate(generated) if i not in errors]
    current = {rec.name: rec for rec in owned}
    changed = False
    update = allows_update(appset)
    for app in valid:
        want = _desired(app, appset)
        name = want["metadata"]["name"]
        rec = state.apps.get((want["metadata"]["namespace"], name))
        if rec is None:
            state.add_app(want, ACTOR)
            changed = True
            _event(state, appset, "created", f'created Application "{name}"')
        elif rec.obj["metadata"].get("deletionTimestamp"):
            continue  # being deleted; it is created again once gone
        elif name not in current and controller_uid(rec):
            # Another set controls it: controller-runtime refuses a second controller reference.
            errors[generated.index(app)] = (
                f"Object {NAMESPACE}/{name} is already owned by another ApplicationSet controller"
            )
        elif (update or name not in current) and _differs(rec, want):
            # create-only still adopts an app it finds unowned (createInCluster passes it to CreateOrUpdate).
            rec.obj["metadata"]["ownerReferences"] = want["metadata"]["ownerReferences"]
            state.replace_app(rec, want, ACTOR)
            changed = True
            _event(state, appset, "updated", f'updated Application "{name}"')
    if allows_delete(appset):
        wanted = {app["metadata"].get("name") for app in generated}
        for name, rec in current.items():
            if name not in wanted and not rec.obj["metadata"].get("deletionTimestamp"):
                delete_owned(state, rec)
                changed = True
                _event(state, appset, "Deleted", f'Deleted Application "{name}"')
    if changed:
        owned = owned_apps(state, appset)
    if errors:
        messages = [errors[i] for i in sorted(errors)]
        message = messages[-1] + (f" (and {len(messages) - 1} more)" if len(messages) > 1 else "")
        _set_status(state, appset, _conditions("ApplicationValidationError", message, True), owned)
    else:
        _set_status(state, appset, _conditions("", "", True), owned)


def on_delete(state: State, appset: dict) -> list[str]:
    """Garbage collection after a set is deleted; returns the names of the apps deleted with it."""
    gone = []
    for rec in owned_apps(state, appset):
        if allows_delete(appset):
            delete_owned(state, rec)
            gone.append(rec.name)
        else:
            # The policy forbids deletes: the controller orphans the apps before the set goes.
            rec.obj["metadata"].pop("ownerReferences", None)
            state.touch(rec)
    return gone


def tick(state: State, force: bool = False) -> None:
    """Reconcile every set now and then (generators read clusters, and owned apps drift)."""
    mono = time.monotonic()
    if not force and mono - _last_resync.get(state, 0.0) < RESYNC_SECONDS:
        return
    _last_resync[state] = mono
    with state.lock:
        if not state.appsets:
            return
        index = _owned_index(state)
        for appset in list(state.appsets.values()):
            reconcile(state, appset, index.get(appset["metadata"]["uid"], []))

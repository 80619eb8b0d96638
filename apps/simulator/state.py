"""The in-memory store of one simulated Argo CD instance and its fake application controller.

One re-entrant lock guards everything. Every change to an application goes through `touch()`, which bumps
the store-wide resourceVersion, drops the app's cached JSON and feeds watch subscribers.
"""

from __future__ import annotations

import copy
import json
import math
import queue
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from apps.core import cron

from . import resources, seed
from .rbac import Enforcer, Policy, glob_match, project_policy
from .resources import Key

NAMESPACE = "argocd"
DEFAULT_HISTORY_LIMIT = 10
SUCCESS_MESSAGE = "successfully synced (all tasks run)"
RUNNING_MESSAGE = "one or more tasks are running"
HOOK_FAILED_MESSAGE = "Job has reached the specified backoff limit"
HOOK_SUCCEEDED_MESSAGE = "Reached expected number of succeeded pods"
PHASE_RANK = {"PreSync": 0, "Sync": 1, "PostSync": 2}
MAX_EVENTS_PER_OBJECT = 100


def match_in_list(patterns: list[str] | tuple[str, ...], value: str) -> bool:
    """util/glob.MatchStringInList in REGEXP mode: `/re/` is an unanchored regular expression, else a glob."""
    for pattern in patterns:
        if len(pattern) > 1 and pattern.startswith("/") and pattern.endswith("/"):
            try:
                if re.search(pattern[1:-1], value):
                    return True
            except re.error:
                pass
        elif glob_match(pattern, value):
            return True
    return False


def now_ts() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


@dataclass
class Account:
    name: str
    password: str
    capabilities: list[str]
    enabled: bool = True
    tokens: list[dict] = field(default_factory=list)  # [{id, iat, exp?}] like accounts.<name>.tokens
    password_mtime: int = 0


@dataclass
class Step:
    """One (phase, wave) of a sync: the hooks and resources Argo CD runs together before moving on."""

    phase: str
    wave: int
    keys: list[Key]
    hooks: list[Key]


@dataclass
class Run:
    """Controller bookkeeping for the operation currently executing on an app.

    `events` is the plan: ("apply", step) for a wave of plain resources, ("start", step) then ("finish", step)
    for a wave with hooks. `done` counts the events already applied; time spreads them over sync_seconds.
    """

    started: float
    keys: list[Key]
    revision: str
    done: int = 0
    retry_at: float = 0.0
    events: list[tuple[str, Step]] = field(default_factory=list)
    hook_manifests: dict[Key, dict] = field(default_factory=dict)


@dataclass
class AppRec:
    obj: dict
    live: dict[Key, dict]
    target: dict[Key, dict]
    synced_revision: str
    health: str = "Healthy"
    health_override: str | None = None
    fail_sync: bool = False
    events: list[dict] = field(default_factory=list)
    run: Run | None = None
    healthy_at: float = 0.0
    autosync_pending: bool = False
    delete_at: float = 0.0
    hooks: dict[Key, dict] = field(default_factory=dict)  # hook Jobs in the cluster (shown in the tree)
    _json: str | None = None

    @property
    def name(self) -> str:
        return self.obj["metadata"]["name"]

    @property
    def namespace(self) -> str:
        return self.obj["metadata"].get("namespace", NAMESPACE)

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def project(self) -> str:
        return self.obj["spec"].get("project", "")

    def json(self) -> str:
        if self._json is None:
            self._json = dumps(self.obj)
        return self._json

    def invalidate(self) -> None:
        self._json = None


class Subscriber:
    """One watch stream: a queue the store fills and the HTTP thread drains."""

    def __init__(self, kind: str = "applications") -> None:
        self.kind = kind
        self.queue: queue.Queue = queue.Queue()
        self.closed = threading.Event()

    def push(self, item: Any) -> None:
        # A reader that stopped draining must not grow memory forever: drop it instead.
        if self.queue.qsize() > 100_000:
            self.closed.set()
            return
        self.queue.put(item)


class State:
    def __init__(
        self,
        name: str,
        apps: int,
        projects: int,
        seed_value: int,
        admin_password: str,
        portal_password: str,
        faults: Any,
        policy_csv: str = "",
        app_namespaces: list[str] | tuple[str, ...] = (),
    ) -> None:
        self.name = name
        # argocd-cmd-params-cm `application.namespaces`: where Applications may live besides the control plane's.
        self.app_namespaces: list[str] = list(app_namespaces)
        self.lock = threading.RLock()
        self.faults = faults
        self.rv = 1000
        self.secret_key = uuid.uuid4().bytes + uuid.uuid4().bytes
        self.rng = random.Random(seed_value)
        self.subscribers: set[Subscriber] = set()
        self._open_streams = 0
        self.active: set[tuple[str, str]] = set()
        self.revoked: set[str] = set()
        self.repo_commits: dict[str, int] = {}
        self.installation_id = f"sim-{name}"

        self.accounts: dict[str, Account] = {
            "admin": Account("admin", admin_password, ["login"]),
            "portal": Account("portal", portal_password, ["apiKey", "login"]),
            "alice": Account("alice", "alice-password", ["login"]),
        }
        self.policy_csv = "g, portal, role:admin\ng, alice, role:readonly\n" + policy_csv
        self.enforcer = Enforcer(self.policy_csv)

        data = seed.generate(apps, projects, seed_value)
        self.projects: dict[str, dict] = {p["metadata"]["name"]: p for p in data.projects}
        self.project_events: dict[str, list[dict]] = {}
        self._project_policies: dict[str, Policy] = {}
        self.clusters: dict[str, dict] = {c["server"]: c for c in data.clusters}
        self.repos: dict[str, dict] = {r["repo"]: r for r in data.repos}
        self.write_repos: dict[str, dict] = {}
        self.repocreds: dict[str, dict] = {c["url"]: c for c in data.repocreds}
        self.write_repocreds: dict[str, dict] = {}
        self.appsets: dict[tuple[str, str], dict] = {
            (a["metadata"]["namespace"], a["metadata"]["name"]): a for a in data.appsets
        }
        self.appset_events: dict[str, list[dict]] = {}
        self.certs: list[dict] = data.certs
        self.gpgkeys: dict[str, dict] = {k["keyID"]: k for k in data.gpgkeys}
        self.apps: dict[tuple[str, str], AppRec] = {}
        for app_seed in data.apps:
            rec = self._seed_app(app_seed)
            self.apps[rec.key] = rec
        self._sorted_keys: list[tuple[str, str]] | None = None

    # ------------------------------------------------------------------ basics

    def next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def resolve_revision(self, repo: str, rev: str) -> str:
        """Fake git: 40-hex SHAs are themselves, tags are fixed, branches move with new_commit()."""
        rev = rev or "HEAD"
        if len(rev) == 40 and all(c in "0123456789abcdef" for c in rev):
            return rev
        if rev[:1] == "v" and rev[1:2].isdigit() or rev[:1].isdigit():
            return resources.h(f"{repo}@tag:{rev}")
        branch = "main" if rev in ("HEAD", "main", "master") else rev
        return resources.h(f"{repo}@{branch}#{self.repo_commits.get(repo, 0)}")

    def sorted_app_keys(self) -> list[tuple[str, str]]:
        if self._sorted_keys is None:
            self._sorted_keys = sorted(self.apps)
        return self._sorted_keys

    def namespace_enabled(self, namespace: str) -> bool:
        """security.IsNamespaceEnabled: the control plane's namespace, or one `application.namespaces` names."""
        return namespace == NAMESPACE or match_in_list(self.app_namespaces, namespace)

    def project_permits_namespace(self, project: str, namespace: str) -> bool:
        """AppProject.IsAppNamespacePermitted: apps outside the control plane's namespace need `sourceNamespaces`."""
        if not namespace or namespace == NAMESPACE:
            return True
        proj = self.projects.get(project or "default")
        return proj is not None and match_in_list((proj.get("spec") or {}).get("sourceNamespaces") or [], namespace)

    def project_policy(self, name: str) -> Policy | None:
        proj = self.projects.get(name)
        if proj is None:
            return None
        pol = self._project_policies.get(name)
        if pol is None:
            pol = self._project_policies[name] = project_policy(proj)
        return pol

    def project_changed(self, name: str) -> None:
        self._project_policies.pop(name, None)

    # ------------------------------------------------------------------ apps

    def cluster_of(self, server: str = "", name: str = "") -> dict | None:
        """The cluster an application destination names, by name when given, else by server URL."""
        if name:
            return next((c for c in self.clusters.values() if c.get("name") == name), None)
        return self.clusters.get(server) if server else None

    def _source(self, spec: dict) -> dict:
        return spec.get("source") or ((spec.get("sources") or [{}])[0])

    def _seed_app(self, s: seed.AppSeed) -> AppRec:
        obj = s.obj
        spec = obj["spec"]
        src = self._source(spec)
        head = self.resolve_revision(src.get("repoURL", ""), src.get("targetRevision", "HEAD"))
        target = resources.render(obj["metadata"]["name"], spec, head)
        synced_rev = head if s.sync == "Synced" else s.history_revisions[-1]
        live_src = target if s.sync == "Synced" else resources.render(obj["metadata"]["name"], spec, synced_rev)
        created = obj["metadata"]["creationTimestamp"]
        live = {}
        for key, manifest in live_src.items():
            if s.health == "Missing" and key[1] == "Deployment":
                continue
            live[key] = resources.make_live(manifest, self.uid(), self.next_rv(), created)
        revisions = s.history_revisions if s.sync != "Synced" else [*s.history_revisions[:-1], head]
        history = []
        for i, rev in enumerate(revisions):
            at = seed.ts(seed.BASE_TIME.replace(day=6 + i))
            history.append(
                {
                    "id": i,
                    "revision": rev,
                    "deployedAt": at,
                    "deployStartedAt": at,
                    "source": resources.clone(src),
                    "initiatedBy": {"username": "admin"} if i % 2 else {"automated": True},
                }
            )
        obj["status"] = {
            "history": history,
            "controllerNamespace": NAMESPACE,
            "sourceType": "Helm" if src.get("chart") else ("Kustomize" if "kustomize" in src else "Directory"),
            "reconciledAt": seed.ts(seed.BASE_TIME),
            "operationState": {
                "operation": {
                    "sync": {"revision": revisions[-1], "syncOptions": ["CreateNamespace=true"]},
                    "initiatedBy": copy.deepcopy(history[-1]["initiatedBy"]),
                    "retry": {},
                },
                "phase": "Succeeded",
                "message": SUCCESS_MESSAGE,
                "startedAt": history[-1]["deployStartedAt"],
                "finishedAt": history[-1]["deployedAt"],
                "syncResult": {
                    "resources": self._seed_results(obj["metadata"]["name"], spec, target, revisions[-1]),
                    "revision": revisions[-1],
                    "source": resources.clone(src),
                },
            },
        }
        rec = AppRec(obj=obj, live=live, target=target, synced_revision=synced_rev, fail_sync=s.fail_sync)
        rec.health = s.health if s.health in ("Healthy", "Progressing", "Degraded") else "Healthy"
        obj["metadata"]["resourceVersion"] = str(self.next_rv())
        self.recompute(rec, target)
        return rec

    def _seed_results(self, name: str, spec: dict, target: dict[Key, dict], revision: str) -> list[dict]:
        """The finished sync a seeded app shows: hooks succeeded, resources configured, in phase/wave order."""
        hooks = resources.hooks(name, spec, revision)
        rows = []
        for step in self._steps(list(target), hooks, {**target, **hooks}):
            for key in step.keys:
                if key in hooks:
                    rows.append(self._hook_row(key, hooks[key], "Succeeded", HOOK_SUCCEEDED_MESSAGE))
                else:
                    rows.append(self._result_row(key, "Synced", f"{self._fq(key)}/{key[3]} configured"))
        return rows

    def recompute(self, rec: AppRec, target: dict[Key, dict] | None = None) -> None:
        """Re-derive status.resources, sync and health from target vs live (what the controller compares)."""
        obj = rec.obj
        spec = obj["spec"]
        src = self._source(spec)
        if target is None:
            head = self.resolve_revision(src.get("repoURL", ""), src.get("targetRevision", "HEAD"))
            target = resources.render(rec.name, spec, head)
        rec.target = target
        status = obj.setdefault("status", {})
        app_health = self.app_health(rec)
        rows = []
        out_of_sync = False
        for key in sorted(set(rec.target) | set(rec.live)):
            group, kind, ns, name = key
            tgt = rec.target.get(key)
            live = rec.live.get(key)
            row: dict[str, Any] = {"version": "v1", "kind": kind, "namespace": ns, "name": name}
            if group:
                row["group"] = group
            if tgt is None:
                row["status"] = "OutOfSync"
                row["requiresPruning"] = True
            else:
                row["status"] = "Synced" if live is not None and resources.is_subset(tgt, live) else "OutOfSync"
            out_of_sync |= row["status"] != "Synced"
            wave = resources.wave_of(tgt if tgt is not None else live)
            if wave:  # Argo CD omits a zero syncWave
                row["syncWave"] = wave
            if kind == "Deployment":
                row["health"] = {"status": "Missing" if live is None else self._deploy_health(rec, live)}
            elif kind == "Service":
                row["health"] = {"status": "Missing" if live is None else "Healthy"}
            rows.append(row)
        status["resources"] = rows
        status["sync"] = {
            "status": "OutOfSync" if out_of_sync else "Synced",
            "comparedTo": {"source": resources.clone(src), "destination": resources.clone(spec.get("destination", {}))},
            "revision": rec.synced_revision,
        }
        health: dict[str, Any] = {"status": app_health}
        prev = status.get("health") or {}
        health["lastTransitionTime"] = (
            prev.get("lastTransitionTime")
            if prev.get("status") == app_health and prev.get("lastTransitionTime")
            else now_ts()
        )
        status["health"] = health
        images = sorted(
            {
                c["image"]
                for m in rec.live.values()
                if m["kind"] == "Deployment"
                for c in m["spec"]["template"]["spec"]["containers"]
            }
        )
        status["summary"] = {"images": images} if images else {}

    def _deploy_health(self, rec: AppRec, live: dict) -> str:
        if rec.health_override:
            return rec.health_override
        if live["spec"].get("paused"):
            return "Suspended"
        return rec.health

    def app_health(self, rec: AppRec) -> str:
        if rec.health_override:
            return rec.health_override
        deploy = next((m for k, m in rec.live.items() if k[1] == "Deployment"), None)
        if deploy is None:
            return "Missing"
        return self._deploy_health(rec, deploy)

    def touch(self, rec: AppRec, event: str = "MODIFIED") -> None:
        rec.obj["metadata"]["resourceVersion"] = str(self.next_rv())
        rec.invalidate()
        self.publish_app(event, rec)

    def publish_app(self, event: str, rec: AppRec) -> None:
        if not self.subscribers:
            return
        item = (
            event,
            rec.namespace,
            rec.name,
            rec.project,
            dict(rec.obj["metadata"].get("labels") or {}),
            int(rec.obj["metadata"]["resourceVersion"]),
            rec.json(),
        )
        for sub in list(self.subscribers):
            if sub.kind == "applications":
                sub.push(item)

    def publish_appset(self, event: str, appset: dict) -> None:
        for sub in list(self.subscribers):
            if sub.kind == "applicationsets":
                sub.push((event, dumps(appset), appset))

    def subscribe(self, kind: str = "applications") -> Subscriber:
        sub = Subscriber(kind)
        with self.lock:
            self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        with self.lock:
            self.subscribers.discard(sub)
        sub.closed.set()

    def stream_opened(self) -> None:
        with self.lock:
            self._open_streams += 1

    def stream_closed(self) -> None:
        with self.lock:
            self._open_streams -= 1

    @property
    def open_streams(self) -> int:
        """Chunked responses (logs, watches, tree streams) currently being served."""
        with self.lock:
            return self._open_streams

    def subscriber_count(self) -> int:
        with self.lock:
            return len(self.subscribers)

    def add_app(self, obj: dict, user: str) -> AppRec:
        obj["metadata"].update(
            {
                "namespace": obj["metadata"].get("namespace") or NAMESPACE,
                "uid": self.uid(),
                "generation": 1,
                "creationTimestamp": now_ts(),
            }
        )
        obj["status"] = {"controllerNamespace": NAMESPACE, "reconciledAt": now_ts(), "sourceType": "Directory"}
        src = self._source(obj["spec"])
        if src.get("chart"):
            obj["status"]["sourceType"] = "Helm"
        elif "kustomize" in src:
            obj["status"]["sourceType"] = "Kustomize"
        rec = AppRec(obj=obj, live={}, target={}, synced_revision="")
        rec.fail_sync = (obj["metadata"].get("labels") or {}).get("sim/fail-sync") == "true"
        self.apps[rec.key] = rec
        self._sorted_keys = None
        self.recompute(rec)
        rec.obj["metadata"]["resourceVersion"] = str(self.next_rv())
        self.event(rec, "ResourceCreated", f"{user} created application")
        self.publish_app("ADDED", rec)
        if (obj["spec"].get("syncPolicy") or {}).get("automated") is not None:
            rec.autosync_pending = True
            self.active.add(rec.key)
        return rec

    def replace_app(self, rec: AppRec, new_obj: dict, user: str) -> None:
        """Update spec/labels/annotations/finalizers (what PUT/PATCH may change) and re-compare."""
        old_spec = rec.obj["spec"]
        meta = rec.obj["metadata"]
        for key in ("labels", "annotations", "finalizers"):
            if new_obj.get("metadata", {}).get(key) is not None:
                meta[key] = new_obj["metadata"][key]
            else:
                meta.pop(key, None)
        spec_changed = new_obj["spec"] != old_spec
        rec.obj["spec"] = new_obj["spec"]
        if spec_changed:
            meta["generation"] = int(meta.get("generation", 1)) + 1
        rec.fail_sync = (meta.get("labels") or {}).get("sim/fail-sync") == "true"
        self.recompute(rec)
        self.event(rec, "ResourceUpdated", f"{user} updated application spec")
        self.touch(rec)
        if spec_changed and (rec.obj["spec"].get("syncPolicy") or {}).get("automated") is not None:
            rec.autosync_pending = True
            self.active.add(rec.key)

    def delete_app(self, rec: AppRec, cascade: bool, policy: str, user: str) -> None:
        self.event(rec, "ResourceDeleted", f"{user} deleted application")
        if not cascade:
            self._remove_app(rec)
            return
        finalizer = "resources-finalizer.argocd.argoproj.io"
        if policy == "background":
            finalizer += "/background"
        elif policy == "foreground":
            finalizer += "/foreground"
        meta = rec.obj["metadata"]
        finalizers = [
            f for f in meta.get("finalizers") or [] if not f.startswith("resources-finalizer.argocd.argoproj.io")
        ]
        meta["finalizers"] = [*finalizers, finalizer]
        meta.setdefault("deletionTimestamp", now_ts())
        meta.setdefault("deletionGracePeriodSeconds", 0)
        # The controller needs a moment to delete the app's resources before the finalizer is removed.
        rec.delete_at = time.monotonic() + max(self.faults.sync_seconds / 2, 0.05)
        self.touch(rec)
        self.active.add(rec.key)

    def _remove_app(self, rec: AppRec) -> None:
        self.apps.pop(rec.key, None)
        self._sorted_keys = None
        self.active.discard(rec.key)
        rec.obj["metadata"]["resourceVersion"] = str(self.next_rv())
        rec.invalidate()
        self.publish_app("DELETED", rec)

    def event(self, rec: AppRec, reason: str, message: str, kind: str = "Normal") -> None:
        rec.events.append(
            self._k8s_event(
                "Application", rec.name, rec.obj["metadata"]["uid"], reason, message, kind, "argoproj.io/v1alpha1"
            )
        )
        del rec.events[:-MAX_EVENTS_PER_OBJECT]

    def object_event(
        self, store: dict[str, list[dict]], kind: str, name: str, uid: str, reason: str, message: str
    ) -> None:
        events = store.setdefault(name, [])
        events.append(self._k8s_event(kind, name, uid, reason, message, "Normal", "argoproj.io/v1alpha1"))
        del events[:-MAX_EVENTS_PER_OBJECT]

    def _k8s_event(self, kind: str, name: str, uid: str, reason: str, message: str, etype: str, api: str) -> dict:
        stamp = now_ts()
        event_name = f"{name}.{uuid.uuid4().hex[:16]}"
        return {
            "metadata": {
                "name": event_name,
                "namespace": NAMESPACE,
                "uid": str(uuid.uuid4()),
                "resourceVersion": str(self.next_rv()),
                "creationTimestamp": stamp,
            },
            "involvedObject": {
                "kind": kind,
                "namespace": NAMESPACE,
                "name": name,
                "uid": uid,
                "apiVersion": api,
                "resourceVersion": "",
            },
            "reason": reason,
            "message": message,
            "source": {"component": "argocd-server" if "Operation" not in reason else "argocd-application-controller"},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "type": etype,
            "eventTime": None,
            "reportingComponent": "",
            "reportingInstance": "",
        }

    # ------------------------------------------------------------------ operations

    def sync_windows_allow(self, rec: AppRec, manual: bool) -> bool:
        windows = self.matching_windows(rec)
        active = [w for w in windows if self.window_active(w)]
        deny = [w for w in active if w.get("kind") == "deny"]
        if deny:
            return manual and all(w.get("manualSync") for w in deny)
        if any(w.get("kind") == "allow" for w in active):
            return True
        inactive_allow = [w for w in windows if w.get("kind") == "allow" and w not in active]
        if inactive_allow:
            return manual and all(w.get("manualSync") for w in inactive_allow)
        return True

    @staticmethod
    def window_active(window: dict) -> bool:
        try:
            return cron.window_active(
                window.get("schedule", ""), window.get("duration", ""), window.get("timeZone", "")
            )
        except cron.CronError:
            # Unparseable windows block: treat them as active.
            return True

    def matching_windows(self, rec: AppRec) -> list[dict]:
        from .rbac import glob_match

        proj = self.projects.get(rec.project) or {}
        dest = rec.obj["spec"].get("destination", {})
        cluster_ids = [x for x in (dest.get("name"), dest.get("server")) if x]
        if dest.get("server") and not dest.get("name"):
            cluster_ids += [c.get("name") for c in self.clusters.values() if c["server"] == dest["server"]]
        out = []
        for w in (proj.get("spec") or {}).get("syncWindows") or []:
            checks = []
            if w.get("applications"):
                checks.append(any(glob_match(p, rec.name) for p in w["applications"]))
            if w.get("namespaces"):
                checks.append(any(glob_match(p, dest.get("namespace", "")) for p in w["namespaces"]))
            if w.get("clusters"):
                checks.append(any(glob_match(p, c) for p in w["clusters"] for c in cluster_ids if c))
            if not checks:
                continue
            if all(checks) if w.get("andOperator") else any(checks):
                out.append(w)
        return out

    def start_operation(self, rec: AppRec, operation: dict, reason_msg: str) -> None:
        rec.obj["operation"] = operation
        rec.obj["status"].pop("operationState", None)
        rec.run = None
        rec.hooks.clear()  # the default BeforeHookCreation: a hook left by the last sync goes before a new one
        self.event(rec, "OperationStarted", reason_msg)
        self.touch(rec)
        self.active.add(rec.key)

    def terminate(self, rec: AppRec) -> None:
        rec.obj["status"]["operationState"]["phase"] = "Terminating"
        self.touch(rec)

    def tick(self) -> None:
        """One controller pass over the apps that need attention (operations, deletions, health, auto-sync)."""
        mono = time.monotonic()
        with self.lock:
            for key in list(self.active):
                rec = self.apps.get(key)
                if rec is None:
                    self.active.discard(key)
                    continue
                if not self._tick_app(rec, mono):
                    self.active.discard(key)

    def _tick_app(self, rec: AppRec, mono: float) -> bool:
        """Advance one app; returns whether it still needs the controller."""
        obj = rec.obj
        meta = obj["metadata"]
        status = obj["status"]
        if meta.get("deletionTimestamp") and not obj.get("operation"):
            if time.monotonic() < rec.delete_at:
                return True
            rec.live.clear()
            self._remove_app(rec)
            return False
        op = obj.get("operation")
        if op is not None:
            self._advance_operation(rec, op, mono)
            return True
        if rec.healthy_at:
            if mono >= rec.healthy_at:
                rec.healthy_at = 0.0
                rec.health = "Healthy"
                self.recompute(rec)
                self.touch(rec)
            else:
                return True
        automated = (obj["spec"].get("syncPolicy") or {}).get("automated")
        if rec.autosync_pending and automated is not None:
            rec.autosync_pending = False
            if status.get("sync", {}).get("status") == "OutOfSync" and self.sync_windows_allow(rec, manual=False):
                src = self._source(obj["spec"])
                operation = {
                    "sync": {
                        "revision": self.resolve_revision(src.get("repoURL", ""), src.get("targetRevision", "HEAD")),
                        "prune": bool(automated.get("prune")),
                        "syncOptions": list((obj["spec"].get("syncPolicy") or {}).get("syncOptions") or []),
                    },
                    "initiatedBy": {"automated": True},
                    "retry": copy.deepcopy((obj["spec"].get("syncPolicy") or {}).get("retry") or {"limit": 5}),
                }
                self.start_operation(rec, operation, f"initiated automated sync to '{operation['sync']['revision']}'")
                return True
        return bool(rec.healthy_at)

    def _selected_keys(self, rec: AppRec, op_sync: dict) -> list[Key]:
        keys = sorted(set(rec.target) | (set(rec.live) if op_sync.get("prune") else set()))
        wanted = op_sync.get("resources")
        if wanted:
            keys = [
                k
                for k in keys
                if any(
                    (r.get("group") or "") == k[0]
                    and r.get("kind") == k[1]
                    and r.get("name") == k[3]
                    and (not r.get("namespace") or r.get("namespace") == k[2])
                    for r in wanted
                )
            ]
        return keys

    @staticmethod
    def _fq(key: Key) -> str:
        return f"{key[1].lower()}.{key[0]}" if key[0] else key[1].lower()

    @staticmethod
    def _steps(keys: list[Key], hooks: dict[Key, dict], manifests: dict[Key, dict]) -> list[Step]:
        """Group hooks and resources by sync phase, then wave; kinds of one wave go in Argo CD's kind order."""
        groups: dict[tuple[int, int], Step] = {}
        for key in [*keys, *hooks]:
            manifest = manifests.get(key)
            phase = resources.hook_type(manifest) if key in hooks else "Sync"
            wave = resources.wave_of(manifest)
            step = groups.setdefault((PHASE_RANK.get(phase, 1), wave), Step(phase, wave, [], []))
            step.keys.append(key)
            if key in hooks:
                step.hooks.append(key)
        for step in groups.values():
            step.keys.sort(key=lambda k: (k in step.hooks, resources.KIND_ORDER.get(k[1], 5), k[1], k[3]))
        return [groups[g] for g in sorted(groups)]

    def _plan(self, rec: AppRec, op_sync: dict, run: Run) -> None:
        """Lay out the sync: hooks run only in full, real syncs (Argo CD skips them on selective syncs)."""
        spec = rec.obj["spec"]
        partial = bool(op_sync.get("resources"))
        dry = bool(op_sync.get("dryRun"))
        run.hook_manifests = {} if partial or dry else resources.hooks(rec.name, spec, run.revision)
        manifests = {**rec.live, **resources.render(rec.name, spec, run.revision), **run.hook_manifests}
        run.events = []
        for step in self._steps(run.keys, run.hook_manifests, manifests):
            if step.hooks:
                run.events += [("start", step), ("finish", step)]
            else:
                run.events.append(("apply", step))

    def _hook_row(self, key: Key, manifest: dict, hook_phase: str, message: str) -> dict:
        group, kind, ns, name = key
        phase = resources.hook_type(manifest)
        return {
            "group": group,
            "version": "v1",
            "kind": kind,
            "namespace": ns,
            "name": name,
            "status": "Synced",
            "message": message,
            "hookType": phase,
            "hookPhase": hook_phase,
            "syncPhase": phase,
        }

    @staticmethod
    def _waiting(what: str, keys: list[Key], noun: str) -> str:
        group, kind, _ns, name = keys[0]
        message = f"waiting for {what} {group}/{kind}/{name}"
        if len(keys) > 1:
            message += f" and {len(keys) - 1} more {noun}"
        return message

    def _run_event(self, rec: AppRec, run: Run, state: dict, op_sync: dict, event: str, step: Step) -> str:
        """Apply one step of the plan to the syncResult (and the fake cluster); returns a failure message or ''."""
        rows = state["syncResult"]["resources"]
        dry = bool(op_sync.get("dryRun"))
        plain = [k for k in step.keys if k not in step.hooks]
        if event in ("start", "apply"):
            for key in step.hooks:
                manifest = run.hook_manifests[key]
                rows.append(self._hook_row(key, manifest, "Running", f"{self._fq(key)}/{key[3]} created"))
                live = resources.make_live(manifest, self.uid(), self.next_rv(), now_ts())
                live["status"] = {"active": 1}
                rec.hooks[key] = live
            for key in plain:
                verb = "configured" if key in rec.live else "created"
                if key not in rec.target:
                    verb = "pruned"
                suffix = " (dry run)" if dry else ""
                code = "Pruned" if verb == "pruned" else "Synced"
                rows.append(self._result_row(key, code, f"{self._fq(key)}/{key[3]} {verb}{suffix}"))
            if not dry:
                self._apply(rec, [k for k in plain if not (rec.fail_sync and k[1] == "Deployment")], run, op_sync)
            if step.hooks:
                state["message"] = self._waiting("completion of hook", step.hooks, "hooks")
            else:
                healthy = [k for k in plain if k[1] in ("Deployment", "Service")]
                state["message"] = (
                    self._waiting("healthy state of", healthy, "resources") if healthy and not dry else RUNNING_MESSAGE
                )
            return ""
        failing = (rec.obj["metadata"].get("labels") or {}).get("sim/fail-hook") == "true"
        failure = ""
        for key in step.hooks:
            row = next(r for r in rows if r.get("hookType") and (r["kind"], r["name"]) == (key[1], key[3]))
            if failing and step.phase == "PreSync":
                row["hookPhase"] = "Failed"
                row["message"] = HOOK_FAILED_MESSAGE
                rec.hooks[key]["status"] = {"failed": 1}
                failure = HOOK_FAILED_MESSAGE
            else:
                row["hookPhase"] = "Succeeded"
                row["message"] = HOOK_SUCCEEDED_MESSAGE
                rec.hooks.pop(key, None)  # hook-delete-policy HookSucceeded
        state["message"] = RUNNING_MESSAGE
        return failure

    def _apply(self, rec: AppRec, keys: list[Key], run: Run, op_sync: dict) -> None:
        """kubectl apply (or delete, when pruning) of some of the app's resources in the fake cluster."""
        if not keys:
            return
        rendered = resources.render(rec.name, rec.obj["spec"], run.revision)
        for key in keys:
            if key in rendered:
                manifest = rendered[key]
                old = rec.live.get(key)
                if old is None:
                    rec.live[key] = resources.make_live(manifest, self.uid(), self.next_rv(), now_ts())
                else:
                    merged = resources.deep_merge(old, manifest)
                    if merged == old:
                        continue
                    merged["metadata"]["resourceVersion"] = str(self.next_rv())
                    if key[1] == "Deployment":
                        merged["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
                    rec.live[key] = merged
                if key[1] == "Deployment":
                    # A new or changed Deployment rolls out before it is healthy again.
                    rec.health = "Progressing"
                    rec.healthy_at = time.monotonic() + max(self.faults.sync_seconds / 2, 0.05)
            elif op_sync.get("prune"):
                rec.live.pop(key, None)
        self.recompute(rec)

    def _result_row(self, key: Key, status: str, message: str) -> dict:
        group, kind, ns, name = key
        return {
            "group": group,
            "version": "v1",
            "kind": kind,
            "namespace": ns,
            "name": name,
            "status": status,
            "message": message,
            "hookPhase": "Running",
            "syncPhase": "Sync",
        }

    def _advance_operation(self, rec: AppRec, op: dict, mono: float) -> None:
        status = rec.obj["status"]
        op_sync = op.get("sync") or {}
        src = self._source(rec.obj["spec"])
        state = status.get("operationState")
        if state is None:
            revision = op_sync.get("revision") or self.resolve_revision(
                src.get("repoURL", ""), src.get("targetRevision", "")
            )
            revision = self.resolve_revision(src.get("repoURL", ""), revision)
            rec.run = Run(started=mono, keys=self._selected_keys(rec, op_sync), revision=revision)
            self._plan(rec, op_sync, rec.run)
            status["operationState"] = {
                "operation": copy.deepcopy(op),
                "phase": "Running",
                "message": RUNNING_MESSAGE,
                "startedAt": now_ts(),
                "syncResult": {"resources": [], "revision": revision, "source": copy.deepcopy(src)},
            }
            self.touch(rec)
            return
        if rec.run is None:
            revision = self.resolve_revision(src.get("repoURL", ""), op_sync.get("revision") or "")
            rec.run = Run(started=mono, keys=self._selected_keys(rec, op_sync), revision=revision)
            self._plan(rec, op_sync, rec.run)
            # A restarted controller replays the plan: the results so far are re-derived from the start.
            state["syncResult"]["resources"] = []
        run = rec.run
        if state["phase"] == "Terminating":
            # Argo CD deletes the hooks still running when an operation is terminated.
            for key, live in list(rec.hooks.items()):
                if (live.get("status") or {}).get("active"):
                    rec.hooks.pop(key)
            self._finish(rec, "Failed", "Operation terminated", success=False)
            return
        if run.retry_at:
            if mono < run.retry_at:
                return
            run.retry_at = 0.0
            run.started = mono
            run.done = 0
            rec.hooks.clear()
            state["syncResult"]["resources"] = []
            state.pop("finishedAt", None)
            state["message"] = RUNNING_MESSAGE
            self.touch(rec)
            return
        total = max(self.faults.sync_seconds, 0.0)
        elapsed = mono - run.started
        n = len(run.events)
        dry = bool(op_sync.get("dryRun"))
        # One step per tick at most, so every phase and wave is visible to readers even when time is short.
        due = n if total == 0 else min(n, int(math.floor(elapsed / total * (n + 1))))
        if run.done < due:
            event, step = run.events[run.done]
            run.done += 1
            failure = self._run_event(rec, run, state, op_sync, event, step)
            self.touch(rec)
            if failure:
                self._fail(
                    rec,
                    op,
                    state,
                    run,
                    f"one or more synchronization tasks completed unsuccessfully, reason: {failure}",
                    mono,
                )
            return
        if elapsed < total or run.done < n:
            return
        manual = not (op.get("initiatedBy") or {}).get("automated")
        if not self.sync_windows_allow(rec, manual=manual):
            if state.get("message") != "Sync operation blocked by sync window":
                state["message"] = "Sync operation blocked by sync window"
                self.touch(rec)
            return
        if rec.fail_sync and not dry:
            key = next((k for k in run.keys if k[1] == "Deployment"), run.keys[-1] if run.keys else None)
            message = (
                "one or more objects failed to apply, reason: Deployment.apps is invalid: "
                'spec.template.spec.containers[0].image: Invalid value: "": must not be empty'
            )
            if key is not None:
                rows = [
                    r
                    for r in state["syncResult"]["resources"]
                    if r.get("hookType") or (r["kind"], r["name"]) != (key[1], key[3])
                ]
                rows.append(self._result_row(key, "SyncFailed", message.split("reason: ", 1)[1]))
                state["syncResult"]["resources"] = rows
            self._fail(rec, op, state, run, message, mono)
            return
        self._finish(rec, "Succeeded", SUCCESS_MESSAGE, success=True)

    def _fail(self, rec: AppRec, op: dict, state: dict, run: Run, message: str, mono: float) -> None:
        """A failed attempt: retried while the operation's retry limit allows, else the operation fails."""
        retry = op.get("retry") or {}
        limit = int(retry.get("limit") or 0)
        count = int(state.get("retryCount") or 0)
        if limit < 0 or count < limit:
            state["retryCount"] = count + 1
            state["finishedAt"] = now_ts()
            state["message"] = f"{message}. Retrying attempt #{count + 1} at {now_ts()}."
            run.retry_at = mono + max(self.faults.sync_seconds, 0.05)
            self.touch(rec)
            return
        self._finish(rec, "Failed", message, success=False)

    def _finish(self, rec: AppRec, phase: str, message: str, success: bool) -> None:
        obj = rec.obj
        status = obj["status"]
        op = obj.pop("operation", None) or {}
        state = status["operationState"]
        run = rec.run
        rec.run = None
        state["phase"] = phase
        state["message"] = message
        state["finishedAt"] = now_ts()
        op_sync = op.get("sync") or {}
        dry = bool(op_sync.get("dryRun"))
        partial = bool(op_sync.get("resources"))
        if success and not dry and run is not None:
            revision = run.revision
            self._apply(rec, run.keys, run, op_sync)  # the waves applied them already; this is a no-op then
            if not partial:
                rec.synced_revision = revision
                src = self._source(obj["spec"])
                history = status.setdefault("history", [])
                next_id = (history[-1]["id"] + 1) if history else 0
                history.append(
                    {
                        "id": next_id,
                        "revision": revision,
                        "deployedAt": state["finishedAt"],
                        "deployStartedAt": state.get("startedAt", state["finishedAt"]),
                        "source": copy.deepcopy(op_sync.get("source") or src),
                        "initiatedBy": copy.deepcopy(op.get("initiatedBy") or {}),
                    }
                )
                limit = obj["spec"].get("revisionHistoryLimit")
                limit = DEFAULT_HISTORY_LIMIT if limit is None else int(limit)
                del history[: max(len(history) - limit, 0)]
                if not history:
                    status.pop("history", None)
            rec.health_override = None
            rec.health = "Progressing"
            rec.healthy_at = time.monotonic() + max(self.faults.sync_seconds / 2, 0.05)
            self.active.add(rec.key)
        before = status.get("sync", {}).get("status")
        self.recompute(rec)
        after = status["sync"]["status"]
        rev = run.revision if run else ""
        self.event(
            rec,
            "OperationCompleted",
            f"Sync operation to {rev} {'succeeded' if success else 'failed: ' + message}",
            "Normal" if success else "Warning",
        )
        if before != after:
            self.event(rec, "ResourceUpdated", f"Updated sync status: {before} -> {after}")
        self.touch(rec)

    # ------------------------------------------------------------------ resource actions

    def run_action(self, rec: AppRec, key: Key, action: str, params: dict[str, str], user: str) -> None:
        live = rec.live[key]
        new = copy.deepcopy(live)
        if action == "restart":
            annotations = new["spec"]["template"]["metadata"].setdefault("annotations", {})
            annotations["kubectl.kubernetes.io/restartedAt"] = now_ts()
        elif action == "pause":
            new["spec"]["paused"] = True
        elif action == "resume":
            new["spec"].pop("paused", None)
        elif action == "scale":
            replicas = int(params["replicas"])
            new["spec"]["replicas"] = replicas
            new["status"] = {"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas}
        new["metadata"]["resourceVersion"] = str(self.next_rv())
        new["metadata"]["generation"] = int(new["metadata"].get("generation", 1)) + 1
        rec.live[key] = new
        self.recompute(rec)
        group, kind, ns, name = key
        self.event(rec, "ResourceActionRan", f"{user} ran action {action} on resource {group}/{kind}/{ns}/{name}")
        self.touch(rec)

    def delete_resource(self, rec: AppRec, key: Key, user: str) -> None:
        rec.live.pop(key, None)
        self.recompute(rec)
        group, kind, ns, name = key
        self.event(rec, "ResourceDeleted", f"{user} deleted resource {group}/{kind} '{name}'")
        self.touch(rec)

    # ------------------------------------------------------------------ test helpers (public)

    def app(self, name: str, namespace: str = NAMESPACE) -> AppRec:
        return self.apps[(namespace, name)]

    def drift(self, name: str, namespace: str = NAMESPACE) -> None:
        """Someone edited the cluster: bump the live replicas so the app goes OutOfSync (selfHeal re-syncs)."""
        with self.lock:
            rec = self.apps[(namespace, name)]
            key = next((k for k in rec.live if k[1] == "Deployment"), None)
            if key is None:
                key = next(iter(rec.target))
                rec.live[key] = resources.make_live(rec.target[key], self.uid(), self.next_rv(), now_ts())
            live = copy.deepcopy(rec.live[key])
            if key[1] == "Deployment":
                live["spec"]["replicas"] = int(live["spec"].get("replicas") or 1) + 1
            else:
                live.setdefault("data", {})["DRIFT"] = str(self.rv)
            live["metadata"]["resourceVersion"] = str(self.next_rv())
            rec.live[key] = live
            self.recompute(rec)
            self.touch(rec)
            automated = (rec.obj["spec"].get("syncPolicy") or {}).get("automated")
            if automated and automated.get("selfHeal"):
                rec.autosync_pending = True
                self.active.add(rec.key)

    def set_health(self, name: str, health: str, namespace: str = NAMESPACE) -> None:
        with self.lock:
            rec = self.apps[(namespace, name)]
            rec.health_override = health
            self.recompute(rec)
            self.touch(rec)

    def new_commit(self, repo: str) -> str:
        """Push a commit to a fake repo: apps tracking its branches go OutOfSync (automated ones sync)."""
        with self.lock:
            self.repo_commits[repo] = self.repo_commits.get(repo, 0) + 1
            for rec in list(self.apps.values()):
                if self._source(rec.obj["spec"]).get("repoURL") == repo:
                    self.recompute(rec)
                    self.touch(rec)
                    if (rec.obj["spec"].get("syncPolicy") or {}).get("automated") is not None:
                        rec.autosync_pending = True
                        self.active.add(rec.key)
            return self.resolve_revision(repo, "HEAD")

    def get_app_json(self, name: str, namespace: str = NAMESPACE) -> dict:
        with self.lock:
            return json.loads(self.apps[(namespace, name)].json())

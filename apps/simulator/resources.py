"""Fake Kubernetes resources behind each application: rendering from git, live state, tree, diffs, actions.

A resource key is (group, kind, namespace, name). "Target" manifests are rendered deterministically from the
app's source and a git revision; "live" manifests are what the fake cluster holds. Sync makes live match target.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

Key = tuple[str, str, str, str]

APP_INSTANCE_LABEL = "app.kubernetes.io/instance"
HOOK_ANNOTATION = "argocd.argoproj.io/hook"
HOOK_DELETE_POLICY = "argocd.argoproj.io/hook-delete-policy"
WAVE_ANNOTATION = "argocd.argoproj.io/sync-wave"
# Argo CD applies kinds of one wave in a fixed order (namespaces and config first, workloads last).
KIND_ORDER = {"Namespace": 0, "ConfigMap": 1, "Secret": 1, "Service": 2, "Deployment": 3, "Job": 4}


def clone(obj: Any) -> Any:
    """Deep copy for plain JSON data; a JSON round trip is several times faster than copy.deepcopy."""
    return json.loads(json.dumps(obj))


def h(text: str, n: int = 40) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:n]


def api_version(group: str, version: str = "v1") -> str:
    return f"{group}/{version}" if group else version


def component_of(app_name: str, source: dict) -> str:
    """Workload name: the last path segment that is not an overlay/env directory, else the app name."""
    path = (source.get("path") or source.get("chart") or app_name).strip("/")
    parts = [p for p in path.split("/") if p and p not in ("overlays", "base", "dev", "staging", "prod", "envs")]
    return (parts[-1] if parts else app_name)[:40].lower().replace("_", "-") or "app"


def render(app_name: str, spec: dict, revision: str) -> dict[Key, dict]:
    """Target manifests for an app at a revision (what `helm template`/`kustomize build` would emit)."""
    source = spec.get("source") or ((spec.get("sources") or [{}])[0])
    ns = (spec.get("destination") or {}).get("namespace") or "default"
    name = component_of(app_name, source)
    replicas = int(h(app_name, 2), 16) % 3 + 1
    helm = source.get("helm") or {}
    for param in helm.get("parameters") or []:
        if param.get("name") in ("replicaCount", "replicas") and str(param.get("value", "")).isdigit():
            replicas = int(param["value"])
    image = f"registry.example.com/{name}:{revision[:7]}"
    for img in (source.get("kustomize") or {}).get("images") or []:
        image = str(img).split("=")[-1]
    labels = {APP_INSTANCE_LABEL: app_name, "app.kubernetes.io/name": name}
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": dict(labels), "annotations": {WAVE_ANNOTATION: "1"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": name}},
                "spec": {
                    "containers": [
                        {
                            "name": name,
                            "image": image,
                            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                            "envFrom": [{"configMapRef": {"name": f"{name}-config"}}],
                        }
                    ]
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": dict(labels), "annotations": {WAVE_ANNOTATION: "0"}},
        "spec": {
            "selector": {"app.kubernetes.io/name": name},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
        },
    }
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"{name}-config",
            "namespace": ns,
            "labels": dict(labels),
            "annotations": {WAVE_ANNOTATION: "-1"},
        },
        "data": {"LOG_LEVEL": "info", "APP_NAME": app_name, "GIT_REVISION": revision[:7]},
    }
    return {key_of(m): m for m in (config, service, deploy)}


def has_post_sync_hook(app_name: str) -> bool:
    """About half the apps also run a smoke test after the sync (decided by the name, so it is stable)."""
    return int(h(f"post-sync:{app_name}", 2), 16) % 2 == 0


def hooks(app_name: str, spec: dict, revision: str) -> dict[Key, dict]:
    """Hook Jobs the app's manifests carry: a PreSync migration for every app, a PostSync smoke test for some.

    Hooks are not part of the compared target (Argo CD leaves them out of status.resources); they only exist
    while a sync runs them. HookSucceeded deletes a hook once it succeeded; a failed one stays for inspection.
    """
    source = spec.get("source") or ((spec.get("sources") or [{}])[0])
    ns = (spec.get("destination") or {}).get("namespace") or "default"
    name = component_of(app_name, source)
    out = {}
    phases = [("PreSync", "migrate", "-1")]
    if has_post_sync_hook(app_name):
        phases.append(("PostSync", "smoke-test", "0"))
    for phase, suffix, wave in phases:
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": f"{name}-{suffix}"[:63],
                "namespace": ns,
                "labels": {APP_INSTANCE_LABEL: app_name},
                "annotations": {HOOK_ANNOTATION: phase, HOOK_DELETE_POLICY: "HookSucceeded", WAVE_ANNOTATION: wave},
            },
            "spec": {
                "backoffLimit": 1,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": suffix, "image": f"registry.example.com/{name}:{revision[:7]}"}],
                    }
                },
            },
        }
        out[key_of(job)] = job
    return out


def wave_of(manifest: dict | None) -> int:
    raw = ((manifest or {}).get("metadata") or {}).get("annotations", {}).get(WAVE_ANNOTATION, "0")
    try:
        return int(raw)
    except ValueError:
        return 0


def hook_type(manifest: dict | None) -> str:
    return ((manifest or {}).get("metadata") or {}).get("annotations", {}).get(HOOK_ANNOTATION, "")


def key_of(manifest: dict) -> Key:
    group = manifest["apiVersion"].split("/")[0] if "/" in manifest["apiVersion"] else ""
    meta = manifest["metadata"]
    return (group, manifest["kind"], meta.get("namespace", ""), meta["name"])


def make_live(target: dict, uid: str, rv: int, created: str) -> dict:
    """A live object as the API server would return it: target plus server-populated fields."""
    live = clone(target)
    meta = live["metadata"]
    meta.update({"uid": uid, "resourceVersion": str(rv), "creationTimestamp": created, "generation": 1})
    if live["kind"] == "Deployment":
        replicas = live["spec"]["replicas"]
        live["spec"].setdefault("strategy", {"type": "RollingUpdate"})
        live["status"] = {"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas}
    elif live["kind"] == "Service":
        live["spec"]["clusterIP"] = f"10.96.{int(uid[:2], 16)}.{int(uid[2:4], 16)}"
        live["spec"]["type"] = "ClusterIP"
    return live


def is_subset(target: Any, live: Any) -> bool:
    """Argo-style comparison: fields Git declares must match; extra live fields do not cause a diff."""
    if isinstance(target, dict):
        return isinstance(live, dict) and all(k in live and is_subset(v, live[k]) for k, v in target.items())
    if isinstance(target, list):
        return isinstance(live, list) and len(target) == len(live) and all(map(is_subset, target, live))
    return target == live


def deep_merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = deep_merge(base.get(k), v)
        return out
    return copy.deepcopy(over)


def normalized(live: dict | None) -> dict | None:
    if live is None:
        return None
    out = copy.deepcopy(live)
    out.get("metadata", {}).pop("managedFields", None)
    return out


def state_json(obj: Any) -> str:
    # Missing live or target objects are reported as the literal string "null".
    return "null" if obj is None else json.dumps(obj, separators=(",", ":"), sort_keys=True)


def pod_names(deploy: dict) -> tuple[str, list[str]]:
    """ReplicaSet name and pod names, derived from the pod template so a restart rolls them."""
    template = json.dumps(deploy["spec"]["template"], sort_keys=True)
    rs = f"{deploy['metadata']['name']}-{h(template, 10)}"
    count = int(deploy["spec"].get("replicas") or 0)
    return rs, [f"{rs}-{h(rs + str(i), 5)}" for i in range(count)]


def tree(live: dict[Key, dict], health: str, created: str) -> dict:
    """ApplicationTree for the live objects (controller cache view)."""
    nodes: list[dict] = []
    for key in sorted(live):
        obj = live[key]
        group, kind, ns, name = key
        meta = obj["metadata"]
        node: dict[str, Any] = {
            "version": "v1",
            "kind": kind,
            "namespace": ns,
            "name": name,
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "createdAt": meta.get("creationTimestamp", created),
        }
        if group:
            node["group"] = group
        if kind == "Deployment":
            dep_health = "Suspended" if obj["spec"].get("paused") else health
            node["health"] = {"status": dep_health}
            revision = meta.get("annotations", {}).get("deployment.kubernetes.io/revision", "1")
            node["info"] = [{"name": "Revision", "value": f"Rev:{revision}"}]
            images = [c["image"] for c in obj["spec"]["template"]["spec"]["containers"]]
            node["images"] = images
            nodes.append(node)
            rs_name, pods = pod_names(obj)
            rs_uid = h(meta["uid"] + rs_name, 32)
            rs_node = {
                "group": "apps",
                "version": "v1",
                "kind": "ReplicaSet",
                "namespace": ns,
                "name": rs_name,
                "uid": _uuid(rs_uid),
                "resourceVersion": meta["resourceVersion"],
                "createdAt": meta.get("creationTimestamp", created),
                "parentRefs": [
                    {"group": "apps", "kind": "Deployment", "namespace": ns, "name": name, "uid": meta["uid"]}
                ],
                "health": {"status": "Healthy" if health != "Degraded" else "Degraded"},
                "info": [{"name": "Revision", "value": f"Rev:{revision}"}],
                "images": images,
            }
            nodes.append(rs_node)
            for i, pod in enumerate(pods):
                pod_health = {"Degraded": "Degraded", "Progressing": "Progressing"}.get(health, "Healthy")
                info = [
                    {"name": "Node", "value": f"node-{int(h(pod, 2), 16) % 3 + 1}"},
                    {"name": "Containers", "value": "0/1" if pod_health != "Healthy" else "1/1"},
                ]
                if pod_health == "Degraded":
                    info.insert(0, {"name": "Status Reason", "value": "CrashLoopBackOff"})
                    info.append({"name": "Restart Count", "value": str(3 + i)})
                nodes.append(
                    {
                        "version": "v1",
                        "kind": "Pod",
                        "namespace": ns,
                        "name": pod,
                        "uid": _uuid(h(rs_uid + pod, 32)),
                        "resourceVersion": meta["resourceVersion"],
                        "createdAt": meta.get("creationTimestamp", created),
                        "parentRefs": [
                            {
                                "group": "apps",
                                "kind": "ReplicaSet",
                                "namespace": ns,
                                "name": rs_name,
                                "uid": rs_node["uid"],
                            }
                        ],
                        "info": info,
                        "networkingInfo": {"labels": dict(obj["spec"]["template"]["metadata"]["labels"])},
                        "images": images,
                        "health": {"status": pod_health},
                    }
                )
        elif kind == "Job":
            job = obj.get("status") or {}
            node["health"] = {
                "status": "Degraded" if job.get("failed") else ("Healthy" if job.get("succeeded") else "Progressing")
            }
            nodes.append(node)
        elif kind == "Service":
            node["health"] = {"status": "Healthy"}
            node["networkingInfo"] = {"targetLabels": dict(obj["spec"].get("selector") or {})}
            nodes.append(node)
        else:
            nodes.append(node)
    return {"nodes": nodes, "hosts": _hosts(nodes)}


def _hosts(nodes: list[dict]) -> list[dict]:
    names = sorted({i["value"] for n in nodes if n["kind"] == "Pod" for i in n.get("info", []) if i["name"] == "Node"})
    return [
        {
            "name": name,
            "resourcesInfo": [
                {"resourceName": "cpu", "requestedByApp": 250, "requestedByNeighbors": 1750, "capacity": 4000},
                {
                    "resourceName": "memory",
                    "requestedByApp": 268435456,
                    "requestedByNeighbors": 2147483648,
                    "capacity": 8589934592,
                },
            ],
            "systemInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kernelVersion": "6.1.0",
                "containerRuntimeVersion": "containerd://1.7.20",
                "kubeletVersion": "v1.31.2",
                "kubeProxyVersion": "v1.31.2",
                "osImage": "Ubuntu 24.04 LTS",
            },
            "labels": {"kubernetes.io/hostname": name},
        }
        for name in names
    ]


def _uuid(hex32: str) -> str:
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:32]}"


def deployment_actions(live: dict | None) -> list[dict]:
    paused = bool(live and live.get("spec", {}).get("paused"))
    return [
        {"name": "restart", "iconClass": "fa fa-fw fa-redo", "disabled": False},
        {"name": "pause", "iconClass": "fa fa-fw fa-pause-circle", "disabled": paused},
        {"name": "resume", "iconClass": "fa fa-fw fa-play-circle", "disabled": not paused},
        {"name": "scale", "iconClass": "fa fa-fw fa-plus-circle", "disabled": False, "params": [{"name": "replicas"}]},
    ]

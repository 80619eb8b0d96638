"""Application endpoints: CRUD, operations, tree/diff/logs/events, resource actions and the watch stream."""

from __future__ import annotations

import copy
import hashlib
import json
import queue
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from apps.core.jsonpatch import PatchError, apply_json_patch, apply_merge_patch

from .. import resources
from ..errors import ApiError, denied, invalid, not_found, precondition, unknown
from ..httpd import Raw, Request, Response, Router, Stream
from ..state import NAMESPACE, AppRec, State, dumps, now_ts
from .common import (
    destination_permitted,
    list_meta,
    parse_fields,
    parse_selector,
    project_fields,
    selector_matches,
    source_permitted,
)

# Paths the app list honours in `fields` (pkg/apiclient/application/forwarder_overwrite.go), minus `items.`.
LIST_FIELDS = {
    "metadata.name",
    "metadata.namespace",
    "metadata.annotations",
    "metadata.labels",
    "metadata.creationTimestamp",
    "metadata.deletionTimestamp",
    "spec",
    "spec.destination",
    "spec.project",
    "spec.source",
    "spec.sources",
    "spec.sourceHydrator",
    "spec.syncPolicy",
    "status.sourceHydrator",
    "status.summary",
    "status.health",
    "status.resources",
    "status.sync.status",
    "status.sync.revision",
    "status.operationState.startedAt",
    "status.operationState.finishedAt",
    "status.operationState.phase",
    "operation.sync",
    "status.operationState.operation.sync",
}
MAX_LOG_PODS = 10
AUTHORS = [
    "Dana Smith <dana@acme.example>",
    "Ravi Patel <ravi@acme.example>",
    "Mei Chen <mei@acme.example>",
    "Jonas Weber <jonas@acme.example>",
    "renovate[bot] <bot@renovateapp.com>",
]
MESSAGES = [
    "Bump image to latest build",
    "Increase memory limit for worker",
    "Add readiness probe",
    "chore(deps): update helm chart",
    "Rotate config for new endpoint",
    "Scale down staging to save cost",
    "fix: correct service port",
]


def rbac_name(rec_or_project: Any, name: str = "", namespace: str = NAMESPACE) -> str:
    if isinstance(rec_or_project, AppRec):
        project, name, namespace = rec_or_project.project, rec_or_project.name, rec_or_project.namespace
    else:
        project = rec_or_project
    if namespace and namespace != NAMESPACE:
        return f"{project}/{namespace}/{name}"
    return f"{project}/{name}"


def not_allowed_in_project(project: str) -> ApiError:
    """getAppProject's vague answer for a missing project and for an app namespace it does not allow."""
    return invalid(f'app is not allowed in project "{project}", or the project does not exist')


def _required_missing(field: str) -> ApiError:
    # proto2 required fields fail in the gateway's loopback marshal: codes.Internal.
    return ApiError(13, f'grpc: error while marshaling: proto: required field "{field}" not set')


def register(router: Router, sim: Any) -> None:
    state: State = sim.state

    # ------------------------------------------------------------------ lookups

    def lookup(
        req: Request, name: str | None = None, project: str | None = None, namespace: str | None = None
    ) -> AppRec:
        """getAppEnforceRBAC: 403 without `project` (no enumeration), 404 with it.

        `appNamespace` addresses an app outside the control plane's namespace. A namespace that
        `application.namespaces` does not enable is refused like a missing app without project (403, whether
        or not a project is given); an app whose project's `sourceNamespaces` does not allow its namespace
        answers getAppProject's vague 400."""
        if name is None:
            name = req.params.get("name") or req.params.get("applicationName") or req.params.get("appName") or ""
        ns = namespace or req.q("appNamespace") or NAMESPACE
        if project is None:
            projects = req.qs("project") or req.qs("projects")
            if len(projects) > 1:
                raise invalid("only one project can be specified")
            project = projects[0] if projects else ""
        with state.lock:
            if project and not req.ctx.can("applications", "get", rbac_name(project, name, ns)):
                raise denied("permission denied")
            if not state.namespace_enabled(ns):
                raise denied("permission denied")
            rec = state.apps.get((ns, name))
            if project:
                if rec is None or rec.project != project or not req.ctx.can("applications", "get", rbac_name(rec)):
                    raise not_found(f'applications.argoproj.io "{name}" not found')
            elif rec is None or not req.ctx.can("applications", "get", rbac_name(rec)):
                raise denied("permission denied")
            if not state.project_permits_namespace(rec.project, rec.namespace):
                raise not_allowed_in_project(rec.project)
            return rec

    def app_response(rec: AppRec) -> Raw:
        with state.lock:
            return Raw(rec.json())

    # ------------------------------------------------------------------ validation

    def resolve_cluster(dest: dict) -> dict:
        server, name = dest.get("server") or "", dest.get("name") or ""
        if server and name:
            raise invalid(f"application destination can't have both name and server defined: {name} {server}")
        if not (server or name):
            raise invalid("either destination server or name must be set")
        cluster = state.cluster_of(server, name)
        if cluster is None:
            raise invalid(
                f"there are no clusters with this name: {name}"
                if name
                else f"there are no clusters with this URL: {server}"
            )
        return cluster

    def validate_spec(obj: dict) -> None:
        """validateAndNormalizeApp: project exists, destination resolvable and permitted, repo permitted."""
        name = obj["metadata"]["name"]
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            raise invalid(f"application spec for {name} is invalid: InvalidSpecError: spec is required")
        spec["project"] = spec.get("project") or "default"
        project = state.projects.get(spec["project"])
        if project is None:
            raise invalid(f'app is not allowed in project "{spec["project"]}", or the project does not exist')
        sources = [spec["source"]] if spec.get("source") else list(spec.get("sources") or [])
        if not sources:
            raise invalid(
                f"application spec for {name} is invalid: InvalidSpecError: Application must have at least one source"
            )
        for src in sources:
            if not isinstance(src, dict) or not src.get("repoURL"):
                raise invalid(
                    f"application spec for {name} is invalid: InvalidSpecError: spec.source.repoURL and either "
                    "spec.source.path, spec.source.chart, or spec.source.ref are required"
                )
        dest = spec.get("destination")
        if not isinstance(dest, dict) or not (dest.get("server") or dest.get("name")):
            raise invalid(
                f"application destination spec for {name} is invalid: either destination server or name must be set"
            )
        try:
            cluster = resolve_cluster(dest)
        except ApiError as err:
            raise invalid(f"application destination spec for {name} is invalid: {err.message}") from err
        pspec = project.get("spec") or {}
        problems = []
        for src in sources:
            if not source_permitted(pspec, src["repoURL"]):
                problems.append(f"application repo {src['repoURL']} is not permitted in project '{spec['project']}'")
        ns = dest.get("namespace") or ""
        if not destination_permitted(pspec, cluster, ns):
            problems.append(
                f"application destination server '{cluster['server']}' and namespace '{ns}' do not match any of "
                f"the allowed destinations in project '{spec['project']}'"
            )
        if problems:
            joined = ";".join(f"InvalidSpecError: {p}" for p in problems)
            raise invalid(f"application spec for {name} is invalid: {joined}")

    def normalize_incoming(body: dict) -> dict:
        if not isinstance(body.get("metadata"), dict) or not body["metadata"].get("name"):
            raise invalid("resource name may not be empty")
        meta_in = body["metadata"]
        meta = {"name": meta_in["name"], "namespace": meta_in.get("namespace") or NAMESPACE}
        for key in ("labels", "annotations", "finalizers"):
            if meta_in.get(key):
                meta[key] = copy.deepcopy(meta_in[key])
        return {"metadata": meta, "spec": copy.deepcopy(body.get("spec"))}

    # ------------------------------------------------------------------ list / get

    def list_apps(req: Request) -> Raw:
        projects = set(req.qs("project") or req.qs("projects"))
        name = req.q("name")
        repo = req.q("repo")
        ns = req.q("appNamespace")
        reqs = parse_selector(req.q("selector")) if req.q("selector") else []
        fields_raw = req.q("fields")
        whitelisted = ""
        if fields_raw:
            exclude, paths = parse_fields(fields_raw)
            keep = [p[len("items.") :] for p in paths if p.startswith("items.") and p[len("items.") :] in LIST_FIELDS]
            whitelisted = ("-" if exclude else "") + ",".join(keep)
        parts: list[str] = []
        with state.lock:
            for key in state.sorted_app_keys():
                rec = state.apps[key]
                if ns and rec.namespace != ns:
                    continue
                if not state.namespace_enabled(rec.namespace):
                    continue
                if name and rec.name != name:
                    continue
                if projects and rec.project not in projects:
                    continue
                if repo and state._source(rec.obj["spec"]).get("repoURL") != repo:
                    continue
                if reqs and not selector_matches(reqs, rec.obj["metadata"].get("labels") or {}):
                    continue
                if not req.ctx.can("applications", "get", rbac_name(rec)):
                    continue
                # Every app is projected and encoded on every call, as Argo CD's list forwarder does
                # (forwarder_overwrite.go): no per-app cache makes the list cheaper than the real one.
                parts.append(dumps(project_list_item(rec.obj, whitelisted) if fields_raw else rec.obj))
            meta = dumps(list_meta(state))
        return Raw('{"metadata":' + meta + ',"items":[' + ",".join(parts) + "]}")

    def project_list_item(obj: dict, whitelisted: str) -> dict:
        if not whitelisted or whitelisted == "-":
            return {} if not whitelisted.startswith("-") else obj
        out = project_fields(obj, whitelisted)
        if "status.operationState.operation.sync" in whitelisted.split(","):
            result = ((obj.get("status") or {}).get("operationState") or {}).get("syncResult")
            if result is not None:
                out.setdefault("status", {}).setdefault("operationState", {}).setdefault("operation", {})["sync"] = (
                    result
                )
        return out

    def get_app(req: Request) -> Raw:
        rec = lookup(req)
        if req.has("refresh"):
            # Argo patches the refresh annotation and waits for the controller; we reconcile inline.
            with state.lock:
                rec.obj["status"]["reconciledAt"] = now_ts()
                state.recompute(rec)
                state.touch(rec)
        return app_response(rec)

    router.add("GET", "/api/v1/applications", list_apps)
    router.add("GET", "/api/v1/applications/{name}", get_app)

    # ------------------------------------------------------------------ create / update / patch / delete

    def create_app(req: Request) -> Raw:
        obj = normalize_incoming(req.obj())
        obj["spec"] = obj["spec"] if isinstance(obj["spec"], dict) else {}
        obj["spec"]["project"] = obj["spec"].get("project") or "default"
        name, ns = obj["metadata"]["name"], obj["metadata"]["namespace"]
        req.ctx.require("applications", "create", rbac_name(obj["spec"]["project"], name, ns))
        upsert = req.qbool("upsert")
        with state.lock:
            # Create: getAppProject (sourceNamespaces), validation, then the namespace must be enabled.
            if obj["spec"]["project"] in state.projects and not state.project_permits_namespace(
                obj["spec"]["project"], ns
            ):
                raise not_allowed_in_project(obj["spec"]["project"])
            validate_spec(obj)
            if not state.namespace_enabled(ns):
                # A plain error in Argo CD (security.NamespaceNotPermittedError): codes.Unknown.
                raise unknown(f"namespace '{ns}' is not permitted")
            existing = state.apps.get((ns, name))
            if existing is not None:
                same = existing.obj["spec"] == obj["spec"] and all(
                    (existing.obj["metadata"].get(k) or None) == (obj["metadata"].get(k) or None)
                    for k in ("labels", "annotations", "finalizers")
                )
                if same:
                    return Raw(existing.json())
                if not upsert:
                    raise invalid("existing application spec is different, use upsert flag to force update")
                req.ctx.require("applications", "update", rbac_name(existing))
                # An upsert replaces spec and finalizers but merges the request's labels and annotations into
                # the stored ones (updateApp with merge); PUT and PATCH replace them.
                for key in ("labels", "annotations"):
                    merged = {**(existing.obj["metadata"].get(key) or {}), **(obj["metadata"].get(key) or {})}
                    if merged:
                        obj["metadata"][key] = copy.deepcopy(merged)
                state.replace_app(existing, obj, req.ctx.username)
                return Raw(existing.json())
            rec = state.add_app(obj, req.ctx.username)
            return Raw(rec.json())

    def apply_update(req: Request, rec: AppRec, new_obj: dict) -> None:
        """validateAndUpdateApp: moving projects needs create in the new and update in the old project."""
        new_project = (new_obj.get("spec") or {}).get("project") or "default"
        if new_project != rec.project:
            req.ctx.require("applications", "update", rbac_name(rec))
            req.ctx.require("applications", "create", rbac_name(new_project, rec.name, rec.namespace))
        with state.lock:
            if new_project in state.projects and not state.project_permits_namespace(new_project, rec.namespace):
                raise not_allowed_in_project(new_project)
            validate_spec(new_obj)
            state.replace_app(rec, new_obj, req.ctx.username)

    def update_app(req: Request) -> Raw:
        name = req.params["application.metadata.name"]
        body = req.obj()
        meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
        # Update addresses the app by the body's metadata.namespace (validateAndUpdateApp).
        rec = lookup(req, name=name, namespace=meta.get("namespace") or None)
        req.ctx.require("applications", "update", rbac_name(rec))
        body.setdefault("metadata", {})["name"] = name
        body["metadata"]["namespace"] = rec.namespace
        obj = normalize_incoming(body)
        apply_update(req, rec, obj)
        return app_response(rec)

    def update_spec(req: Request) -> Raw:
        rec = lookup(req)
        req.ctx.require("applications", "update", rbac_name(rec))
        spec = req.obj()
        with state.lock:
            obj = {"metadata": copy.deepcopy(rec.obj["metadata"]), "spec": spec}
        apply_update(req, rec, obj)
        with state.lock:
            return Raw(dumps(rec.obj["spec"]))

    def patch_app(req: Request) -> Raw:
        rec = lookup(req)
        req.ctx.require("applications", "update", rbac_name(rec))
        body = req.obj()
        patch_text = body.get("patch") or ""
        patch_type = body.get("patchType") or ""
        with state.lock:
            current = json.loads(rec.json())
        if patch_type in ("json", ""):
            try:
                operations = json.loads(patch_text)
            except ValueError as exc:
                raise unknown(f"error decoding json patch: {exc}") from exc
            if not isinstance(operations, list):
                raise unknown(
                    "error decoding json patch: json: cannot unmarshal object into Go value of type jsonpatch.Patch"
                )
            try:
                patched = apply_json_patch(current, operations)
            except PatchError as exc:
                raise unknown(f"error applying patch: {exc}") from exc
        elif patch_type == "merge":
            try:
                merge = json.loads(patch_text)
            except ValueError as exc:
                raise unknown(f"error calculating merge patch: {exc}") from exc
            patched = apply_merge_patch(current, merge)
        else:
            raise invalid(f"Patch type '{patch_type}' is not supported")
        if not isinstance(patched, dict) or not isinstance(patched.get("spec"), dict):
            raise invalid(f"application spec for {rec.name} is invalid: InvalidSpecError: spec is required")
        patched.setdefault("metadata", {})["name"] = rec.name
        patched["metadata"]["namespace"] = rec.namespace
        apply_update(req, rec, normalize_incoming(patched))
        return app_response(rec)

    def delete_app(req: Request) -> dict:
        rec = lookup(req)
        req.ctx.require("applications", "delete", rbac_name(rec))
        cascade = req.q("cascade", "true").lower() not in ("false", "0", "f")
        policy = req.q("propagationPolicy")
        if not cascade and policy:
            raise invalid("cannot set propagation policy when cascading is disabled")
        if policy and policy not in ("foreground", "background"):
            raise invalid(f"invalid propagation policy: {policy}")
        with state.lock:
            if state.apps.get(rec.key) is rec:
                state.delete_app(rec, cascade, policy, req.ctx.username)
        return {}

    router.add("POST", "/api/v1/applications", create_app)
    router.add("PUT", "/api/v1/applications/{application.metadata.name}", update_app)
    router.add("PUT", "/api/v1/applications/{name}/spec", update_spec)
    router.add("PATCH", "/api/v1/applications/{name}", patch_app)
    router.add("DELETE", "/api/v1/applications/{name}", delete_app)

    # ------------------------------------------------------------------ operations

    def body_namespace(req: Request, body: dict) -> str | None:
        # Sync and rollback take the whole request as the body (`body: "*"`): appNamespace travels in it.
        value = body.get("appNamespace")
        return str(value) if value else None

    def sync_app(req: Request) -> Raw:
        body = req.obj()
        rec = lookup(req, namespace=body_namespace(req, body))
        with state.lock:
            if not state.sync_windows_allow(rec, manual=True):
                raise denied("cannot sync: blocked by sync window")
        req.ctx.require("applications", "sync", rbac_name(rec))
        dry = bool(body.get("dryRun"))
        if body.get("manifests"):
            req.ctx.require("applications", "override", rbac_name(rec))
        with state.lock:
            spec = rec.obj["spec"]
            policy = spec.get("syncPolicy") or {}
            if body.get("manifests") and policy.get("automated") is not None and not dry:
                raise invalid("cannot use local sync when Automatic Sync Policy is enabled unless for dry run")
            if rec.obj["metadata"].get("deletionTimestamp"):
                raise precondition("application is deleting")
            src = state._source(spec)
            target = src.get("targetRevision") or "HEAD"
            revision = body.get("revision") or target
            if policy.get("automated") is not None and not dry and revision != target:
                raise precondition(f"Cannot sync to {revision}: auto-sync currently set to {target}")
            if rec.obj.get("operation") is not None:
                raise precondition("another operation is already in progress")
            sha = state.resolve_revision(src.get("repoURL", ""), revision)
            sync: dict[str, Any] = {"revision": sha}
            for key in ("prune", "dryRun"):
                if body.get(key):
                    sync[key] = True
            if body.get("strategy"):
                sync["syncStrategy"] = body["strategy"]
            if body.get("resources"):
                sync["resources"] = body["resources"]
            if body.get("manifests"):
                sync["manifests"] = body["manifests"]
            items = (body.get("syncOptions") or {}).get("items")
            options = items if items is not None else policy.get("syncOptions")
            if options:
                sync["syncOptions"] = list(options)
            operation: dict[str, Any] = {"sync": sync, "initiatedBy": {"username": req.ctx.username}}
            if body.get("infos"):
                operation["info"] = body["infos"]
            # Operation.Retry is a non-pointer struct in Go: it is always emitted, `{}` when unset.
            operation["retry"] = copy.deepcopy(body.get("retryStrategy") or policy.get("retry") or {})
            partial = "partial " if body.get("resources") else ""
            state.start_operation(rec, operation, f"{req.ctx.username} initiated {partial}sync to {revision} ({sha})")
            return Raw(rec.json())

    def rollback(req: Request) -> Raw:
        body = req.obj()
        rec = lookup(req, namespace=body_namespace(req, body))
        if "id" not in body or body.get("id") is None:
            raise _required_missing("id")
        req.ctx.require("applications", "sync", rbac_name(rec))
        try:
            history_id = int(body["id"])
        except (TypeError, ValueError) as exc:
            raise invalid(f"invalid id: {body['id']}") from exc
        with state.lock:
            if rec.obj["metadata"].get("deletionTimestamp"):
                raise precondition("application is deleting")
            policy = rec.obj["spec"].get("syncPolicy") or {}
            if policy.get("automated") is not None:
                raise precondition("rollback cannot be initiated when auto-sync is enabled")
            entry = next((h for h in rec.obj["status"].get("history") or [] if h["id"] == history_id), None)
            if entry is None:
                raise invalid(f"application {rec.namespace}/{rec.name} does not have deployment with id {history_id}")
            if not entry.get("source") and not entry.get("sources"):
                raise invalid("cannot rollback to revision deployed with Argo CD v1.4 or older")
            if rec.obj.get("operation") is not None:
                raise precondition("another operation is already in progress")
            sync: dict[str, Any] = {
                "revision": entry["revision"],
                "source": copy.deepcopy(entry.get("source")),
                "syncStrategy": {"apply": {}},
            }
            if body.get("dryRun"):
                sync["dryRun"] = True
            if body.get("prune"):
                sync["prune"] = True
            if policy.get("syncOptions"):
                sync["syncOptions"] = list(policy["syncOptions"])
            operation = {"sync": sync, "initiatedBy": {"username": req.ctx.username}, "retry": {}}
            state.start_operation(rec, operation, f"{req.ctx.username} initiated rollback to {history_id}")
            return Raw(rec.json())

    def terminate(req: Request) -> dict:
        rec = lookup(req)
        req.ctx.require("applications", "sync", rbac_name(rec))
        with state.lock:
            if rec.obj.get("operation") is None or rec.obj["status"].get("operationState") is None:
                raise invalid("Unable to terminate operation. No operation is in progress")
            state.terminate(rec)
        return {}

    router.add("POST", "/api/v1/applications/{name}/sync", sync_app)
    router.add("POST", "/api/v1/applications/{name}/rollback", rollback)
    router.add("DELETE", "/api/v1/applications/{name}/operation", terminate)

    # ------------------------------------------------------------------ tree, diff, single resources

    def app_tree(rec: AppRec) -> dict:
        with state.lock:
            # Hook Jobs show in the tree while they exist, like any other object the app owns.
            live = {**rec.live, **rec.hooks}
            return resources.tree(live, state.app_health(rec), rec.obj["metadata"]["creationTimestamp"])

    def resource_tree(req: Request) -> dict:
        return app_tree(lookup(req))

    def managed_resources(req: Request) -> Any:
        rec = lookup(req)
        filters = {k: req.q(k) for k in ("namespace", "name", "version", "group", "kind")}
        items = []
        with state.lock:
            for key in sorted(set(rec.target) | set(rec.live)):
                group, kind, ns, name = key
                if filters["namespace"] and filters["namespace"] != ns:
                    continue
                if filters["name"] and filters["name"] != name:
                    continue
                if filters["group"] and filters["group"] != group:
                    continue
                if filters["kind"] and filters["kind"] != kind:
                    continue
                target = rec.target.get(key)
                live = rec.live.get(key)
                predicted = resources.deep_merge(live, target) if live and target else (target or None)
                if predicted and live:
                    predicted["metadata"] = copy.deepcopy(live["metadata"])
                modified = target is None or live is None or not resources.is_subset(target, live)
                item: dict[str, Any] = {
                    "kind": kind,
                    "namespace": ns,
                    "name": name,
                    "targetState": resources.state_json(target),
                    "liveState": resources.state_json(live),
                    "normalizedLiveState": resources.state_json(resources.normalized(live)),
                    "predictedLiveState": resources.state_json(predicted if target else None),
                    "diff": "",
                    "hook": False,
                    "modified": modified,
                }
                if group:
                    item["group"] = group
                if live:
                    item["resourceVersion"] = live["metadata"]["resourceVersion"]
                items.append(item)
        out = {"items": items}
        return project_fields(out, req.q("fields")) if req.q("fields") else out

    def find_node(rec: AppRec, req: Request, name_param: str = "resourceName") -> tuple[dict, dict | None]:
        """A node of the app tree matching the query; returns (node, live manifest or None for children)."""
        kind, group = req.q("kind"), req.q("group")
        name, ns = req.q(name_param), req.q("namespace")
        tree = app_tree(rec)
        for node in tree["nodes"]:
            if node["kind"] == kind and node.get("group", "") == group and node["name"] == name:
                if ns and node.get("namespace") != ns:
                    continue
                with state.lock:
                    live = rec.live.get((group, kind, node.get("namespace", ""), name))
                return node, live
        raise invalid(f"{kind} {group} {name} not found as part of application {rec.name}")

    def synth_manifest(node: dict) -> dict:
        api = resources.api_version(node.get("group", ""), node.get("version", "v1"))
        meta = {
            "name": node["name"],
            "namespace": node.get("namespace", ""),
            "uid": node.get("uid", ""),
            "resourceVersion": node.get("resourceVersion", ""),
            "creationTimestamp": node.get("createdAt", ""),
        }
        if node.get("parentRefs"):
            parent = node["parentRefs"][0]
            meta["ownerReferences"] = [
                {
                    "apiVersion": resources.api_version(parent.get("group", "")),
                    "kind": parent["kind"],
                    "name": parent["name"],
                    "uid": parent.get("uid", ""),
                    "controller": True,
                }
            ]
        out: dict[str, Any] = {"apiVersion": api, "kind": node["kind"], "metadata": meta}
        if node["kind"] == "Pod":
            out["spec"] = {
                "containers": [{"name": node["name"].rsplit("-", 2)[0], "image": (node.get("images") or [""])[0]}],
                "nodeName": next((i["value"] for i in node.get("info", []) if i["name"] == "Node"), ""),
            }
            out["status"] = {"phase": "Running" if node["health"]["status"] == "Healthy" else "Pending"}
        return out

    def get_resource(req: Request) -> dict:
        rec = lookup(req)
        node, live = find_node(rec, req)
        return {"manifest": json.dumps(live if live is not None else synth_manifest(node), separators=(",", ":"))}

    def patch_resource(req: Request) -> dict:
        rec = lookup(req)
        node, live = find_node(rec, req)
        key = (node.get("group", ""), node["kind"], node.get("namespace", ""), node["name"])
        action = f"update/{key[0]}/{key[1]}/{key[2]}/{key[3]}"
        req.ctx.require("applications", action, rbac_name(rec))
        if live is None:
            raise invalid(f"{node['kind']} {node['name']} cannot be patched")
        body = req.json()
        text = body if isinstance(body, str) else (body.get("patch") if isinstance(body, dict) else "")
        patch_type = req.q("patchType") or (body.get("patchType") if isinstance(body, dict) else "") or "merge"
        try:
            parsed = json.loads(text or "null")
            if patch_type == "application/json-patch+json" or patch_type == "json":
                new = apply_json_patch(live, parsed)
            else:
                new = apply_merge_patch(live, parsed)
        except (ValueError, PatchError) as exc:
            raise unknown(f"error patching resource: {exc}") from exc
        with state.lock:
            new["metadata"]["resourceVersion"] = str(state.next_rv())
            rec.live[key] = new
            state.recompute(rec)
            state.event(rec, "ResourceUpdated", f"{req.ctx.username} patched resource {key[0]}/{key[1]} '{key[3]}'")
            state.touch(rec)
        return {"manifest": json.dumps(new, separators=(",", ":"))}

    def delete_resource(req: Request) -> dict:
        rec = lookup(req)
        node, _live = find_node(rec, req)
        key = (node.get("group", ""), node["kind"], node.get("namespace", ""), node["name"])
        req.ctx.require("applications", f"delete/{key[0]}/{key[1]}/{key[2]}/{key[3]}", rbac_name(rec))
        with state.lock:
            if key in rec.live:
                state.delete_resource(rec, key, req.ctx.username)
            else:
                # Children (ReplicaSet/Pod) are recreated by their owners; just record the deletion.
                state.event(rec, "ResourceDeleted", f"{req.ctx.username} deleted resource {key[0]}/{key[1]} '{key[3]}'")
                state.touch(rec)
        return {}

    def server_side_diff(req: Request) -> dict:
        # Simplified: the same comparison as managed-resources (no dry-run apply against a cluster).
        rec = lookup(req, name=req.params["appName"])
        req.params["name"] = rec.name
        items = managed_resources(req)["items"]
        return {"items": items, "modified": any(i["modified"] for i in items)}

    router.add("GET", "/api/v1/applications/{applicationName}/resource-tree", resource_tree)
    router.add("GET", "/api/v1/applications/{appName}/server-side-diff", server_side_diff)
    router.add("GET", "/api/v1/applications/{applicationName}/managed-resources", managed_resources)
    router.add("GET", "/api/v1/applications/{name}/resource", get_resource)
    router.add("POST", "/api/v1/applications/{name}/resource", patch_resource)
    router.add("DELETE", "/api/v1/applications/{name}/resource", delete_resource)

    # ------------------------------------------------------------------ actions

    def list_actions(req: Request) -> dict:
        rec = lookup(req)
        node, live = find_node(rec, req)
        if node["kind"] == "Deployment" and node.get("group") == "apps":
            return {"actions": resources.deployment_actions(live)}
        return {"actions": []}

    def run_action(req: Request, rec: AppRec, action: str, params: dict[str, str]) -> dict:
        node, live = find_node(rec, req)
        group, kind = node.get("group", ""), node["kind"]
        req.ctx.require("applications", f"action/{group}/{kind}/{action}", rbac_name(rec))
        if not (kind == "Deployment" and group == "apps") or live is None:
            raise unknown(f"error getting Lua resource action: action '{action}' not found for {kind}")
        if action not in ("restart", "pause", "resume", "scale"):
            raise unknown(f"error getting Lua resource action: action '{action}' not found for {kind}")
        if action == "scale":
            value = params.get("replicas", "")
            if not str(value).isdigit():
                raise unknown(
                    "error running action: invalid value for parameter replicas: must be a non-negative integer"
                )
        key = (group, kind, node.get("namespace", ""), node["name"])
        with state.lock:
            state.run_action(rec, key, action, params, req.ctx.username)
        return {}

    def run_action_v1(req: Request) -> dict:
        rec = lookup(req)
        action = req.json()
        if not isinstance(action, str):
            raise invalid("json: cannot unmarshal object into Go value of type string")
        return run_action(req, rec, action, {})

    def run_action_v2(req: Request) -> dict:
        body = req.obj()
        for field in ("kind", "version", "resourceName", "action"):
            if field not in body:
                raise _required_missing(field)
        # v2 carries the resource in the body; reuse the query-based lookup helpers.
        for field in ("namespace", "resourceName", "version", "group", "kind", "appNamespace", "project"):
            if body.get(field) is not None:
                req.query[field] = [str(body[field])]
        rec = lookup(req)
        params = {p.get("name", ""): str(p.get("value", "")) for p in body.get("resourceActionParameters") or []}
        return run_action(req, rec, body["action"], params)

    router.add("GET", "/api/v1/applications/{name}/resource/actions", list_actions)
    router.add("POST", "/api/v1/applications/{name}/resource/actions", run_action_v1)
    router.add("POST", "/api/v1/applications/{name}/resource/actions/v2", run_action_v2)

    # ------------------------------------------------------------------ events, metadata, windows, links

    def app_events(req: Request) -> dict:
        rec = lookup(req)
        res_name, res_uid = req.q("resourceName"), req.q("resourceUID")
        if res_name or res_uid:
            tree = app_tree(rec)
            node = next(
                (
                    n
                    for n in tree["nodes"]
                    if (not res_name or n["name"] == res_name)
                    and (not res_uid or n.get("uid") == res_uid)
                    and (not req.q("resourceNamespace") or n.get("namespace") == req.q("resourceNamespace"))
                ),
                None,
            )
            if node is None:
                raise invalid(f"{res_name} not found as part of application {rec.name}")
            return {"metadata": list_meta(state), "items": resource_events(node)}
        with state.lock:
            return {"metadata": list_meta(state), "items": copy.deepcopy(rec.events)}

    def resource_events(node: dict) -> list[dict]:
        reasons = {
            "Pod": [
                ("Scheduled", "Successfully assigned {ns}/{name} to node-1"),
                ("Pulled", "Container image already present on machine"),
                ("Started", "Started container"),
            ],
            "ReplicaSet": [("SuccessfulCreate", "Created pod: {name}-x1")],
            "Deployment": [("ScalingReplicaSet", "Scaled up replica set {name} to 1")],
        }.get(node["kind"], [])
        out = []
        for i, (reason, msg) in enumerate(reasons):
            stamp = node.get("createdAt") or now_ts()
            out.append(
                {
                    "metadata": {
                        "name": f"{node['name']}.{i:x}",
                        "namespace": node.get("namespace", ""),
                        "uid": resources._uuid(resources.h(node["name"] + reason, 32)),
                        "creationTimestamp": stamp,
                    },
                    "involvedObject": {
                        "kind": node["kind"],
                        "namespace": node.get("namespace", ""),
                        "name": node["name"],
                        "uid": node.get("uid", ""),
                        "apiVersion": resources.api_version(node.get("group", "")),
                    },
                    "reason": reason,
                    "message": msg.format(ns=node.get("namespace", ""), name=node["name"]),
                    "source": {"component": "kubelet" if node["kind"] == "Pod" else "controllermanager"},
                    "firstTimestamp": stamp,
                    "lastTimestamp": stamp,
                    "count": 1,
                    "type": "Normal",
                    "eventTime": None,
                    "reportingComponent": "",
                    "reportingInstance": "",
                }
            )
        return out

    def revision_metadata(req: Request) -> dict:
        lookup(req)
        rev = req.params["revision"]
        digest = hashlib.sha1(rev.encode()).digest()
        date = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=int.from_bytes(digest[:3], "big") % 400000)
        out: dict[str, Any] = {
            "author": AUTHORS[digest[3] % len(AUTHORS)],
            "date": date.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "message": f"{MESSAGES[digest[4] % len(MESSAGES)]}\n\nChange-Id: I{rev[:12]}",
        }
        if digest[5] % 4 == 0:
            out["tags"] = [f"v1.{digest[6] % 20}.{digest[7] % 10}"]
        return out

    def chart_details(req: Request) -> dict:
        rec = lookup(req)
        chart = state._source(rec.obj["spec"]).get("chart") or rec.name
        return {
            "description": f"A Helm chart for {chart}",
            "home": f"https://charts.example.com/{chart}",
            "maintainers": ["Platform Team <platform@acme.example>"],
        }

    def app_sync_windows(req: Request) -> dict:
        rec = lookup(req)
        with state.lock:
            windows = state.matching_windows(rec)
            active = [w for w in windows if state.window_active(w)]
            can = state.sync_windows_allow(rec, manual=True)

        def short(w: dict) -> dict:
            return {k: w[k] for k in ("kind", "schedule", "duration", "manualSync") if k in w}

        out: dict[str, Any] = {"canSync": can}
        if active:
            out["activeWindows"] = [short(w) for w in active]
        if windows:
            out["assignedWindows"] = [short(w) for w in windows]
        return out

    def links(req: Request) -> dict:
        lookup(req)
        return {"items": []}

    def manifests(req: Request) -> dict:
        rec = lookup(req)
        with state.lock:
            src = state._source(rec.obj["spec"])
            rev = state.resolve_revision(src.get("repoURL", ""), req.q("revision") or src.get("targetRevision", "HEAD"))
            rendered = resources.render(rec.name, rec.obj["spec"], rev)
            return {
                "manifests": [json.dumps(m, separators=(",", ":")) for m in rendered.values()],
                "namespace": (rec.obj["spec"].get("destination") or {}).get("namespace", ""),
                "server": (rec.obj["spec"].get("destination") or {}).get("server", ""),
                "revision": rev,
                "sourceType": rec.obj["status"].get("sourceType", "Directory"),
            }

    router.add("GET", "/api/v1/applications/{name}/events", app_events)
    router.add("GET", "/api/v1/applications/{name}/revisions/{revision}/metadata", revision_metadata)
    router.add("GET", "/api/v1/applications/{name}/revisions/{revision}/chartdetails", chart_details)
    router.add("GET", "/api/v1/applications/{name}/syncwindows", app_sync_windows)
    router.add("GET", "/api/v1/applications/{name}/links", links)
    router.add("GET", "/api/v1/applications/{name}/resource/links", links)
    router.add("GET", "/api/v1/applications/{name}/manifests", manifests)

    # ------------------------------------------------------------------ logs

    def pods_for(rec: AppRec, req: Request, pod_name: str) -> list[dict]:
        kind, group, res_name, ns = req.q("kind"), req.q("group"), req.q("resourceName"), req.q("namespace")
        if pod_name:
            kind, group, res_name = "Pod", "", pod_name
        nodes = app_tree(rec)["nodes"]
        by_uid = {n["uid"]: n for n in nodes}

        def matches(node: dict) -> bool:
            if kind and node["kind"] != kind:
                return False
            if group and node.get("group", "") != group:
                return False
            if res_name and node["name"] != res_name:
                return False
            return not ns or node.get("namespace") == ns

        pods = []
        for node in nodes:
            if node["kind"] != "Pod":
                continue
            cur: dict | None = node
            while cur is not None:
                if matches(cur):
                    pods.append(node)
                    break
                parent = (cur.get("parentRefs") or [None])[0]
                cur = by_uid.get(parent["uid"]) if parent else None
        return pods

    def log_line(pod: str, seq: int, when: datetime) -> dict:
        digest = hashlib.sha1(f"{pod}:{seq}".encode()).digest()
        level = ["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"][digest[0] % 6]
        path = ["/healthz", "/api/v1/items", "/api/v1/orders", "/metrics", "/login"][digest[1] % 5]
        code = 200 if level != "ERROR" else 500
        content = (
            f'level={level.lower()} msg="handled request" method=GET path={path} status={code} '
            f"duration_ms={digest[2] % 250} request_id={digest[3:9].hex()}"
        )
        return {
            "content": content,
            "timeStamp": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "last": False,
            "timeStampStr": when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond * 1000:09d}Z",
            "podName": pod,
        }

    def logs(req: Request) -> Stream | Response:
        # Path form (/pods/{podName}/logs) or query form (?podName=) select one pod.
        pod_name = req.params.get("podName") or req.q("podName")
        rec = lookup(req)
        req.ctx.require("logs", "get", rbac_name(rec))
        pods = pods_for(rec, req, pod_name)
        if len(pods) > MAX_LOG_PODS:
            raise invalid("max pods to view logs are reached. Please provide more granular query")
        container = req.q("container")
        tail = int(req.q("tailLines") or 0) if req.q("tailLines").lstrip("-").isdigit() else 0
        since = int(req.q("sinceSeconds") or 0) if req.q("sinceSeconds").isdigit() else 0
        since_time = int(req.q("sinceTime.seconds")) if req.q("sinceTime.seconds").isdigit() else 0
        until = req.q("untilTime")
        download = req.qbool("download")
        follow = req.qbool("follow") and not download
        flt = req.q("filter")
        match_case = req.qbool("matchCase")
        exclude = flt.startswith("!")
        needle = flt[1:] if exclude else flt
        fields_raw = req.q("fields")

        def keep(entry: dict) -> bool:
            if not needle:
                return True
            hay, pat = (entry["content"], needle) if match_case else (entry["content"].lower(), needle.lower())
            return (pat not in hay) if exclude else (pat in hay)

        def wrap(entry: dict) -> dict:
            frame = {"result": entry}
            return project_fields(frame, fields_raw) if fields_raw else frame

        def frames():
            now = datetime.now(UTC)
            history: list[dict] = []
            for pod in pods:
                containers = [c["name"] for c in [{"name": pod["name"].rsplit("-", 2)[0]}]]
                if container and container not in containers:
                    history.append(
                        {
                            "content": f"container {container} is not valid for pod {pod['name']}",
                            "timeStamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                            "last": False,
                            "timeStampStr": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond * 1000:09d}Z",
                            "podName": pod["name"],
                        }
                    )
                    continue
                # One line per pod every 10 s on a fixed wall-clock grid, so a line keeps its time and text
                # across requests (tail/since/until behave like on a real pod).
                slot = int(now.timestamp()) // 10 * 10
                lines = [
                    log_line(pod["name"], t, datetime.fromtimestamp(t, UTC)) for t in range(slot - 590, slot + 1, 10)
                ]
                if since:
                    cutoff = now - timedelta(seconds=since)
                    lines = [x for x in lines if x["timeStamp"] >= cutoff.strftime("%Y-%m-%dT%H:%M:%SZ")]
                if since_time:
                    cutoff = datetime.fromtimestamp(since_time, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                    lines = [x for x in lines if x["timeStamp"] >= cutoff]
                lines = [x for x in lines if keep(x)]
                if tail > 0:
                    lines = lines[-tail:]
                history.extend(lines)
            history.sort(key=lambda e: e["timeStampStr"])
            for entry in history:
                if until and entry["timeStampStr"] > until:
                    # An entry past untilTime ends the stream with the `last` marker.
                    yield wrap(last_entry())
                    return
                yield wrap(entry)
            if not pods:
                return
            if follow:
                seq = 60
                rng = random.Random()
                while not req.client_gone():
                    deadline = time.monotonic() + rng.uniform(0.2, 1.0)
                    while time.monotonic() < deadline:
                        if req.client_gone():
                            return
                        time.sleep(0.05)
                    pod = pods[seq % len(pods)]["name"]
                    entry = log_line(pod, seq, datetime.now(UTC))
                    seq += 1
                    if until and entry["timeStampStr"] > until:
                        yield wrap(last_entry())
                        return
                    if keep(entry):
                        yield wrap(entry)
                return
            yield wrap(last_entry())

        def last_entry() -> dict:
            end = datetime.now(UTC)
            stamp = end.strftime("%Y-%m-%dT%H:%M:%S.") + f"{end.microsecond * 1000:09d}Z"
            return {
                "content": "",
                "timeStamp": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "last": True,
                "timeStampStr": stamp,
                "podName": "",
            }

        if download:
            # download=true: raw lines as an attachment instead of NDJSON frames.
            text = "".join(f["result"]["content"] + "\n" for f in frames() if not f["result"].get("last"))
            target = pod_name or (pods[0]["name"] if pods else rec.name)
            filename = f"{pods[0]['namespace'] if pods else ''}-{target}-{container or 'all'}.log"
            return Response(
                text.encode(),
                content_type="application/octet-stream",
                headers=[("Content-Disposition", f'attachment;filename="{filename}"')],
            )
        return Stream(frames())

    router.add("GET", "/api/v1/applications/{name}/logs", logs)
    router.add("GET", "/api/v1/applications/{name}/pods/{podName}/logs", logs)

    # ------------------------------------------------------------------ watch streams

    def watch(req: Request) -> Stream:
        projects = set(req.qs("project") or req.qs("projects"))
        name = req.q("name")
        ns = req.q("appNamespace")
        reqs = parse_selector(req.q("selector")) if req.q("selector") else []
        min_rv = int(req.q("resourceVersion")) if req.q("resourceVersion").isdigit() else 0
        fields_raw = req.q("fields")
        ctx = req.ctx

        def wanted(app_ns: str, app_name: str, project: str, labels: dict) -> bool:
            if ns and app_ns != ns:
                return False
            if not state.namespace_enabled(app_ns):
                return False
            if name and app_name != name:
                return False
            if projects and project not in projects:
                return False
            if reqs and not selector_matches(reqs, labels):
                return False
            return ctx.can("applications", "get", rbac_name(project, app_name, app_ns))

        def frame(event: str, app_json: str) -> bytes:
            raw = '{"result":{"type":"' + event + '","application":' + app_json + "}}"
            if fields_raw:
                return dumps(project_fields(json.loads(raw), fields_raw)).encode()
            return raw.encode()

        sub = state.subscribe("applications")
        initial: list[bytes] = []
        with state.lock:
            if not req.q("resourceVersion") or name:
                for key in state.sorted_app_keys():
                    rec = state.apps[key]
                    labels = rec.obj["metadata"].get("labels") or {}
                    if wanted(rec.namespace, rec.name, rec.project, labels):
                        initial.append(frame("ADDED", rec.json()))

        def frames():
            last: dict[str, bytes] = {}
            try:
                yield b""  # flush headers now so clients see the stream open
                for data in initial:
                    yield data
                while not req.client_gone() and not sub.closed.is_set():
                    try:
                        event, app_ns, app_name, project, labels, rv, app_json = sub.queue.get(timeout=0.25)
                    except queue.Empty:
                        continue
                    if min_rv and rv < min_rv:
                        continue
                    if not wanted(app_ns, app_name, project, labels):
                        continue
                    data = frame(event, app_json)
                    if last.get(app_name) == data:
                        continue
                    last[app_name] = data
                    yield data
            finally:
                state.unsubscribe(sub)

        return Stream(frames(), on_close=lambda: state.unsubscribe(sub))

    def watch_tree(req: Request) -> Stream:
        rec = lookup(req)
        fields_raw = req.q("fields")
        sub = state.subscribe("applications")

        def encode(tree: dict) -> bytes:
            frame = {"result": tree}
            return dumps(project_fields(frame, fields_raw) if fields_raw else frame).encode()

        def frames():
            try:
                prev = encode(app_tree(rec))
                yield prev
                while not req.client_gone() and not sub.closed.is_set():
                    try:
                        item = sub.queue.get(timeout=0.25)
                    except queue.Empty:
                        continue
                    if (item[1], item[2]) != rec.key:
                        continue
                    if item[0] == "DELETED":
                        return
                    data = encode(app_tree(rec))
                    if data != prev:
                        prev = data
                        yield data
            finally:
                state.unsubscribe(sub)

        return Stream(frames(), on_close=lambda: state.unsubscribe(sub))

    router.add("GET", "/api/v1/stream/applications", watch)
    router.add("GET", "/api/v1/stream/applications/{applicationName}/resource-tree", watch_tree)

"""ApplicationSet endpoints and a small generator/template engine for previews and for the controller
(`apps/simulator/appset_controller.py`, which turns the generated apps into real ones).

Generators: list, clusters, git (directories against a fixed fake directory list; files yield the same
dirs with a config.json-like param set), matrix (two children), merge (by mergeKeys).
Templates: fasttemplate `{{key}}` on flattened params (unknown keys left verbatim) or, with goTemplate,
`{{.a.b}}`, `{{ index .path.segments N }}`, `{{.x | default "y"}}`-free minimal Go templating.
"""

from __future__ import annotations

import copy
import json
import queue
import re
import uuid
from fnmatch import fnmatch
from typing import Any

from .. import appset_controller
from ..errors import denied, invalid, not_found
from ..httpd import Request, Router, Stream
from ..seed import GIT_DIRS
from ..state import NAMESPACE, State, dumps, now_ts
from .common import list_meta, match_label_selector, parse_selector, selector_matches

RESOURCES_FINALIZER = "resources-finalizer.argocd.argoproj.io"


class TemplateError(Exception):
    pass


FAST = re.compile(r"\{\{\s*([^{}\s]+)\s*\}\}")
GO = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}")


def _flatten(params: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in params.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _go_lookup(params: dict, expr: str, missing_error: bool) -> Any:
    expr = expr.strip()
    m = re.fullmatch(r"index\s+(\.[\w.]*)\s+(\d+)", expr)
    if m:
        seq = _go_lookup(params, m.group(1), missing_error)
        try:
            return seq[int(m.group(2))]
        except (IndexError, TypeError, KeyError) as exc:
            raise TemplateError(f"error calling index: index out of range: {m.group(2)}") from exc
    m = re.fullmatch(r"(\.[\w.]*)\s*\|\s*(lower|upper|quote)", expr)
    if m:
        value = str(_go_lookup(params, m.group(1), missing_error))
        return {"lower": value.lower(), "upper": value.upper(), "quote": json.dumps(value)}[m.group(2)]
    m = re.fullmatch(r"(lower|upper|normalize)\s+(\.[\w.]*)", expr)
    if m:
        value = str(_go_lookup(params, m.group(2), missing_error))
        if m.group(1) == "normalize":
            return re.sub(r"[^a-z0-9.-]+", "-", value.lower()).strip("-")
        return value.lower() if m.group(1) == "lower" else value.upper()
    if not expr.startswith("."):
        raise TemplateError(f'template: :1: function "{expr.split()[0]}" not defined')
    cur: Any = params
    for part in [p for p in expr[1:].split(".") if p]:
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            if missing_error:
                raise TemplateError(
                    f'template: :1:{len(expr)}: executing "" at <{expr}>: map has no entry for key "{part}"'
                )
            return "<no value>"
    return cur


def render_string(text: str, params: dict, go: bool, missing_error: bool) -> str:
    if go:

        def repl(m: re.Match) -> str:
            value = _go_lookup(params, m.group(1), missing_error)
            if isinstance(value, (dict, list)):
                return "map[...]" if isinstance(value, dict) else "[" + " ".join(map(str, value)) + "]"
            return str(value)

        return GO.sub(repl, text)
    flat = _flatten(params)

    def fast(m: re.Match) -> str:
        value = flat.get(m.group(1))
        # fasttemplate leaves unknown keys and non-string values verbatim.
        return value if isinstance(value, str) else m.group(0)

    return FAST.sub(fast, text)


def render_tree(obj: Any, params: dict, go: bool, missing_error: bool) -> Any:
    if isinstance(obj, str):
        return render_string(obj, params, go, missing_error)
    if isinstance(obj, list):
        return [render_tree(x, params, go, missing_error) for x in obj]
    if isinstance(obj, dict):
        return {k: render_tree(v, params, go, missing_error) for k, v in obj.items()}
    return obj


def _dir_params(path: str, go: bool) -> dict:
    parts = path.split("/")
    base = parts[-1]
    normalized = re.sub(r"[^a-z0-9-]+", "-", base.lower())
    if go:
        return {"path": {"path": path, "basename": base, "basenameNormalized": normalized, "segments": parts}}
    out = {"path": path, "path.basename": base, "path.basenameNormalized": normalized}
    for i, seg in enumerate(parts):
        out[f"path[{i}]"] = seg
    return out


def _unflatten_for_fast(params: dict) -> dict:
    """Fasttemplate params are flat keys like `path.basename`; keep them flat at top level."""
    return {k: v for k, v in params.items()}


def generate_params(state: State, gen: dict, go: bool) -> list[dict]:
    if "list" in gen:
        elements = (gen["list"] or {}).get("elements") or []
        return [copy.deepcopy(e) for e in elements if isinstance(e, dict)]
    if "clusters" in gen:
        selector = (gen["clusters"] or {}).get("selector")
        out = []
        for c in sorted(state.clusters.values(), key=lambda c: c.get("name", "")):
            labels = dict(c.get("labels") or {})
            labels.setdefault("argocd.argoproj.io/secret-type", "cluster")
            if not match_label_selector(selector, labels):
                continue
            name = c.get("name", "")
            p: dict[str, Any] = {
                "name": name,
                "nameNormalized": re.sub(r"[^a-z0-9.-]+", "-", name.lower()),
                "server": c["server"],
                "project": c.get("project", ""),
            }
            if go:
                p["metadata"] = {"labels": labels, "annotations": dict(c.get("annotations") or {})}
            else:
                for k, v in labels.items():
                    p[f"metadata.labels.{k}"] = v
                for k, v in (c.get("annotations") or {}).items():
                    p[f"metadata.annotations.{k}"] = v
            for k, v in ((gen["clusters"] or {}).get("values") or {}).items():
                p.setdefault("values", {})[k] = v
            out.append(p)
        return out
    if "git" in gen:
        git = gen["git"] or {}
        out = []
        for d in git.get("directories") or []:
            if d.get("exclude"):
                continue
            for path in GIT_DIRS:
                if fnmatch(path, d.get("path", "")):
                    out.append(_dir_params(path, go))
        for f in git.get("files") or []:
            for path in GIT_DIRS:
                candidate = f"{path}/config.json"
                if fnmatch(candidate, f.get("path", "")):
                    p = _dir_params(path, go)
                    p.update({"name": path.split("/")[-1], "environment": "dev"})
                    out.append(p)
        # Excluded directories remove matches (directories[].exclude: true).
        excludes = [d.get("path", "") for d in git.get("directories") or [] if d.get("exclude")]
        if excludes:
            out = [p for p in out if not any(fnmatch((p["path"]["path"] if go else p["path"]), e) for e in excludes)]
        return out
    if "matrix" in gen:
        children = (gen["matrix"] or {}).get("generators") or []
        if len(children) != 2:
            raise invalid("matrix generator must have exactly 2 child generators")
        left = generate_params(state, children[0], go)
        out = []
        for lp in left:
            for rp in generate_params(state, children[1], go):
                merged = copy.deepcopy(lp)
                merged.update(rp)
                out.append(merged)
        return out
    if "merge" in gen:
        spec = gen["merge"] or {}
        children = spec.get("generators") or []
        if len(children) < 2:
            raise invalid("found less than two generators, Merge requires two or more")
        keys = spec.get("mergeKeys") or []
        base = generate_params(state, children[0], go)
        for child in children[1:]:
            for extra in generate_params(state, child, go):
                for p in base:
                    if all(p.get(k) == extra.get(k) for k in keys):
                        p.update(extra)
        return base
    raise invalid("ApplicationSet generator type is not supported by the simulator: " + ",".join(gen))


def generate_apps(state: State, appset: dict) -> list[dict]:
    spec = appset.get("spec") or {}
    go = bool(spec.get("goTemplate"))
    missing_error = "missingkey=error" in (spec.get("goTemplateOptions") or [])
    template = spec.get("template") or {}
    apps = []
    for gen in spec.get("generators") or []:
        gen_template = gen.get("template") if isinstance(gen, dict) else None
        selector = gen.get("selector") if isinstance(gen, dict) else None
        body = {k: v for k, v in gen.items() if k not in ("template", "selector")}
        for params in generate_params(state, body, go):
            if selector and not match_label_selector(selector, {k: str(v) for k, v in _flatten(params).items()}):
                continue
            tmpl = copy.deepcopy(template)
            if gen_template:
                from ..resources import deep_merge

                tmpl = deep_merge(tmpl, gen_template)
            try:
                rendered = render_tree(tmpl, params, go, missing_error)
            except TemplateError as exc:
                raise invalid(f"error generating application from params: {exc}") from exc
            meta = rendered.get("metadata") or {}
            meta.setdefault("namespace", NAMESPACE)
            # Generated apps delete their resources with them unless the set preserves them
            # (RenderTemplateParams adds the resources finalizer).
            if not ((spec.get("syncPolicy") or {}).get("preserveResourcesOnDeletion")):
                finalizers = list(meta.get("finalizers") or [])
                if RESOURCES_FINALIZER not in finalizers:
                    meta["finalizers"] = [*finalizers, RESOURCES_FINALIZER]
            app = {
                "metadata": meta,
                "spec": rendered.get("spec") or {},
                "status": {
                    "sync": {"comparedTo": {"destination": {}, "source": {"repoURL": ""}}},
                    "health": {},
                    "summary": {},
                },
            }
            apps.append(app)
    return apps


def register(router: Router, sim: Any) -> None:
    state: State = sim.state

    def rbac_obj(appset: dict) -> str:
        project = ((appset.get("spec") or {}).get("template") or {}).get("spec", {}).get("project", "")
        name = appset["metadata"]["name"]
        ns = appset["metadata"].get("namespace") or NAMESPACE
        return f"{project}/{ns}/{name}" if ns != NAMESPACE else f"{project}/{name}"

    def find(req: Request, action: str) -> dict:
        name = req.params["name"]
        ns = req.q("appsetNamespace") or NAMESPACE
        with state.lock:
            appset = state.appsets.get((ns, name))
        if appset is None:
            raise not_found(f'applicationsets.argoproj.io "{name}" not found')
        req.ctx.require("applicationsets", action, rbac_obj(appset))
        return appset

    def validate(appset: dict) -> None:
        meta = appset.get("metadata") or {}
        if not meta.get("name"):
            raise invalid("ApplicationSet name is required")
        project = ((appset.get("spec") or {}).get("template") or {}).get("spec", {}).get("project", "")
        if "{{" in project:
            raise invalid(
                "the Argo CD API does not currently support creating ApplicationSets with templated `project` fields"
            )
        if not project or project not in state.projects:
            raise invalid(f"ApplicationSet references project {project} which does not exist")
        if not (appset.get("spec") or {}).get("generators"):
            raise invalid("ApplicationSet must have at least one generator")

    def list_appsets(req: Request) -> dict:
        projects = set(req.qs("projects"))
        ns = req.q("appsetNamespace")
        reqs = parse_selector(req.q("selector")) if req.q("selector") else []
        with state.lock:
            items = []
            for (a_ns, _name), appset in sorted(state.appsets.items()):
                project = ((appset.get("spec") or {}).get("template") or {}).get("spec", {}).get("project", "")
                if ns and a_ns != ns:
                    continue
                if projects and project not in projects:
                    continue
                if reqs and not selector_matches(reqs, appset["metadata"].get("labels") or {}):
                    continue
                if req.ctx.can("applicationsets", "get", rbac_obj(appset)):
                    items.append(copy.deepcopy(appset))
            return {"metadata": list_meta(state), "items": items}

    def get_appset(req: Request) -> dict:
        appset = find(req, "get")
        with state.lock:
            return copy.deepcopy(appset)

    def create_appset(req: Request) -> dict:
        body = req.obj()
        validate(body)
        req.ctx.require("applicationsets", "create", rbac_obj(body))
        with state.lock:
            generate_apps(state, body)  # a template that cannot render is refused up front
        meta_in = body["metadata"]
        ns = meta_in.get("namespace") or NAMESPACE
        if ns != NAMESPACE:
            raise denied(f"namespace '{ns}' is not permitted")
        name = meta_in["name"]
        if req.qbool("dryRun"):
            return {"metadata": {"name": name, "namespace": ns}, "spec": body.get("spec") or {}}
        with state.lock:
            existing = state.appsets.get((ns, name))
            if existing is not None:
                same = existing["spec"] == body.get("spec") and all(
                    (existing["metadata"].get(k) or None) == (meta_in.get(k) or None)
                    for k in ("labels", "annotations", "finalizers")
                )
                if same:
                    return copy.deepcopy(existing)
                if not req.qbool("upsert"):
                    raise invalid("existing ApplicationSet spec is different, use upsert flag to force update")
                req.ctx.require("applicationsets", "update", rbac_obj(existing))
            meta = {
                k: copy.deepcopy(v) for k, v in meta_in.items() if k in ("name", "labels", "annotations", "finalizers")
            }
            meta["namespace"] = ns
            if existing is not None:
                # An upsert replaces the spec, merges the request's labels and annotations into the stored ones
                # and keeps the stored finalizers (updateAppSet with merge).
                old_meta = existing["metadata"]
                for key in ("labels", "annotations"):
                    merged = {**(old_meta.get(key) or {}), **(meta_in.get(key) or {})}
                    if merged:
                        meta[key] = copy.deepcopy(merged)
                meta.pop("finalizers", None)
                if old_meta.get("finalizers"):
                    meta["finalizers"] = copy.deepcopy(old_meta["finalizers"])
                meta.update({k: old_meta[k] for k in ("uid", "creationTimestamp")})
                meta["generation"] = int(old_meta.get("generation", 1)) + 1
            else:
                meta.update({"uid": str(uuid.uuid4()), "creationTimestamp": now_ts(), "generation": 1})
            meta["resourceVersion"] = str(state.next_rv())
            appset = {
                "metadata": meta,
                "spec": copy.deepcopy(body.get("spec") or {}),
                # The status belongs to the controller (a status subresource): an upsert keeps it.
                "status": copy.deepcopy(existing.get("status") or {}) if existing is not None else {},
            }
            state.appsets[(ns, name)] = appset
            state.object_event(
                state.appset_events,
                "ApplicationSet",
                name,
                meta["uid"],
                "ResourceUpdated" if existing else "ResourceCreated",
                f"{req.ctx.username} {'updated' if existing else 'created'} ApplicationSet",
            )
            state.publish_appset("MODIFIED" if existing else "ADDED", appset)
            # The controller reacts to the change at once (it watches its sets).
            appset_controller.reconcile(state, appset)
            return copy.deepcopy(appset)

    def delete_appset(req: Request) -> dict:
        appset = find(req, "delete")
        with state.lock:
            key = (appset["metadata"]["namespace"], appset["metadata"]["name"])
            state.appsets.pop(key, None)
            appset["metadata"]["resourceVersion"] = str(state.next_rv())
            state.publish_appset("DELETED", appset)
            # Background propagation: the garbage collector (or, when the policy forbids deletes, the
            # controller by dropping owner references) takes care of the generated apps.
            appset_controller.on_delete(state, appset)
        return {}

    def generate(req: Request) -> dict:
        body = req.obj()
        appset = body.get("applicationSet")
        if not isinstance(appset, dict):
            raise invalid("error creating ApplicationSets: ApplicationSets is nil in request")
        validate(appset)
        req.ctx.require("applicationsets", "create", rbac_obj(appset))
        with state.lock:
            return {"applications": generate_apps(state, appset)}

    def events(req: Request) -> dict:
        appset = find(req, "get")
        with state.lock:
            return {
                "metadata": list_meta(state),
                "items": copy.deepcopy(state.appset_events.get(appset["metadata"]["name"], [])),
            }

    def tree(req: Request) -> dict:
        appset = find(req, "get")
        nodes = []
        with state.lock:
            for rec in appset_controller.owned_apps(state, appset):
                nodes.append(
                    {
                        "group": "argoproj.io",
                        "version": "v1alpha1",
                        "kind": "Application",
                        "namespace": rec.namespace,
                        "name": rec.name,
                        "uid": rec.obj["metadata"]["uid"],
                        "resourceVersion": rec.obj["metadata"]["resourceVersion"],
                        "health": {"status": rec.obj["status"]["health"]["status"]},
                        "createdAt": rec.obj["metadata"]["creationTimestamp"],
                    }
                )
        return {"nodes": nodes}

    def watch(req: Request) -> Stream:
        ctx = req.ctx
        projects = set(req.qs("projects"))
        sub = state.subscribe("applicationsets")

        def ok(appset: dict) -> bool:
            project = ((appset.get("spec") or {}).get("template") or {}).get("spec", {}).get("project", "")
            if projects and project not in projects:
                return False
            return ctx.can("applicationsets", "get", rbac_obj(appset))

        with state.lock:
            initial = [
                dumps({"result": {"type": "ADDED", "applicationSet": a}}).encode()
                for _k, a in sorted(state.appsets.items())
                if ok(a)
            ]

        def frames():
            try:
                yield b""
                yield from initial
                while not req.client_gone() and not sub.closed.is_set():
                    try:
                        event, text, appset = sub.queue.get(timeout=0.25)
                    except queue.Empty:
                        continue
                    if ok(appset):
                        yield ('{"result":{"type":"' + event + '","applicationSet":' + text + "}}").encode()
            finally:
                state.unsubscribe(sub)

        return Stream(frames(), on_close=lambda: state.unsubscribe(sub))

    router.add("GET", "/api/v1/applicationsets", list_appsets)
    router.add("POST", "/api/v1/applicationsets", create_appset)
    router.add("POST", "/api/v1/applicationsets/generate", generate)
    router.add("GET", "/api/v1/applicationsets/{name}", get_appset)
    router.add("DELETE", "/api/v1/applicationsets/{name}", delete_appset)
    router.add("GET", "/api/v1/applicationsets/{name}/events", events)
    router.add("GET", "/api/v1/applicationsets/{name}/resource-tree", tree)
    router.add("GET", "/api/v1/stream/applicationsets", watch)

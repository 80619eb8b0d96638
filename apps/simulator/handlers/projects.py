"""AppProject endpoints, including role tokens, sync windows, detailed view and events."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from apps.core import cron

from .. import auth
from ..errors import ABORTED, ApiError, denied, invalid, not_found
from ..httpd import Request, Router
from ..rbac import glob_match, parse_policy
from ..state import NAMESPACE, State, now_ts
from .common import destination_permitted, list_meta, source_permitted

SECRET_CLUSTER_FIELDS = ("bearerToken", "password")


def differing_keys(a: Any, b: Any) -> list[str]:
    """The path parts where two specs differ, as Argo CD's GetDifferentPathsBetweenStructs lists them.

    Argo CD diffs the Go structs (r3labs/diff) and flattens every change's path into one list of Go field
    names and list indexes; a JSON key's Go name is the key with its first letter upper-cased.
    """
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b), key=lambda k: (k not in a, k)):
            if a.get(key) in (None, "", [], {}, False) and b.get(key) in (None, "", [], {}, False):
                continue  # Go's zero values: an absent field and an empty one are the same struct
            for part in _field_diff(a.get(key), b.get(key)):
                out += [key[:1].upper() + key[1:], *part]
        return out
    return [] if a == b else [""]


def _field_diff(a: Any, b: Any) -> list[list[str]]:
    if isinstance(a, dict) and isinstance(b, dict):
        sub = differing_keys(a, b)
        return [sub] if sub else []
    if isinstance(a, list) and isinstance(b, list):
        changes = []
        for i in range(max(len(a), len(b))):
            left = a[i] if i < len(a) else None
            right = b[i] if i < len(b) else None
            if left != right:
                inner = differing_keys(left, right) if isinstance(left, dict) and isinstance(right, dict) else []
                changes.append([str(i), *inner])
        return changes
    return [] if a == b else [[]]


def spec_is_different_message(entity: str, old: dict, new: dict) -> str:
    basic = f"existing {entity} spec is different; use upsert flag to force update"
    keys = [k for k in differing_keys(old, new) if k]
    return f'{basic}; difference in keys "{",".join(keys)}"' if keys else basic


def register(router: Router, sim: Any) -> None:
    state: State = sim.state

    def get_project(req: Request, name: str | None = None) -> dict:
        name = name or req.params.get("name") or req.params.get("project") or ""
        req.ctx.require("projects", "get", name)
        with state.lock:
            proj = state.projects.get(name)
            if proj is None:
                raise not_found(f'appprojects.argoproj.io "{name}" not found')
            return proj

    def validate_project(proj: dict) -> None:
        name = proj["metadata"]["name"]
        for role in proj.get("spec", {}).get("roles") or []:
            rname = role.get("name") or ""
            if not rname:
                raise invalid("invalid role name ''")
            for line in role.get("policies") or []:
                parsed = parse_policy(line)
                if not parsed.rules:
                    raise invalid(f"invalid policy rule '{line}': must be of the form: 'p, sub, res, act, obj, eft'")
                rule = parsed.rules[0]
                if rule.sub != f"proj:{name}:{rname}":
                    raise invalid(
                        f"invalid policy rule '{line}': policy subject must be: 'proj:{name}:{rname}', not '{rule.sub}'"
                    )
                if rule.res in ("applications", "applicationsets", "logs", "exec") and not (
                    rule.obj.startswith(f"{name}/")
                ):
                    raise invalid(
                        f"invalid policy rule '{line}': object must be of form '{name}/*' or '{name}/<APPNAME>'"
                    )
        for window in proj.get("spec", {}).get("syncWindows") or []:
            if window.get("kind") not in ("allow", "deny"):
                raise invalid(f"kind '{window.get('kind')}' mismatch: can only be allow or deny")
            schedule, duration = window.get("schedule", ""), window.get("duration", "")
            try:
                cron.Schedule(schedule)
            except cron.CronError as exc:
                raise invalid(f"cannot parse schedule '{schedule}': {exc}") from exc
            try:
                cron.parse_duration(duration)
            except cron.CronError as exc:
                raise invalid(f"cannot parse duration '{duration}': {exc}") from exc
            if not (window.get("applications") or window.get("namespaces") or window.get("clusters")):
                raise invalid("window must have at least one of applications, namespaces or clusters")

    def normalize(body: dict) -> dict:
        proj = body.get("project")
        if not isinstance(proj, dict) or not (proj.get("metadata") or {}).get("name"):
            raise invalid("project.metadata.name is required")
        meta_in = proj["metadata"]
        meta = {"name": meta_in["name"], "namespace": NAMESPACE}
        for key in ("labels", "annotations", "finalizers"):
            if meta_in.get(key):
                meta[key] = copy.deepcopy(meta_in[key])
        spec = copy.deepcopy(proj.get("spec") or {})
        return {"metadata": meta, "spec": spec, "status": copy.deepcopy(proj.get("status") or {})}

    def list_projects(req: Request) -> dict:
        with state.lock:
            items = [copy.deepcopy(p) for n, p in sorted(state.projects.items()) if req.ctx.can("projects", "get", n)]
            return {"metadata": list_meta(state), "items": items}

    def store(proj: dict, created: bool) -> None:
        name = proj["metadata"]["name"]
        meta = proj["metadata"]
        old = state.projects.get(name)
        if old is not None:
            for k in ("uid", "creationTimestamp"):
                meta[k] = old["metadata"].get(k)
            meta["generation"] = int(old["metadata"].get("generation", 1)) + 1
        else:
            meta.update({"uid": str(uuid.uuid4()), "creationTimestamp": now_ts(), "generation": 1})
        meta["resourceVersion"] = str(state.next_rv())
        state.projects[name] = proj
        state.project_changed(name)
        state.object_event(
            state.project_events,
            "AppProject",
            name,
            meta["uid"],
            "ResourceCreated" if created else "ResourceUpdated",
            "created project" if created else "updated project",
        )

    def create_project(req: Request) -> dict:
        body = req.obj()
        proj = normalize(body)
        name = proj["metadata"]["name"]
        req.ctx.require("projects", "create", name)
        validate_project(proj)
        with state.lock:
            existing = state.projects.get(name)
            if existing is None:
                store(proj, created=True)
                return copy.deepcopy(proj)
            if not body.get("upsert"):
                if existing["spec"] != proj["spec"]:
                    raise invalid(spec_is_different_message("project", existing["spec"], proj["spec"]))
                return copy.deepcopy(existing)
            req.ctx.require("projects", "update", name)
            # An upsert writes only the spec onto the stored project: its labels, annotations, finalizers
            # and status (role tokens) stay as they are.
            updated = copy.deepcopy(existing)
            updated["spec"] = proj["spec"]
            store(updated, created=False)
            return copy.deepcopy(updated)

    def apps_broken_by(name: str, old: dict, new: dict) -> str:
        """Argo CD refuses a project update that takes away a source or destination one of its apps uses."""
        sources = destinations = 0
        for rec in state.apps.values():
            if rec.project != name:
                continue
            spec = rec.obj["spec"]
            repo = state._source(spec).get("repoURL", "")
            if source_permitted(old, repo) and not source_permitted(new, repo):
                sources += 1
            dest = spec.get("destination") or {}
            cluster = state.cluster_of(dest.get("server") or "", dest.get("name") or "")
            ns = dest.get("namespace") or ""
            if cluster and destination_permitted(old, cluster, ns) and not destination_permitted(new, cluster, ns):
                destinations += 1
        parts = [f"{sources} applications source became invalid"] if sources else []
        parts += [f"{destinations} applications destination became invalid"] if destinations else []
        return " and ".join(parts)

    def update_project(req: Request) -> dict:
        name = req.params["project.metadata.name"]
        body = req.obj()
        body.setdefault("project", {}).setdefault("metadata", {})["name"] = name
        meta_in = body["project"]["metadata"]
        proj = normalize(body)
        req.ctx.require("projects", "update", name)
        validate_project(proj)
        with state.lock:
            existing = state.projects.get(name)
            if existing is None:
                raise not_found(f'appprojects.argoproj.io "{name}" not found')
            # The project is written back as sent, so Kubernetes checks its resourceVersion (AppProject is a
            # custom resource: an update without one is refused, a stale one conflicts).
            rv = str(meta_in.get("resourceVersion") or "")
            if not rv:
                raise invalid(
                    f'appprojects.argoproj.io "{name}" is invalid: metadata.resourceVersion: Invalid value: 0x0: '
                    "must be specified for an update"
                )
            if rv != str(existing["metadata"].get("resourceVersion")):
                raise ApiError(
                    ABORTED,
                    f'Operation cannot be fulfilled on appprojects.argoproj.io "{name}": the object has been '
                    "modified; please apply your changes to the latest version and try again",
                )
            broken = apps_broken_by(name, existing["spec"], proj["spec"])
            if broken:
                raise invalid(f"as a result of project update {broken}")
            # Labels left out of the request are taken from the stored project; annotations and finalizers
            # are written as sent.
            if meta_in.get("labels") is None and existing["metadata"].get("labels"):
                proj["metadata"]["labels"] = copy.deepcopy(existing["metadata"]["labels"])
            # Tokens are server-owned: keep status.jwtTokensByRole and each role's jwtTokens.
            proj["status"] = existing.get("status") or {}
            old_roles = {r.get("name"): r for r in existing["spec"].get("roles") or []}
            for role in proj["spec"].get("roles") or []:
                if "jwtTokens" not in role and old_roles.get(role.get("name"), {}).get("jwtTokens"):
                    role["jwtTokens"] = old_roles[role["name"]]["jwtTokens"]
            store(proj, created=False)
            return copy.deepcopy(proj)

    def delete_project(req: Request) -> dict:
        name = req.params["name"]
        if name == "default":
            raise invalid("name 'default' is reserved and cannot be deleted")
        req.ctx.require("projects", "delete", name)
        with state.lock:
            if name not in state.projects:
                raise not_found(f'appprojects.argoproj.io "{name}" not found')
            in_use = sum(1 for rec in state.apps.values() if rec.project == name)
            if in_use:
                raise invalid(f"project is referenced by {in_use} applications")
            del state.projects[name]
            state.project_changed(name)
        return {}

    def detailed(req: Request) -> dict:
        proj = get_project(req)
        with state.lock:
            name = proj["metadata"]["name"]
            repos = [sim.public_repo(r) for r in state.repos.values() if r.get("project") == name]
            clusters = [sim.public_cluster(c) for c in state.clusters.values() if c.get("project") == name]
            out: dict[str, Any] = {"project": copy.deepcopy(proj)}
            if repos:
                out["repositories"] = repos
            if clusters:
                out["clusters"] = clusters
            return out

    def global_projects(req: Request) -> dict:
        get_project(req)
        return {}

    def sync_windows(req: Request) -> dict:
        proj = get_project(req)
        with state.lock:
            windows = [copy.deepcopy(w) for w in proj["spec"].get("syncWindows") or [] if state.window_active(w)]
        return {"windows": windows}

    def project_events(req: Request) -> dict:
        proj = get_project(req)
        with state.lock:
            return {
                "metadata": list_meta(state),
                "items": copy.deepcopy(state.project_events.get(proj["metadata"]["name"], [])),
            }

    def links(req: Request) -> dict:
        get_project(req)
        return {"items": []}

    def find_role(proj: dict, role_name: str) -> dict:
        role = next((r for r in proj["spec"].get("roles") or [] if r.get("name") == role_name), None)
        if role is None:
            raise not_found(f"project '{proj['metadata']['name']}' does not have role '{role_name}'")
        return role

    def create_token(req: Request) -> dict:
        project, role_name = req.params["project"], req.params["role"]
        body = req.obj()
        with state.lock:
            proj = state.projects.get(project)
            if proj is None:
                if not req.ctx.can("projects", "get", project):
                    raise denied()
                raise not_found(f'appprojects.argoproj.io "{project}" not found')
            role = find_role(proj, role_name)
        if not req.ctx.can("projects", "update", project):
            raise denied(req.ctx.denied_message("projects", "update", project))
        expires_in = int(body.get("expiresIn") or 0)
        token_id = str(body.get("id") or "") or str(uuid.uuid4())
        with state.lock:
            if any(t.get("id") == token_id for t in role.get("jwtTokens") or []):
                raise invalid(f"Token id '{token_id}' has been used. ")
            token, claims = auth.issue(state, f"proj:{project}:{role_name}", expires_in, token_id)
            entry = {"iat": claims["iat"], "id": token_id}
            if "exp" in claims:
                entry["exp"] = claims["exp"]
            role.setdefault("jwtTokens", []).append(dict(entry))
            by_role = proj.setdefault("status", {}).setdefault("jwtTokensByRole", {})
            by_role.setdefault(role_name, {"items": []})["items"].append(dict(entry))
            proj["metadata"]["resourceVersion"] = str(state.next_rv())
            state.project_changed(project)
        return {"token": token}

    def delete_token(req: Request) -> dict:
        project, role_name, iat = req.params["project"], req.params["role"], req.params["iat"]
        token_id = req.q("id")
        with state.lock:
            proj = state.projects.get(project)
            if proj is None:
                raise not_found(f'appprojects.argoproj.io "{project}" not found')
            role = next((r for r in proj["spec"].get("roles") or [] if r.get("name") == role_name), None)
            if role is None:
                # Nothing to delete: Argo CD answers an unknown role (or token) with an empty success.
                return {}
        req.ctx.require("projects", "update", project)
        with state.lock:

            def keep(t: dict) -> bool:
                if token_id:
                    return t.get("id") != token_id
                return str(t.get("iat")) != iat

            role["jwtTokens"] = [t for t in role.get("jwtTokens") or [] if keep(t)]
            if not role["jwtTokens"]:
                role.pop("jwtTokens")
            by_role = (proj.get("status") or {}).get("jwtTokensByRole") or {}
            if role_name in by_role:
                by_role[role_name]["items"] = [t for t in by_role[role_name].get("items") or [] if keep(t)]
            proj["metadata"]["resourceVersion"] = str(state.next_rv())
            state.project_changed(project)
        return {}

    router.add("GET", "/api/v1/projects", list_projects)
    router.add("POST", "/api/v1/projects", create_project)
    router.add("GET", "/api/v1/projects/{name}", lambda req: copy.deepcopy(get_project(req)))
    router.add("PUT", "/api/v1/projects/{project.metadata.name}", update_project)
    router.add("DELETE", "/api/v1/projects/{name}", delete_project)
    router.add("GET", "/api/v1/projects/{name}/detailed", detailed)
    router.add("GET", "/api/v1/projects/{name}/globalprojects", global_projects)
    router.add("GET", "/api/v1/projects/{name}/syncwindows", sync_windows)
    router.add("GET", "/api/v1/projects/{name}/events", project_events)
    router.add("GET", "/api/v1/projects/{name}/links", links)
    router.add("POST", "/api/v1/projects/{project}/roles/{role}/token", create_token)
    router.add("DELETE", "/api/v1/projects/{project}/roles/{role}/token/{iat}", delete_token)
    _ = (ApiError, glob_match)

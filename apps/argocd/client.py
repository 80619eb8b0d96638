"""ArgoCDClient: one method per Argo CD REST endpoint the portal uses.

This is the only code in the project that speaks HTTP to Argo CD. Behaviour (timeouts, retries, auth, errors,
streams) lives in ``_http.py``; this file is the endpoint catalogue. Query parameter names are Argo CD's own
(``appNamespace``, ``id.type``, ``updatedFields``, repeated ``projects``); keyword arguments are their
snake_case spelling. ``None`` means "do not send". Bodies and answers are Argo CD's JSON as plain dicts; list
methods return a list of items (``ItemList``: a list that also keeps ``.metadata``/``.resource_version``).

Methods (HTTP method and path):

Server
  version                     GET    /api/version
  get_settings                GET    /api/v1/settings
  list_plugins                GET    /api/v1/settings/plugins
Session
  login                       POST   /api/v1/session              (username/password from the constructor)
  create_session              POST   /api/v1/session              (any username/password, returns the token)
  delete_session              DELETE /api/v1/session
  userinfo                    GET    /api/v1/session/userinfo
Accounts
  list_accounts               GET    /api/v1/account
  get_account                 GET    /api/v1/account/{name}
  update_password             PUT    /api/v1/account/password
  create_account_token        POST   /api/v1/account/{name}/token
  delete_account_token        DELETE /api/v1/account/{name}/token/{id}
  can_i                       GET    /api/v1/account/can-i/{resource}/{action}/{subresource}
Applications
  list_applications           GET    /api/v1/applications
  get_application             GET    /api/v1/applications/{name}            (refresh=normal|hard)
  create_application          POST   /api/v1/applications                   (upsert, validate)
  update_application          PUT    /api/v1/applications/{metadata.name}
  update_application_spec     PUT    /api/v1/applications/{name}/spec
  patch_application           PATCH  /api/v1/applications/{name}            ({"patch": str, "patchType"})
  delete_application          DELETE /api/v1/applications/{name}            (cascade, propagationPolicy)
  sync_application            POST   /api/v1/applications/{name}/sync
  rollback_application        POST   /api/v1/applications/{name}/rollback
  terminate_operation         DELETE /api/v1/applications/{name}/operation
  get_resource_tree           GET    /api/v1/applications/{name}/resource-tree
  get_managed_resources       GET    /api/v1/applications/{name}/managed-resources
  application_logs            GET    /api/v1/applications/{name}/logs       (stream)
  application_logs_async      GET    /api/v1/applications/{name}/logs       (stream, read on the event loop)
  list_application_events     GET    /api/v1/applications/{name}/events
  get_revision_metadata       GET    /api/v1/applications/{name}/revisions/{revision}/metadata
  get_resource                GET    /api/v1/applications/{name}/resource
  patch_resource              POST   /api/v1/applications/{name}/resource
  delete_resource             DELETE /api/v1/applications/{name}/resource
  list_resource_actions       GET    /api/v1/applications/{name}/resource/actions
  run_resource_action         POST   /api/v1/applications/{name}/resource/actions/v2  (v1 fallback on 404/501)
  get_application_syncwindows GET    /api/v1/applications/{name}/syncwindows
  watch_applications          GET    /api/v1/stream/applications            (stream)
ApplicationSets
  list_applicationsets        GET    /api/v1/applicationsets
  get_applicationset          GET    /api/v1/applicationsets/{name}
  create_applicationset       POST   /api/v1/applicationsets                (upsert, dryRun)
  delete_applicationset       DELETE /api/v1/applicationsets/{name}
  generate_applicationset     POST   /api/v1/applicationsets/generate
Projects
  list_projects               GET    /api/v1/projects
  get_project                 GET    /api/v1/projects/{name}
  get_project_detailed        GET    /api/v1/projects/{name}/detailed
  create_project              POST   /api/v1/projects                       ({"project", "upsert"})
  update_project              PUT    /api/v1/projects/{project.metadata.name} ({"project"})
  delete_project              DELETE /api/v1/projects/{name}
  create_project_token        POST   /api/v1/projects/{project}/roles/{role}/token
  delete_project_token        DELETE /api/v1/projects/{project}/roles/{role}/token/{iat}?id=<jti>
  get_project_syncwindows     GET    /api/v1/projects/{name}/syncwindows
  list_project_events         GET    /api/v1/projects/{name}/events
Repositories (URL percent-encoded into one path segment)
  list_repositories           GET    /api/v1/repositories
  get_repository              GET    /api/v1/repositories/{repo}
  create_repository           POST   /api/v1/repositories                   (upsert, credsOnly)
  update_repository           PUT    /api/v1/repositories/{repo.repo}
  delete_repository           DELETE /api/v1/repositories/{repo}
  validate_repository         POST   /api/v1/repositories/{repo}/validate
  list_repository_apps        GET    /api/v1/repositories/{repo}/apps
  list_repository_refs        GET    /api/v1/repositories/{repo}/refs
  list_repocreds              GET    /api/v1/repocreds
  create_repocreds            POST   /api/v1/repocreds                      (upsert)
  update_repocreds            PUT    /api/v1/repocreds/{creds.url}
  delete_repocreds            DELETE /api/v1/repocreds/{url}
Clusters (id percent-encoded into one path segment; id.type server|name|name_escaped)
  list_clusters               GET    /api/v1/clusters                       (server, name)
  get_cluster                 GET    /api/v1/clusters/{id.value}
  create_cluster              POST   /api/v1/clusters                       (upsert)
  update_cluster              PUT    /api/v1/clusters/{id.value}            (updatedFields)
  delete_cluster              DELETE /api/v1/clusters/{id.value}
  rotate_cluster_auth         POST   /api/v1/clusters/{id.value}/rotate-auth
  invalidate_cluster_cache    POST   /api/v1/clusters/{id.value}/invalidate-cache
Certificates and GPG keys
  list_certificates           GET    /api/v1/certificates
  create_certificates         POST   /api/v1/certificates                   (upsert)
  delete_certificates         DELETE /api/v1/certificates
  list_gpg_keys               GET    /api/v1/gpgkeys
  get_gpg_key                 GET    /api/v1/gpgkeys/{keyID}
  create_gpg_key              POST   /api/v1/gpgkeys                        (upsert)
  delete_gpg_key              DELETE /api/v1/gpgkeys?keyID=<id>
Notifications
  list_notification_services  GET    /api/v1/notifications/services
  list_notification_templates GET    /api/v1/notifications/templates
  list_notification_triggers  GET    /api/v1/notifications/triggers
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import requests

from . import errors
from ._aio import AsyncStream
from ._http import ItemList, Stream, Transport, as_list, seg

__all__ = ["ArgoCDClient"]

JSON = dict[str, Any]


def _log_params(
    *,
    pod_name: str | None,
    container: str | None,
    namespace: str | None,
    tail_lines: int | None,
    since_seconds: int | None,
    follow: bool,
    filter: str | None,
    previous: bool | None,
    match_case: bool | None = None,
    since_time: int | None = None,
    kind: str | None,
    group: str | None,
    resource_name: str | None,
    until_time: str | None,
    app_namespace: str | None,
    project: str | None,
    **_: Any,
) -> dict[str, Any]:
    return {
        "podName": pod_name,
        "container": container,
        "namespace": namespace,
        "tailLines": tail_lines,
        "sinceSeconds": since_seconds,
        "follow": follow or None,
        "filter": filter,
        "matchCase": match_case,
        "sinceTime.seconds": since_time,
        "previous": previous,
        "kind": kind,
        "group": group,
        "resourceName": resource_name,
        "untilTime": until_time,
        "appNamespace": app_namespace,
        "project": project,
    }


def _resource_params(
    namespace: str | None, resource_name: str | None, version: str | None, group: str | None, kind: str | None
) -> dict[str, Any]:
    return {"namespace": namespace, "resourceName": resource_name, "version": version, "group": group, "kind": kind}


class ArgoCDClient:
    """Client for one Argo CD instance. Thread-safe enough for concurrent calls; close() when done.

    Auth: pass ``token`` (an API key / JWT), or ``username`` + ``password`` (exchanged for a session token on
    first use and renewed once on a 401), or neither (only unauthenticated endpoints work).

    TLS: verified by default. ``ca_bundle`` is either PEM text (written to a private temp file deleted by
    close()) or the path of a PEM file. ``verify=False`` turns verification off.

    Timeouts/retries: ``connect_timeout``/``read_timeout`` seconds on every call; ``retries`` extra attempts for
    GETs on connection errors and 502/503/504, sleeping ``backoff * 2**n`` (jittered). See ``_http.py``.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        name: str = "",
        verify: bool = True,
        ca_bundle: str | None = None,
        connect_timeout: float = 3.05,
        read_timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.2,
        session: requests.Session | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        parts = urlsplit(self.url)
        # Never show credentials embedded in the URL (https://user:pass@host) in repr, logs or error messages.
        host = parts.netloc.rpartition("@")[2]
        self.name = name or parts._replace(netloc=host).geturl()
        self._t = Transport(
            url,
            token=token,
            username=username,
            password=password,
            name=self.name,
            verify=verify,
            ca_bundle=ca_bundle,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries=retries,
            backoff=backoff,
            session=session,
        )

    def __repr__(self) -> str:
        return f"<ArgoCDClient {self.name!r} auth={self._t.auth_kind}>"

    def __enter__(self) -> ArgoCDClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._t.close()

    # Shorthands used by every endpoint method.
    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self._t.request("GET", path, params=params)

    def _post(self, path: str, body: Any = None, params: Mapping[str, Any] | None = None) -> Any:
        return self._t.request("POST", path, params=params, json_body=body)

    def _put(self, path: str, body: Any = None, params: Mapping[str, Any] | None = None) -> Any:
        return self._t.request("PUT", path, params=params, json_body=body)

    def _patch(self, path: str, body: Any = None, params: Mapping[str, Any] | None = None) -> Any:
        return self._t.request("PATCH", path, params=params, json_body=body)

    def _delete(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self._t.request("DELETE", path, params=params)

    # ================================================================ server
    def version(self) -> JSON:
        """Build info. Unauthenticated it holds only ``Version`` (NOTES §l)."""
        return self._get("/api/version")

    def get_settings(self) -> JSON:
        return self._get("/api/v1/settings")

    def list_plugins(self) -> list[JSON]:
        return list(self._get("/api/v1/settings/plugins").get("plugins") or [])

    # ================================================================ session
    def login(self) -> None:
        """Log in now with the constructor's username/password (otherwise done lazily on the first call)."""
        self._t.login()

    def create_session(self, username: str, password: str) -> str:
        """Exchange any username/password for a session token; the client's own auth is unchanged."""
        doc = self._t.request(
            "POST", "/api/v1/session", json_body={"username": username, "password": password}, auth=False
        )
        return doc.get("token", "")

    def delete_session(self) -> None:
        """Log out as Argo CD's API does: it only clears the browser cookie, the token stays valid until it
        expires. The client forgets it (a later call logs in again if it can)."""
        self._t.request("DELETE", "/api/v1/session")
        self._t.forget_token()

    def userinfo(self) -> JSON:
        """``{"loggedIn", "username", "iss", "groups"}`` of the caller."""
        return self._get("/api/v1/session/userinfo")

    # ================================================================ accounts
    def list_accounts(self) -> list[JSON]:
        return ItemList(self._get("/api/v1/account"))

    def get_account(self, name: str) -> JSON:
        return self._get(f"/api/v1/account/{seg(name)}")

    def update_password(self, new_password: str, current_password: str, *, name: str | None = None) -> None:
        """Change ``name``'s password (default: the caller's own); ``current_password`` is the caller's."""
        body = {"newPassword": new_password, "currentPassword": current_password, "name": name}
        self._put("/api/v1/account/password", {k: v for k, v in body.items() if v is not None})

    def create_account_token(self, name: str, expires_in: int | None = None, token_id: str | None = None) -> str:
        """Create an API key for a local account; returns the JWT (show it once, never log it)."""
        body: JSON = {"name": name}
        if expires_in is not None:
            body["expiresIn"] = int(expires_in)
        if token_id is not None:
            body["id"] = token_id
        return self._post(f"/api/v1/account/{seg(name)}/token", body).get("token", "")

    def delete_account_token(self, name: str, token_id: str) -> None:
        self._delete(f"/api/v1/account/{seg(name)}/token/{seg(token_id)}")

    def can_i(self, resource: str, action: str, subresource: str) -> bool:
        """RBAC check for the caller, e.g. ``can_i("projects", "create", "team-a")`` → True/False.

        Over REST ``subresource`` is one path segment and grpc-gateway v1 splits on the *decoded* path, so it
        cannot contain "/" (a "project/app" object never reaches Argo CD): refused here rather than 404 there.
        Argo CD matches it literally against policy objects: ``"*"`` does not match an ``"*/*"`` policy.
        """
        if "/" in subresource:
            raise ValueError("can_i: subresource cannot contain '/' over the REST API")
        return (
            self._get(f"/api/v1/account/can-i/{seg(resource)}/{seg(action)}/{seg(subresource)}").get("value") == "yes"
        )

    # ================================================================ applications
    def list_applications(
        self,
        projects: str | Sequence[str] | None = None,
        selector: str | None = None,
        app_namespace: str | None = None,
        fields: str | Sequence[str] | None = None,
        repo: str | None = None,
        *,
        name: str | None = None,
        resource_version: str | None = None,
    ) -> ItemList:
        """All permitted applications in one response (Argo CD has no pagination).

        ``fields`` on the list only honours Argo CD's whitelist, with an ``items.`` prefix
        (e.g. ``["items.metadata.name", "items.status.sync.status"]``), NOTES §k.
        """
        params = {
            "projects": as_list(projects),
            "selector": selector,
            "appNamespace": app_namespace,
            "fields": _fields(fields),
            "repo": repo,
            "name": name,
            "resourceVersion": resource_version,
        }
        return ItemList(self._get("/api/v1/applications", params))

    def get_application(
        self,
        name: str,
        *,
        app_namespace: str | None = None,
        project: str | None = None,
        refresh: str | bool | None = None,
    ) -> JSON:
        """One application. Without ``project`` a missing app is PermissionDenied, with it NotFound (NOTES §a).

        ``refresh``: True/"normal" or "hard"; Argo CD blocks until the controller has reconciled.
        """
        if refresh is True:
            refresh = "normal"
        params = {"appNamespace": app_namespace, "project": project, "refresh": refresh or None}
        return self._get(f"/api/v1/applications/{seg(name)}", params)

    def create_application(self, app: JSON, *, upsert: bool = False, validate: bool = True) -> JSON:
        return self._post("/api/v1/applications", app, {"upsert": upsert, "validate": validate})

    def update_application(self, app: JSON, *, validate: bool = True, project: str | None = None) -> JSON:
        """Full replace of spec/labels/annotations/finalizers of ``app["metadata"]["name"]``."""
        name = app["metadata"]["name"]
        return self._put(f"/api/v1/applications/{seg(name)}", app, {"validate": validate, "project": project})

    def update_application_spec(
        self,
        name: str,
        spec: JSON,
        *,
        validate: bool = True,
        app_namespace: str | None = None,
        project: str | None = None,
    ) -> JSON:
        params = {"validate": validate, "appNamespace": app_namespace, "project": project}
        return self._put(f"/api/v1/applications/{seg(name)}/spec", spec, params)

    def patch_application(
        self,
        name: str,
        patch: str | list | JSON,
        *,
        patch_type: str = "merge",
        app_namespace: str | None = None,
        project: str | None = None,
    ) -> JSON:
        """Patch an application. ``patch`` is a JSON Patch list (``patch_type="json"``), a merge-patch dict
        (``"merge"``) or the already-encoded string; Argo CD wants it as a *string* inside the body."""
        if patch_type not in ("json", "merge"):
            raise ValueError("patch_type must be 'json' or 'merge'")
        body = {
            "patch": patch if isinstance(patch, str) else json.dumps(patch),
            "patchType": patch_type,
            "appNamespace": app_namespace,
            "project": project,
        }
        return self._patch(f"/api/v1/applications/{seg(name)}", _drop_none(body))

    def delete_application(
        self,
        name: str,
        *,
        cascade: bool | None = None,
        propagation_policy: str | None = None,
        app_namespace: str | None = None,
        project: str | None = None,
    ) -> None:
        """``cascade`` defaults to true server-side; ``propagation_policy`` is "foreground" or "background"."""
        params = {
            "cascade": cascade,
            "propagationPolicy": propagation_policy,
            "appNamespace": app_namespace,
            "project": project,
        }
        self._delete(f"/api/v1/applications/{seg(name)}", params)

    def sync_application(
        self,
        name: str,
        *,
        revision: str | None = None,
        prune: bool = False,
        dry_run: bool = False,
        strategy: str | JSON | None = None,
        resources: Iterable[JSON] | None = None,
        sync_options: Sequence[str] | None = None,
        retry: JSON | None = None,
        infos: Mapping[str, str] | Iterable[JSON] | None = None,
        app_namespace: str | None = None,
        project: str | None = None,
    ) -> JSON:
        """Start a sync; returns the Application with ``operation`` set. Poll until ``operation`` is gone.

        ``strategy``: "apply", "hook", "apply-force", "hook-force", or Argo CD's dict (``{"hook": {"force": true}}``).
        ``resources``: ``[{"group", "kind", "name", "namespace"}]`` for a partial sync.
        ``retry``: Argo CD's ``retryStrategy`` dict (``{"limit": 3, "backoff": {...}}``).
        ``infos``: a mapping or ``[{"name", "value"}]`` recorded on the operation.
        """
        body: JSON = {"prune": prune, "dryRun": dry_run}
        if revision:
            body["revision"] = revision
        if strategy:
            body["strategy"] = _sync_strategy(strategy)
        if resources is not None:
            body["resources"] = list(resources)
        if sync_options is not None:
            body["syncOptions"] = {"items": list(sync_options)}
        if retry is not None:
            body["retryStrategy"] = retry
        if infos is not None:
            body["infos"] = (
                [{"name": k, "value": v} for k, v in infos.items()] if isinstance(infos, Mapping) else list(infos)
            )
        body.update(_drop_none({"appNamespace": app_namespace, "project": project}))
        return self._post(f"/api/v1/applications/{seg(name)}/sync", body)

    def rollback_application(
        self,
        name: str,
        history_id: int,
        *,
        dry_run: bool = False,
        prune: bool = False,
        app_namespace: str | None = None,
        project: str | None = None,
    ) -> JSON:
        """Re-deploy ``status.history[].id``; refused (400) while auto-sync is on."""
        body = {"id": int(history_id), "dryRun": dry_run, "prune": prune, "appNamespace": app_namespace}
        body["project"] = project
        return self._post(f"/api/v1/applications/{seg(name)}/rollback", _drop_none(body))

    def terminate_operation(self, name: str, *, app_namespace: str | None = None, project: str | None = None) -> None:
        """Stop the running operation; 400 "No operation is in progress" when there is none yet."""
        params = {"appNamespace": app_namespace, "project": project}
        self._delete(f"/api/v1/applications/{seg(name)}/operation", params)

    def get_resource_tree(self, name: str, *, app_namespace: str | None = None, project: str | None = None) -> JSON:
        """``{"nodes", "orphanedNodes", "hosts"}`` (the server ignores tree filters, so none are offered)."""
        params = {"appNamespace": app_namespace, "project": project}
        return self._get(f"/api/v1/applications/{seg(name)}/resource-tree", params)

    def get_manifests(
        self, name: str, *, revision: str | None = None, app_namespace: str | None = None, project: str | None = None
    ) -> JSON:
        """The app's manifests at ``revision`` (its targetRevision when None); ``revision`` in the answer is the
        commit SHA it resolved to."""
        params = {"revision": revision, "appNamespace": app_namespace, "project": project}
        return self._get(f"/api/v1/applications/{seg(name)}/manifests", params)

    def get_managed_resources(
        self,
        name: str,
        *,
        namespace: str | None = None,
        resource_name: str | None = None,
        version: str | None = None,
        group: str | None = None,
        kind: str | None = None,
        app_namespace: str | None = None,
        project: str | None = None,
    ) -> list[JSON]:
        """ResourceDiff items; ``targetState``/``liveState``/… are JSON *strings* ("null" when absent)."""
        params = {
            **_resource_params(namespace, None, version, group, kind),
            "name": resource_name,
            "appNamespace": app_namespace,
            "project": project,
        }
        return ItemList(self._get(f"/api/v1/applications/{seg(name)}/managed-resources", params))

    def application_logs(
        self,
        name: str,
        *,
        pod_name: str | None = None,
        container: str | None = None,
        namespace: str | None = None,
        tail_lines: int | None = None,
        since_seconds: int | None = None,
        follow: bool = False,
        filter: str | None = None,
        match_case: bool | None = None,
        since_time: int | None = None,
        previous: bool | None = None,
        kind: str | None = None,
        group: str | None = None,
        resource_name: str | None = None,
        until_time: str | None = None,
        app_namespace: str | None = None,
        project: str | None = None,
        read_timeout: float | None = None,
    ) -> Stream:
        """Stream of log entries ``{"content", "timeStamp", "timeStampStr", "podName", "last"}``.

        Iteration ends at the server's ``last: true`` sentinel (not yielded). Use ``with`` or ``close()`` to
        drop the connection early (needed with ``follow=True``).
        """
        params = _log_params(**locals())
        path = f"/api/v1/applications/{seg(name)}/logs"
        return Stream(self._t, "GET", path, params, read_timeout=read_timeout, stop_on_last=True)

    def application_logs_async(
        self,
        name: str,
        *,
        pod_name: str | None = None,
        container: str | None = None,
        namespace: str | None = None,
        tail_lines: int | None = None,
        since_seconds: int | None = None,
        follow: bool = False,
        filter: str | None = None,
        match_case: bool | None = None,
        since_time: int | None = None,
        previous: bool | None = None,
        kind: str | None = None,
        group: str | None = None,
        resource_name: str | None = None,
        until_time: str | None = None,
        app_namespace: str | None = None,
        project: str | None = None,
        read_timeout: float | None = None,
    ) -> AsyncStream:
        """``application_logs`` for the event loop: ``async with`` it, then ``async for`` its entries.

        Call it from sync code (it may log in first); once made, the stream no longer needs this client. Meant
        for ``follow=True`` in views served over ASGI, where a blocking stream would hold a thread while it waits.
        """
        params = _log_params(**locals())
        path = f"/api/v1/applications/{seg(name)}/logs"
        return AsyncStream(self._t, "GET", path, params, read_timeout=read_timeout, stop_on_last=True)

    def list_application_events(
        self,
        name: str,
        *,
        resource_namespace: str | None = None,
        resource_name: str | None = None,
        resource_uid: str | None = None,
        app_namespace: str | None = None,
        project: str | None = None,
    ) -> ItemList:
        """Kubernetes events of the Application (the audit trail) or, with resource_*, of one live resource."""
        params = {
            "resourceNamespace": resource_namespace,
            "resourceName": resource_name,
            "resourceUID": resource_uid,
            "appNamespace": app_namespace,
            "project": project,
        }
        return ItemList(self._get(f"/api/v1/applications/{seg(name)}/events", params))

    def get_application_manifests(
        self,
        name: str,
        *,
        revision: str | None = None,
        app_namespace: str | None = None,
        project: str | None = None,
    ) -> JSON:
        """The manifests the app's source renders at ``revision`` (default its target revision), decoded:
        ``{"manifests": [dict, …], "revision", "namespace", "server", "sourceType"}``."""
        params = {"revision": revision, "appNamespace": app_namespace, "project": project}
        path = f"/api/v1/applications/{seg(name)}/manifests"
        doc = self._get(path, params)
        # Argo CD sends each manifest as a JSON string.
        doc["manifests"] = [_json_string(m, self, "GET", path) for m in doc.get("manifests") or []]
        return doc

    def get_revision_metadata(
        self,
        name: str,
        revision: str,
        *,
        source_index: int | None = None,
        version_id: int | None = None,
        app_namespace: str | None = None,
        project: str | None = None,
    ) -> JSON:
        """Commit metadata (author, date, message, tags) of one revision. History itself is ``status.history``."""
        params = {
            "sourceIndex": source_index,
            "versionId": version_id,
            "appNamespace": app_namespace,
            "project": project,
        }
        return self._get(f"/api/v1/applications/{seg(name)}/revisions/{seg(revision)}/metadata", params)

    def get_resource(
        self,
        name: str,
        *,
        namespace: str | None = None,
        resource_name: str,
        version: str,
        kind: str,
        group: str | None = None,
        app_namespace: str | None = None,
        project: str | None = None,
    ) -> JSON:
        """One live manifest of the app, decoded (Argo CD sends it as a JSON string in ``manifest``)."""
        params = {
            **_resource_params(namespace, resource_name, version, group, kind),
            "appNamespace": app_namespace,
            "project": project,
        }
        doc = self._get(f"/api/v1/applications/{seg(name)}/resource", params)
        return _json_string(doc.get("manifest"), self, "GET", f"/api/v1/applications/{seg(name)}/resource")

    def patch_resource(
        self,
        name: str,
        patch: str | list | JSON,
        *,
        patch_type: str = "application/merge-patch+json",
        namespace: str | None = None,
        resource_name: str,
        version: str,
        kind: str,
        group: str | None = None,
        app_namespace: str | None = None,
        project: str | None = None,
    ) -> JSON:
        """Patch one live resource; the body is the patch as a JSON string, ``patch_type`` a k8s patch type."""
        params = {
            **_resource_params(namespace, resource_name, version, group, kind),
            "patchType": patch_type,
            "appNamespace": app_namespace,
            "project": project,
        }
        body = patch if isinstance(patch, str) else json.dumps(patch)
        doc = self._post(f"/api/v1/applications/{seg(name)}/resource", body, params)
        return _json_string(doc.get("manifest"), self, "POST", f"/api/v1/applications/{seg(name)}/resource")

    def delete_resource(
        self,
        name: str,
        *,
        namespace: str | None = None,
        resource_name: str,
        version: str,
        kind: str,
        group: str | None = None,
        force: bool | None = None,
        orphan: bool | None = None,
        app_namespace: str | None = None,
        project: str | None = None,
    ) -> None:
        params = {
            **_resource_params(namespace, resource_name, version, group, kind),
            "force": force,
            "orphan": orphan,
            "appNamespace": app_namespace,
            "project": project,
        }
        self._delete(f"/api/v1/applications/{seg(name)}/resource", params)

    def list_resource_actions(
        self,
        name: str,
        *,
        namespace: str | None = None,
        resource_name: str,
        version: str,
        kind: str,
        group: str | None = None,
        app_namespace: str | None = None,
        project: str | None = None,
    ) -> list[JSON]:
        """``[{"name", "disabled"?, "iconClass"?, "displayName"?, "params"?}]``; order is not stable."""
        params = {
            **_resource_params(namespace, resource_name, version, group, kind),
            "appNamespace": app_namespace,
            "project": project,
        }
        doc = self._get(f"/api/v1/applications/{seg(name)}/resource/actions", params)
        return list(doc.get("actions") or [])

    def run_resource_action(
        self,
        name: str,
        action: str,
        *,
        namespace: str | None = None,
        resource_name: str,
        version: str,
        kind: str,
        group: str | None = None,
        parameters: Mapping[str, str] | None = None,
        app_namespace: str | None = None,
        project: str | None = None,
    ) -> None:
        """Run a resource action (e.g. "restart"). Uses the v2 endpoint; servers older than 3.1 lack it
        (404/501), then the deprecated v1 form (body = the bare action name) is used — it cannot carry
        ``parameters``, so with parameters the v2 error is raised instead."""
        base = f"/api/v1/applications/{seg(name)}/resource/actions"
        target = _resource_params(namespace, resource_name, version, group, kind)
        scope = {"appNamespace": app_namespace, "project": project}
        body = _drop_none({**target, **scope, "action": action})
        if parameters:
            body["resourceActionParameters"] = [{"name": k, "value": str(v)} for k, v in parameters.items()]
        try:
            self._post(f"{base}/v2", body)
        except (errors.NotFound, errors.Unimplemented) as exc:
            if parameters or not _route_missing(exc):
                raise
            self._post(base, action, {**target, **scope})

    def get_application_syncwindows(
        self, name: str, *, app_namespace: str | None = None, project: str | None = None
    ) -> JSON:
        """``{"activeWindows", "assignedWindows", "canSync"}`` (empty lists are omitted by Argo CD)."""
        params = {"appNamespace": app_namespace, "project": project}
        return self._get(f"/api/v1/applications/{seg(name)}/syncwindows", params)

    def watch_applications(
        self,
        *,
        fields: str | Sequence[str] | None = None,
        projects: str | Sequence[str] | None = None,
        selector: str | None = None,
        resource_version: str | None = None,
        name: str | None = None,
        app_namespace: str | None = None,
        read_timeout: float | None = None,
    ) -> Stream:
        """Stream of ``{"type": "ADDED"|"MODIFIED"|"DELETED", "application": {…}}``.

        Without ``resource_version`` it starts with ADDED for every matching app. ``fields`` paths start at
        ``result`` (``result.type,result.application.metadata.name``). The NDJSON stream sends no keep-alives:
        an idle period longer than ``read_timeout`` (default: the client's) raises Unavailable — reconnect with
        the last seen ``metadata.resourceVersion``.
        """
        params = {
            "fields": _fields(fields),
            "projects": as_list(projects),
            "selector": selector,
            "resourceVersion": resource_version,
            "name": name,
            "appNamespace": app_namespace,
        }
        return Stream(self._t, "GET", "/api/v1/stream/applications", params, read_timeout=read_timeout)

    # ================================================================ applicationsets
    def list_applicationsets(
        self,
        projects: str | Sequence[str] | None = None,
        selector: str | None = None,
        appset_namespace: str | None = None,
    ) -> ItemList:
        params = {"projects": as_list(projects), "selector": selector, "appsetNamespace": appset_namespace}
        return ItemList(self._get("/api/v1/applicationsets", params))

    def get_applicationset(self, name: str, *, appset_namespace: str | None = None) -> JSON:
        return self._get(f"/api/v1/applicationsets/{seg(name)}", {"appsetNamespace": appset_namespace})

    def create_applicationset(self, appset: JSON, *, upsert: bool = False, dry_run: bool = False) -> JSON:
        return self._post("/api/v1/applicationsets", appset, {"upsert": upsert, "dryRun": dry_run})

    def delete_applicationset(self, name: str, *, appset_namespace: str | None = None) -> None:
        self._delete(f"/api/v1/applicationsets/{seg(name)}", {"appsetNamespace": appset_namespace})

    def generate_applicationset(self, appset: JSON) -> list[JSON]:
        """Preview: the Applications this ApplicationSet would generate, without creating anything."""
        doc = self._post("/api/v1/applicationsets/generate", {"applicationSet": appset})
        return list(doc.get("applications") or [])

    # ================================================================ projects
    def list_projects(self) -> ItemList:
        return ItemList(self._get("/api/v1/projects"))

    def get_project(self, name: str) -> JSON:
        return self._get(f"/api/v1/projects/{seg(name)}")

    def get_project_detailed(self, name: str) -> JSON:
        """``{"project", "globalProjects", "repositories", "clusters"}``."""
        return self._get(f"/api/v1/projects/{seg(name)}/detailed")

    def create_project(self, project: JSON, *, upsert: bool = False) -> JSON:
        return self._post("/api/v1/projects", {"project": project, "upsert": upsert})

    def update_project(self, project: JSON) -> JSON:
        name = project["metadata"]["name"]
        return self._put(f"/api/v1/projects/{seg(name)}", {"project": project})

    def delete_project(self, name: str) -> None:
        self._delete(f"/api/v1/projects/{seg(name)}")

    def create_project_token(
        self,
        project: str,
        role: str,
        *,
        expires_in: int | None = None,
        token_id: str | None = None,
        description: str | None = None,
    ) -> str:
        """Create a JWT for a project role; returns the token (show once, never log)."""
        body = _drop_none(
            {"project": project, "role": role, "expiresIn": expires_in, "id": token_id, "description": description}
        )
        return self._post(f"/api/v1/projects/{seg(project)}/roles/{seg(role)}/token", body).get("token", "")

    def delete_project_token(self, project: str, role: str, iat: int, *, token_id: str | None = None) -> None:
        """Revoke a role token: ``iat`` is the legacy identifier in the path, ``token_id`` the jti (``?id=``)."""
        path = f"/api/v1/projects/{seg(project)}/roles/{seg(role)}/token/{int(iat)}"
        self._delete(path, {"id": token_id})

    def get_project_syncwindows(self, name: str) -> list[JSON]:
        """The project's *currently active* sync windows."""
        return list(self._get(f"/api/v1/projects/{seg(name)}/syncwindows").get("windows") or [])

    def list_project_events(self, name: str) -> ItemList:
        return ItemList(self._get(f"/api/v1/projects/{seg(name)}/events"))

    # ================================================================ repositories
    def list_repositories(
        self, *, repo: str | None = None, force_refresh: bool | None = None, app_project: str | None = None
    ) -> ItemList:
        params = {"repo": repo, "forceRefresh": force_refresh, "appProject": app_project}
        return ItemList(self._get("/api/v1/repositories", params))

    def get_repository(self, url: str, *, force_refresh: bool | None = None, app_project: str | None = None) -> JSON:
        params = {"forceRefresh": force_refresh, "appProject": app_project}
        return self._get(f"/api/v1/repositories/{seg(url)}", params)

    def create_repository(self, repo: JSON, *, upsert: bool = False, creds_only: bool = False) -> JSON:
        return self._post("/api/v1/repositories", repo, {"upsert": upsert, "credsOnly": creds_only})

    def update_repository(self, repo: JSON) -> JSON:
        return self._put(f"/api/v1/repositories/{seg(repo['repo'])}", repo)

    def delete_repository(self, url: str, *, force_refresh: bool | None = None, app_project: str | None = None) -> None:
        self._delete(f"/api/v1/repositories/{seg(url)}", {"forceRefresh": force_refresh, "appProject": app_project})

    def validate_repository(self, url: str, **access: Any) -> None:
        """Check that Argo CD can reach ``url``; raises on failure.

        ``access`` uses Argo CD's query names (``username``, ``password``, ``sshPrivateKey``, ``insecure``,
        ``type``, ``project``, ``enableOci``, …). Argo CD takes these credentials **in the query string** — the
        client never logs query strings, but a proxy in front of Argo CD may.
        """
        self._post(f"/api/v1/repositories/{seg(url)}/validate", url, access)

    def list_repository_apps(
        self,
        url: str,
        *,
        revision: str | None = None,
        app_name: str | None = None,
        app_project: str | None = None,
    ) -> list[JSON]:
        """Application directories found in the repo: ``[{"type", "path"}]``."""
        params = {"revision": revision, "appName": app_name, "appProject": app_project}
        return ItemList(self._get(f"/api/v1/repositories/{seg(url)}/apps", params))

    def list_repository_refs(self, url: str, *, force_refresh: bool | None = None) -> JSON:
        """``{"branches": [...], "tags": [...]}``."""
        return self._get(f"/api/v1/repositories/{seg(url)}/refs", {"forceRefresh": force_refresh})

    def list_helm_charts(self, url: str) -> list[JSON]:
        """Charts of a Helm repository: ``[{"name", "versions": [...]}]``."""
        return ItemList(self._get(f"/api/v1/repositories/{seg(url)}/helmcharts"))

    def get_repository_app_details(
        self, source: JSON, *, app_name: str | None = None, app_project: str | None = None
    ) -> JSON:
        """What Argo CD finds at a source (RepoAppDetailsResponse): ``{"type", "helm"|"kustomize"|"directory"}``;
        for Helm, the chart's ``values`` (values.yaml text) and ``parameters`` (``[{"name", "value"}]``)."""
        body = _drop_none({"source": source, "appName": app_name, "appProject": app_project})
        return self._post(f"/api/v1/repositories/{seg(source['repoURL'])}/appdetails", body)

    def list_repocreds(self, *, url: str | None = None) -> ItemList:
        return ItemList(self._get("/api/v1/repocreds", {"url": url}))

    def create_repocreds(self, creds: JSON, *, upsert: bool = False) -> JSON:
        return self._post("/api/v1/repocreds", creds, {"upsert": upsert})

    def update_repocreds(self, creds: JSON) -> JSON:
        return self._put(f"/api/v1/repocreds/{seg(creds['url'])}", creds)

    def delete_repocreds(self, url: str) -> None:
        self._delete(f"/api/v1/repocreds/{seg(url)}")

    # ================================================================ clusters
    def list_clusters(self, *, server: str | None = None, name: str | None = None) -> ItemList:
        return ItemList(self._get("/api/v1/clusters", {"server": server, "name": name}))

    def get_cluster(self, cluster_id: str, *, id_type: str = "server") -> JSON:
        """``cluster_id`` is the API server URL (``id_type="server"``) or the cluster name (``"name"``)."""
        return self._get(f"/api/v1/clusters/{seg(cluster_id)}", {"id.type": id_type})

    def create_cluster(self, cluster: JSON, *, upsert: bool = False) -> JSON:
        return self._post("/api/v1/clusters", cluster, {"upsert": upsert})

    def update_cluster(self, cluster: JSON, *, updated_fields: Sequence[str] | None = None) -> JSON:
        """Update the cluster identified by ``cluster["server"]``; ``updated_fields`` (e.g. ``["name",
        "namespaces"]``) limits which fields are written."""
        params = {"id.type": "server", "updatedFields": list(updated_fields) if updated_fields else None}
        return self._put(f"/api/v1/clusters/{seg(cluster['server'])}", cluster, params)

    def delete_cluster(self, cluster_id: str, *, id_type: str = "server") -> None:
        self._delete(f"/api/v1/clusters/{seg(cluster_id)}", {"id.type": id_type})

    def rotate_cluster_auth(self, server: str) -> None:
        self._post(f"/api/v1/clusters/{seg(server)}/rotate-auth")

    def invalidate_cluster_cache(self, server: str) -> JSON:
        return self._post(f"/api/v1/clusters/{seg(server)}/invalidate-cache")

    # ================================================================ certificates and GPG keys
    def list_certificates(
        self,
        *,
        host_name_pattern: str | None = None,
        cert_type: str | None = None,
        cert_sub_type: str | None = None,
    ) -> ItemList:
        params = {"hostNamePattern": host_name_pattern, "certType": cert_type, "certSubType": cert_sub_type}
        return ItemList(self._get("/api/v1/certificates", params))

    def create_certificates(self, certificates: Iterable[JSON], *, upsert: bool = False) -> ItemList:
        """Add TLS/SSH known-host certificates: ``[{"serverName", "certType": "https"|"ssh", "certSubType",
        "certData"}]``. ``certData`` is a Go ``[]byte``, i.e. base64 in JSON: pass ``bytes`` (the PEM text or the
        SSH key field) and the client encodes it, or pass the base64 string yourself."""
        items = [
            {**c, "certData": base64.b64encode(c["certData"]).decode()} if isinstance(c.get("certData"), bytes) else c
            for c in certificates
        ]
        return ItemList(self._post("/api/v1/certificates", {"items": items}, {"upsert": upsert}))

    def delete_certificates(
        self,
        *,
        host_name_pattern: str | None = None,
        cert_type: str | None = None,
        cert_sub_type: str | None = None,
    ) -> ItemList:
        """Delete every certificate matching the filters; returns the deleted ones."""
        if not (host_name_pattern or cert_type or cert_sub_type):
            # Refuse the unfiltered form: it would delete all certificates on the instance.
            raise ValueError("delete_certificates needs at least one filter")
        params = {"hostNamePattern": host_name_pattern, "certType": cert_type, "certSubType": cert_sub_type}
        return ItemList(self._delete("/api/v1/certificates", params))

    def list_gpg_keys(self, *, key_id: str | None = None) -> ItemList:
        return ItemList(self._get("/api/v1/gpgkeys", {"keyID": key_id}))

    def get_gpg_key(self, key_id: str) -> JSON:
        return self._get(f"/api/v1/gpgkeys/{seg(key_id)}")

    def create_gpg_key(self, key: str | JSON, *, upsert: bool = False) -> JSON:
        """``key`` is ASCII-armoured key data or a GnuPGPublicKey dict (``{"keyData": …}``).

        Returns ``{"created": {"items": [key…]}, "skipped": [keyID…]}`` (an existing key is skipped)."""
        body = {"keyData": key} if isinstance(key, str) else key
        return self._post("/api/v1/gpgkeys", body, {"upsert": upsert})

    def delete_gpg_key(self, key_id: str) -> None:
        self._delete("/api/v1/gpgkeys", {"keyID": key_id})

    # ================================================================ notifications
    def list_notification_services(self) -> ItemList:
        return ItemList(self._get("/api/v1/notifications/services"))

    def list_notification_templates(self) -> ItemList:
        return ItemList(self._get("/api/v1/notifications/templates"))

    def list_notification_triggers(self) -> ItemList:
        return ItemList(self._get("/api/v1/notifications/triggers"))


# ---------------------------------------------------------------- helpers
def _drop_none(d: Mapping[str, Any]) -> JSON:
    return {k: v for k, v in d.items() if v is not None}


def _fields(fields: str | Sequence[str] | None) -> str | None:
    if fields is None or isinstance(fields, str):
        return fields
    return ",".join(fields)


def _sync_strategy(strategy: str | JSON) -> JSON:
    if isinstance(strategy, Mapping):
        return dict(strategy)
    kind, _, force = strategy.partition("-")
    if kind not in ("apply", "hook") or force not in ("", "force"):
        raise ValueError("strategy must be 'apply', 'hook', 'apply-force', 'hook-force' or a dict")
    # Real Argo CD JSON is flattened ({"hook": {"force": true}}), not swagger's hook.syncStrategyApply (NOTES §d).
    return {kind: {"force": bool(force)}}


def _route_missing(exc: errors.ArgoCDError) -> bool:
    """True when a 404/501 means "this server has no such endpoint" rather than "no such app"."""
    if isinstance(exc, errors.Unimplemented):
        return True
    # grpc-gateway answers an unknown route with text/plain "Not Found" and no gRPC code.
    return exc.grpc_code is None


def _json_string(value: Any, client: ArgoCDClient, method: str, path: str) -> JSON:
    if not value:
        return {}
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        raise errors.BadResponse("manifest is not valid JSON", instance=client.name, method=method, path=path) from None

"""One `ResourceKind` descriptor per Argo CD kind; the generic views in views.py read nothing else.

A descriptor says how to call Argo CD (list/get/create/update/delete), how to name one object in a URL
(`key`), which project it belongs to for permission checks (`project_of`; None = instance-wide, checked with
project="*", app="*"), what to show (columns, detail sections), how to edit it (form fields or YAML), which
extra actions it has and which grant action each needs. See README.md in this folder for how to add a kind.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apps.argocd import ArgoCDClient

from . import validators

JSON = dict[str, Any]


# ---------------------------------------------------------------- dotted paths
def dig(obj: Any, path: str, default: Any = None) -> Any:
    """`dig(cluster, "config.tlsClientConfig.insecure")`; missing parts give `default`."""
    for part in path.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return default
        obj = obj[part]
    return obj


def put(obj: JSON, path: str, value: Any) -> None:
    """Set a dotted path, creating dicts on the way; `None` removes the leaf (Argo CD: absent = default)."""
    parts = path.split(".")
    for part in parts[:-1]:
        obj = obj.setdefault(part, {})
    if value is None:
        obj.pop(parts[-1], None)
    else:
        obj[parts[-1]] = value


def object_url(slug: str, instance: str, key: str, action: str = "") -> str:
    """URL of one object; the key is percent-encoded whole (repository URLs and servers contain "/")."""
    from urllib.parse import quote

    return f"/kinds/{slug}/{instance}/{quote(key, safe='')}/" + (f"{action}/" if action else "")


# ---------------------------------------------------------------- descriptor parts
@dataclass(frozen=True)
class Field:
    """One form field bound to a dotted path of the Argo CD object.

    type: text | textarea | bool | int | choice | lines (list of strings, one a line) | pairs (map, key=value
    lines) | rows (list of dicts, `subkeys` separated by spaces on each line) | table (list of dicts edited row
    by row, one input per `Column`; keys the table does not show are kept from the stored row).
    secret: write-only — never filled in, never rendered; left blank on edit it is not sent (keeps the stored one).
    create_only: part of the identity (URL, server, name): shown on create, fixed on edit.
    check: the entered (non-blank) value → "" if fine, else the message shown under the field.
    """

    name: str
    label: str
    path: str = ""
    type: str = "text"
    required: bool = False
    secret: bool = False
    create_only: bool = False
    choices: tuple[tuple[str, str], ...] = ()
    subkeys: tuple[str, ...] = ()
    help: str = ""
    group: str = ""  # fields with the same group share a <fieldset>
    check: Callable[[Any], str] | None = None
    columns: tuple[TableColumn, ...] = ()  # type "table"

    @property
    def target(self) -> str:
        return self.path or self.name


@dataclass(frozen=True)
class TableColumn:
    """One input of a table field's row. type: text | lines (a list, one a line) | bool | choice."""

    key: str
    label: str
    type: str = "text"
    required: bool = False
    choices: tuple[str, ...] = ()
    placeholder: str = ""


@dataclass(frozen=True)
class Column:
    label: str
    path: str = ""
    get: Callable[[JSON], Any] | None = None
    badge: bool = False

    def value(self, obj: JSON) -> Any:
        return self.get(obj) if self.get else dig(obj, self.path, "")


@dataclass(frozen=True)
class Section:
    """A detail-page block: `get(obj)` returns a dict (key/value), a list of dicts (table) or text."""

    title: str
    get: Callable[[JSON], Any]


@dataclass(frozen=True)
class Extra:
    """An extra POST action on the detail page (button name = `name`), checked against grant `action`."""

    name: str
    label: str
    action: str
    confirm: str = ""  # text of the confirmation dialog; empty = plain button
    operation: str = ""  # Operation.Kind when the action runs as an Operation (rotations)
    inputs: bool = False  # its form lives in the kind's extras template, not as a bare button


@dataclass(frozen=True)
class Filter:
    """A list filter passed to the list call (query-string name = `name`)."""

    name: str
    label: str
    choices: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ResourceKind:
    slug: str
    title: str
    singular: str
    audit_kind: str
    list: Callable[[ArgoCDClient, JSON], list[JSON]]
    key: Callable[[JSON], str]
    columns: tuple[Column, ...]
    get: Callable[[ArgoCDClient, str], JSON] | None = None
    create: Callable[[ArgoCDClient, JSON], Any] | None = None
    update: Callable[[ArgoCDClient, JSON, list[str]], Any] | None = None
    delete: Callable[[ArgoCDClient, str, JSON], Any] | None = None
    project_of: Callable[[JSON], str] | None = None  # None = instance-wide kind
    sections: tuple[Section, ...] = ()
    fields: tuple[Field, ...] = ()
    yaml: bool = False  # edited as YAML (metadata + spec); `fields` may add a structured form beside it
    yaml_template: str = ""
    extras: tuple[Extra, ...] = ()
    filters: tuple[Filter, ...] = ()
    typed_delete: bool = False  # the delete dialog asks for the key to be typed
    readonly_keys: tuple[str, ...] = ()  # server-owned top-level keys dropped before sending an edit
    validate: Callable[[JSON], str] | None = None  # portal-side check of a body before any call; "" = fine
    check_edit: Callable[[JSON, JSON, list[str]], str] | None = None  # (before, form values, changed) → error
    # Argo CD keeps what an update leaves out (repositories, repository credentials): a field the form clears
    # is sent empty ("" or 0) instead of being left out.
    send_cleared: bool = False
    description: str = ""
    per_instance: bool = False  # one pseudo-object per instance (settings): no key in the list
    # (value, label, field groups) of exclusive ways to authenticate: the form shows (and sends) only the groups of
    # the chosen one; `auth_of(obj)` names the way an existing object uses.
    auth_methods: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    auth_of: Callable[[JSON], str] | None = None

    def key_label(self) -> str:
        return self.columns[0].label if self.columns else "Name"

    def scope(self, obj: JSON | None) -> str:
        """The project used for `can()`: the object's project, or "*" for instance-wide kinds."""
        if self.project_of is None or obj is None:
            return "*"
        project = self.project_of(obj)
        # Argo CD reads a missing project as "default"; anything but text cannot be in any grant.
        return project if isinstance(project, str) and project else "default"

    @property
    def editable(self) -> bool:
        return self.update is not None

    def body_for_edit(self, obj: JSON) -> JSON:
        body = copy.deepcopy(obj)
        for key in self.readonly_keys:
            body.pop(key, None)
        return body


# ---------------------------------------------------------------- small formatting helpers
def _b64text(value: str) -> str:
    """certData is a Go []byte: JSON carries it base64-encoded."""
    try:
        return base64.b64decode(value or "").decode("utf-8", "replace")
    except ValueError:
        return value or ""


def _state(obj: JSON) -> str:
    return dig(obj, "connectionState.status") or dig(obj, "info.connectionState.status") or "Unknown"


def _kv(obj: JSON, *paths: str) -> JSON:
    return {p.split(".")[-1]: dig(obj, p) for p in paths if dig(obj, p) not in (None, "", [], {})}


def _ts(epoch: Any) -> str:
    from datetime import UTC, datetime

    if not epoch:
        return "never"
    try:
        return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (TypeError, ValueError, OverflowError):
        return str(epoch)


def _by(items: list[JSON], pred: Callable[[JSON], bool]) -> list[JSON]:
    return [i for i in items if pred(i)]


# ---------------------------------------------------------------- the kinds
REGISTRY: dict[str, ResourceKind] = {}


def register(kind: ResourceKind) -> ResourceKind:
    REGISTRY[kind.slug] = kind
    return kind


def get_kind(slug: str) -> ResourceKind | None:
    return REGISTRY.get(slug)


APPSET_TEMPLATE = """\
metadata:
  name: my-appset
spec:
  goTemplate: true
  generators:
    - list:
        elements:
          - env: dev
          - env: staging
  template:
    metadata:
      name: 'my-app-{{.env}}'
    spec:
      project: default
      source:
        repoURL: https://github.com/org/repo.git
        targetRevision: HEAD
        path: 'apps/{{.env}}'
      destination:
        server: https://kubernetes.default.svc
        namespace: 'my-app-{{.env}}'
"""

PROJECT_TEMPLATE = """\
metadata:
  name: my-project
spec:
  description: ""
  sourceRepos: ["*"]
  destinations:
    - server: https://kubernetes.default.svc
      namespace: "*"
"""


def _appset_apps(obj: JSON) -> list[JSON]:
    rows = [
        {
            "application": s.get("application"),
            "status": s.get("status"),
            "step": s.get("step"),
            "message": s.get("message"),
        }
        for s in dig(obj, "status.applicationStatus", []) or []
    ]
    if rows:
        return rows
    return [
        {
            "application": r.get("name"),
            "status": (r.get("health") or {}).get("status", ""),
            "namespace": r.get("namespace"),
        }
        for r in dig(obj, "status.resources", []) or []
    ]


register(
    ResourceKind(
        slug="applicationsets",
        title="ApplicationSets",
        singular="ApplicationSet",
        audit_kind="applicationset",
        description="Generators that stamp out Applications.",
        list=lambda c, f: c.list_applicationsets(),
        get=lambda c, key: c.get_applicationset(key),
        create=lambda c, body: c.create_applicationset(body),
        update=lambda c, body, changed: c.create_applicationset(body, upsert=True),
        delete=lambda c, key, obj: c.delete_applicationset(key),
        key=lambda o: dig(o, "metadata.name", ""),
        project_of=lambda o: dig(o, "spec.template.spec.project", ""),
        validate=lambda body: (
            "spec.templatePatch may not set the project: the project is checked against your grants in "
            "spec.template.spec.project only."
            if "project" in str(dig(body, "spec.templatePatch", ""))
            else ""
        ),
        columns=(
            Column("Name", "metadata.name"),
            Column("Project", "spec.template.spec.project"),
            Column("Generators", get=lambda o: ", ".join(k for g in dig(o, "spec.generators", []) for k in g)),
            Column("Strategy", get=lambda o: dig(o, "spec.strategy.type", "") or "AllAtOnce"),
            Column("Applications", get=lambda o: len(_appset_apps(o)) or dig(o, "status.resourcesCount", "")),
        ),
        sections=(
            Section("Generators", lambda o: dig(o, "spec.generators", [])),
            Section("Template", lambda o: dig(o, "spec.template", {})),
            Section(
                "Strategy and sync policy", lambda o: _kv(o, "spec.strategy", "spec.syncPolicy", "spec.goTemplate")
            ),
            Section("Conditions", lambda o: dig(o, "status.conditions", [])),
        ),
        yaml=True,
        yaml_template=APPSET_TEMPLATE,
        readonly_keys=("status",),
    )
)


def _project_update(c: ArgoCDClient, body: JSON, changed: list[str]) -> JSON:
    return c.update_project(body)


def _project_check_edit(before: JSON, values: JSON, changed: list[str]) -> str:
    """Emptying a project's sources or destinations stops every one of its applications from syncing: the form
    does not do that by a slip. (The YAML editor still can, for whoever means it.)"""
    emptied = [
        label
        for name, path, label in (
            ("sourceRepos", "spec.sourceRepos", "source repositories"),
            ("destinations", "spec.destinations", "destinations"),
        )
        if dig(before, path) and not values.get(name)
    ]
    if not emptied:
        return ""
    return (
        f"With no {' and no '.join(emptied)}, none of this project's applications can sync. Keep at least one, "
        "or make the change in the YAML editor if that is what you mean."
    )


_GROUP_KIND = (
    TableColumn("group", "API group", placeholder="apps, or * (empty: core)"),
    TableColumn("kind", "Kind", required=True, placeholder="Deployment, or *"),
)
_PROJECT_TABLES = (
    Field(
        "roles",
        "Roles",
        "spec.roles",
        "table",
        help="Policies one a line: p, proj:<project>:<role>, applications, <action>, <project>/<app>, allow|deny. "
        "A role's tokens are kept.",
        columns=(
            TableColumn("name", "Name", required=True),
            TableColumn("description", "Description"),
            TableColumn("policies", "Policies", "lines"),
            TableColumn("groups", "SSO groups", "lines"),
        ),
    ),
    Field(
        "syncWindows",
        "Sync windows",
        "spec.syncWindows",
        "table",
        help="Schedule in cron syntax, duration like 1h or 30m; applications, namespaces and clusters one glob a line.",
        columns=(
            TableColumn("kind", "Kind", "choice", required=True, choices=("allow", "deny")),
            TableColumn("schedule", "Schedule", required=True, placeholder="0 22 * * *"),
            TableColumn("duration", "Duration", required=True, placeholder="1h"),
            TableColumn("applications", "Applications", "lines"),
            TableColumn("namespaces", "Namespaces", "lines"),
            TableColumn("clusters", "Clusters", "lines"),
            TableColumn("manualSync", "Manual sync", "bool"),
            TableColumn("timeZone", "Time zone", placeholder="UTC"),
        ),
    ),
    Field("clusterResourceWhitelist", "Cluster resources allowed", "spec.clusterResourceWhitelist", "table",
          group="Allow and deny lists", columns=_GROUP_KIND),
    Field("clusterResourceBlacklist", "Cluster resources denied", "spec.clusterResourceBlacklist", "table",
          group="Allow and deny lists", columns=_GROUP_KIND),
    Field("namespaceResourceWhitelist", "Namespaced resources allowed", "spec.namespaceResourceWhitelist", "table",
          group="Allow and deny lists", columns=_GROUP_KIND),
    Field("namespaceResourceBlacklist", "Namespaced resources denied", "spec.namespaceResourceBlacklist", "table",
          group="Allow and deny lists", columns=_GROUP_KIND),
)  # fmt: skip


register(
    ResourceKind(
        slug="projects",
        title="Projects",
        singular="Project",
        audit_kind="project",
        description="AppProjects: where applications may come from and go to, roles and sync windows.",
        list=lambda c, f: c.list_projects(),
        get=lambda c, key: c.get_project(key),
        create=lambda c, body: c.create_project(body),
        update=_project_update,
        delete=lambda c, key, obj: c.delete_project(key),
        key=lambda o: dig(o, "metadata.name", ""),
        project_of=lambda o: dig(o, "metadata.name", ""),
        columns=(
            Column("Name", "metadata.name"),
            Column("Description", "spec.description"),
            Column("Source repos", get=lambda o: ", ".join(dig(o, "spec.sourceRepos", []) or [])),
            Column("Destinations", get=lambda o: len(dig(o, "spec.destinations", []) or [])),
            Column("Roles", get=lambda o: ", ".join(r.get("name", "") for r in dig(o, "spec.roles", []) or [])),
            Column("Sync windows", get=lambda o: len(dig(o, "spec.syncWindows", []) or [])),
        ),
        sections=(
            Section("Source repositories", lambda o: dig(o, "spec.sourceRepos", [])),
            Section("Source namespaces", lambda o: dig(o, "spec.sourceNamespaces", [])),
            Section("Destinations", lambda o: dig(o, "spec.destinations", [])),
            Section(
                "Allow and deny lists",
                lambda o: _kv(
                    o,
                    "spec.clusterResourceWhitelist",
                    "spec.clusterResourceBlacklist",
                    "spec.namespaceResourceWhitelist",
                    "spec.namespaceResourceBlacklist",
                ),
            ),
            Section("Orphaned resources", lambda o: dig(o, "spec.orphanedResources", {})),
            Section("Signature keys", lambda o: dig(o, "spec.signatureKeys", [])),
        ),
        fields=(
            Field("name", "Name", "metadata.name", required=True, create_only=True),
            Field("description", "Description", "spec.description"),
            Field("sourceRepos", "Source repositories", "spec.sourceRepos", "lines", help="One glob a line."),
            Field("sourceNamespaces", "Source namespaces", "spec.sourceNamespaces", "lines"),
            Field(
                "destinations",
                "Destinations",
                "spec.destinations",
                "rows",
                subkeys=("server", "namespace", "name"),
                help="One a line: server namespace [name], e.g. https://kubernetes.default.svc team-a-*",
            ),
            *_PROJECT_TABLES,
        ),
        yaml=True,
        yaml_template=PROJECT_TEMPLATE,
        readonly_keys=("status",),
        check_edit=_project_check_edit,
        typed_delete=True,
        extras=(
            Extra("create-token", "Create role token", "rotate", inputs=True),
            Extra("delete-token", "Delete role token", "rotate", inputs=True),
            Extra("rotate-token", "Rotate a role token", "rotate", operation="rotate_project_token", inputs=True),
        ),
    )
)


def _repo_check_edit(before: JSON, values: JSON, changed: list[str]) -> str:
    """Argo CD saves a repository (or credential template) exactly as sent and never gives a secret back, so a
    save without a credential it holds removes it. Refuse the saves that would do that unasked."""
    missing = []
    if before.get("username") and values.get("username") and not values.get("password"):
        missing.append("the password (or clear Username to remove the credentials)")
    if values.get("githubAppId") and not values.get("githubAppPrivateKey"):
        missing.append("the GitHub App private key (or clear App ID)")
    if values.get("tlsClientCertData") and not values.get("tlsClientCertKey"):
        missing.append("the TLS client key (or clear the client certificate)")
    if not missing:
        return ""
    return (
        "Argo CD saves the whole entry as sent and never shows a stored secret, so it would be removed: "
        f"enter {' and '.join(missing)}."
    )


# Argo CD saves a repository as sent and never returns these, so an edit that leaves one blank removes it.
_KEPT_ONLY_IF_SENT = "Never shown again; an edit saves only what is entered here, so enter it again to keep it."

_REPO_FIELDS = (
    Field("type", "Type", "type", "choice", choices=(("git", "git"), ("helm", "helm"))),
    Field("name", "Name", "name", help="Required for helm repositories."),
    Field("project", "Project", "project", help="Scope the repository to one project (optional)."),
    Field("username", "Username", "username", group="HTTPS"),
    Field("password", "Password or token", "password", secret=True, group="HTTPS", help=_KEPT_ONLY_IF_SENT),
    Field("forceHttpBasicAuth", "Force HTTP basic auth", "forceHttpBasicAuth", "bool", group="HTTPS"),
    Field(
        "sshPrivateKey",
        "SSH private key",
        "sshPrivateKey",
        "textarea",
        secret=True,
        group="SSH",
        help=_KEPT_ONLY_IF_SENT,
    ),
    Field("githubAppId", "App ID", "githubAppID", "int", group="GitHub App", check=validators.positive_int),
    Field(
        "githubAppInstallationId",
        "Installation ID",
        "githubAppInstallationID",
        "int",
        group="GitHub App",
        check=validators.positive_int,
    ),
    Field(
        "githubAppPrivateKey",
        "App private key",
        "githubAppPrivateKey",
        "textarea",
        secret=True,
        group="GitHub App",
        help=_KEPT_ONLY_IF_SENT,
    ),
    Field(
        "githubAppEnterpriseBaseUrl",
        "Enterprise base URL",
        "githubAppEnterpriseBaseUrl",
        group="GitHub App",
        check=validators.http_url,
    ),
    Field(
        "tlsClientCertData",
        "Client certificate (PEM)",
        "tlsClientCertData",
        "textarea",
        group="TLS client",
        help="Argo CD does not show it back either: enter it again when you edit, or it is removed.",
    ),
    Field(
        "tlsClientCertKey",
        "Client key (PEM)",
        "tlsClientCertKey",
        "textarea",
        secret=True,
        group="TLS client",
        help=_KEPT_ONLY_IF_SENT,
    ),
    Field(
        "gcpServiceAccountKey",
        "Service account key (JSON)",
        "gcpServiceAccountKey",
        "textarea",
        secret=True,
        group="GCP",
        help=_KEPT_ONLY_IF_SENT,
    ),
    Field("proxy", "Proxy", "proxy", group="Network", help="http:// or https:// URL.", check=validators.http_url),
    Field("noProxy", "No proxy", "noProxy", group="Network"),
    Field("insecure", "Skip TLS verification", "insecure", "bool", group="Network"),
    Field("enableOCI", "Enable OCI (helm)", "enableOCI", "bool", group="Options"),
)

REPO_AUTH = (
    ("https", "HTTPS: username and password or token", ("HTTPS", "TLS client")),
    ("ssh", "SSH private key", ("SSH",)),
    ("github", "GitHub App", ("GitHub App",)),
    ("gcp", "Google Cloud service account", ("GCP",)),
    ("none", "None (public repository)", ()),
)


def _repo_auth(obj: JSON) -> str:
    """The way a stored repository authenticates, from what Argo CD shows of it (never its secrets)."""
    url = str(obj.get("repo") or obj.get("url") or "")
    if obj.get("githubAppID"):
        return "github"
    if url.startswith(("git@", "ssh://")):
        return "ssh"
    if "source.developers.google.com" in url:
        return "gcp"
    if obj.get("username") or obj.get("tlsClientCertData"):
        return "https"
    return "none"


register(
    ResourceKind(
        slug="repositories",
        title="Repositories",
        singular="Repository",
        audit_kind="repository",
        description="Git and Helm repositories Argo CD may read, with their connection state.",
        list=lambda c, f: c.list_repositories(),
        get=lambda c, key: c.get_repository(key),
        create=lambda c, body: c.create_repository(body),
        update=lambda c, body, changed: c.update_repository(body),
        delete=lambda c, key, obj: c.delete_repository(key),
        key=lambda o: o.get("repo", ""),
        columns=(
            Column("Repository", "repo"),
            Column("Name", "name"),
            Column("Type", "type"),
            Column("Project", "project"),
            Column("Connection", get=_state, badge=True),
        ),
        sections=(
            Section(
                "Repository",
                lambda o: _kv(
                    o,
                    "repo",
                    "name",
                    "type",
                    "project",
                    "username",
                    "proxy",
                    "insecure",
                    "enableLfs",
                    "enableOCI",
                    "forceHttpBasicAuth",
                    "githubAppID",
                    "githubAppInstallationID",
                    "inheritedCreds",
                ),
            ),
            Section("Connection state", lambda o: o.get("connectionState") or {}),
        ),
        fields=(
            Field("repo", "Repository URL", "repo", required=True, create_only=True),
            *_REPO_FIELDS,
            Field("enableLfs", "Enable Git LFS", "enableLfs", "bool", group="Options"),
        ),
        readonly_keys=("connectionState", "inheritedCreds"),
        send_cleared=True,
        check_edit=_repo_check_edit,
        typed_delete=True,
        extras=(Extra("validate", "Validate connection", "edit"),),
        auth_methods=REPO_AUTH,
        auth_of=_repo_auth,
    )
)

register(
    ResourceKind(
        slug="repocreds",
        title="Repository credentials",
        singular="Credential template",
        audit_kind="repocreds",
        description="Credential templates used by every repository whose URL starts with the prefix.",
        list=lambda c, f: c.list_repocreds(),
        get=lambda c, key: (
            next((r for r in c.list_repocreds(url=key) if r.get("url") == key), None) or _missing(c, key)
        ),
        create=lambda c, body: c.create_repocreds(body),
        update=lambda c, body, changed: c.update_repocreds(body),
        delete=lambda c, key, obj: c.delete_repocreds(key),
        key=lambda o: o.get("url", ""),
        columns=(Column("URL prefix", "url"), Column("Type", "type"), Column("Username", "username")),
        sections=(
            Section(
                "Credentials",
                lambda o: _kv(
                    o,
                    "url",
                    "type",
                    "username",
                    "proxy",
                    "enableOCI",
                    "forceHttpBasicAuth",
                    "githubAppID",
                    "githubAppInstallationID",
                ),
            ),
        ),
        fields=(
            Field("url", "URL prefix", "url", required=True, create_only=True),
            *(f for f in _REPO_FIELDS if f.name not in ("name", "project", "insecure")),
        ),
        send_cleared=True,
        check_edit=_repo_check_edit,
        typed_delete=False,
        auth_methods=REPO_AUTH,
        auth_of=_repo_auth,
    )
)


def _missing(c: ArgoCDClient, key: str) -> JSON:
    from apps.argocd import errors

    raise errors.NotFound(f"'{key}' not found", instance=c.name)


def _cluster_check_edit(before: JSON, values: JSON, changed: list[str]) -> str:
    """Argo CD replaces `config` whole and never returns its secrets: a config change without the credential
    would silently drop it. Clusters authenticating by AWS or an exec plugin carry no such secret."""
    if "config" not in changed or dig(before, "config.awsAuthConfig") or dig(before, "config.execProviderConfig"):
        return ""
    if values.get("bearerToken") or values.get("keyData"):
        return ""
    return (
        "Argo CD replaces the whole connection config when any part of it changes, and it never gives the stored "
        "credential back: enter the bearer token (or client key) again, or leave the config fields as they were."
    )


def _cluster_update(c: ArgoCDClient, body: JSON, changed: list[str]) -> JSON:
    return c.update_cluster(body, updated_fields=changed or None)


register(
    ResourceKind(
        slug="clusters",
        title="Clusters",
        singular="Cluster",
        audit_kind="cluster",
        description="Kubernetes clusters Argo CD deploys to.",
        list=lambda c, f: c.list_clusters(),
        get=lambda c, key: c.get_cluster(key),
        create=lambda c, body: c.create_cluster(body),
        update=_cluster_update,
        delete=lambda c, key, obj: c.delete_cluster(key),
        key=lambda o: o.get("server", ""),
        columns=(
            Column("Server", "server"),
            Column("Name", "name"),
            Column("Project", "project"),
            Column("Version", get=lambda o: o.get("serverVersion") or dig(o, "info.serverVersion", "")),
            Column("Connection", get=_state, badge=True),
        ),
        sections=(
            Section(
                "Cluster", lambda o: _kv(o, "server", "name", "project", "shard", "namespaces", "clusterResources")
            ),
            Section("Labels", lambda o: o.get("labels") or {}),
            Section("Annotations", lambda o: o.get("annotations") or {}),
            Section("Connection state", lambda o: dig(o, "info.connectionState") or o.get("connectionState") or {}),
            Section(
                "Info",
                lambda o: _kv(o, "info.serverVersion", "info.applicationsCount", "info.cacheInfo", "info.apiVersions"),
            ),
            Section(
                "Config (secrets are never shown)",
                lambda o: _kv(
                    o,
                    "config.username",
                    "config.tlsClientConfig.insecure",
                    "config.tlsClientConfig.serverName",
                    "config.awsAuthConfig",
                    "config.execProviderConfig.command",
                    "config.execProviderConfig.args",
                    "config.execProviderConfig.apiVersion",
                ),
            ),
        ),
        fields=(
            Field("server", "Server URL", "server", required=True, create_only=True),
            Field("name", "Name", "name", required=True),
            Field("project", "Project", "project"),
            Field("namespaces", "Namespaces", "namespaces", "lines", help="Empty = all namespaces."),
            Field("shard", "Shard", "shard", "int"),
            Field("labels", "Labels", "labels", "pairs", help="key=value, one a line."),
            Field("annotations", "Annotations", "annotations", "pairs"),
            Field("bearerToken", "Bearer token", "config.bearerToken", secret=True, group="Credentials"),
            Field("insecure", "Skip TLS verification", "config.tlsClientConfig.insecure", "bool", group="TLS"),
            Field("serverName", "TLS server name", "config.tlsClientConfig.serverName", group="TLS"),
            Field("caData", "CA data (base64 PEM)", "config.tlsClientConfig.caData", "textarea", group="TLS"),
            Field(
                "certData",
                "Client certificate data (base64 PEM)",
                "config.tlsClientConfig.certData",
                "textarea",
                group="TLS",
            ),
            Field("keyData", "Client key data", "config.tlsClientConfig.keyData", "textarea", secret=True, group="TLS"),
            Field("awsClusterName", "AWS cluster name", "config.awsAuthConfig.clusterName", group="AWS"),
            Field("awsRoleARN", "AWS role ARN", "config.awsAuthConfig.roleARN", group="AWS"),
            Field("awsProfile", "AWS profile", "config.awsAuthConfig.profile", group="AWS"),
            Field("execCommand", "Exec provider command", "config.execProviderConfig.command", group="Exec provider"),
            Field("execArgs", "Exec provider args", "config.execProviderConfig.args", "lines", group="Exec provider"),
            Field("execEnv", "Exec provider env", "config.execProviderConfig.env", "pairs", group="Exec provider"),
            Field(
                "execApiVersion",
                "Exec provider apiVersion",
                "config.execProviderConfig.apiVersion",
                group="Exec provider",
            ),
            Field(
                "execInstallHint",
                "Exec provider install hint",
                "config.execProviderConfig.installHint",
                group="Exec provider",
            ),
        ),
        readonly_keys=("connectionState", "info", "serverVersion", "refreshRequestedAt"),
        check_edit=_cluster_check_edit,
        typed_delete=True,
        extras=(
            Extra(
                "rotate-auth",
                "Rotate auth",
                "rotate",
                confirm="Argo CD creates a new bearer token for its service account on this cluster "
                "and revokes the old one.",
                operation="rotate_cluster_auth",
            ),
            Extra("invalidate-cache", "Invalidate cache", "edit"),
        ),
    )
)

register(
    ResourceKind(
        slug="accounts",
        title="Accounts",
        singular="Account",
        audit_kind="account",
        description="Local Argo CD accounts, their capabilities and API tokens.",
        list=lambda c, f: c.list_accounts(),
        get=lambda c, key: c.get_account(key),
        key=lambda o: o.get("name", ""),
        columns=(
            Column("Name", "name"),
            Column("Enabled", get=lambda o: "yes" if o.get("enabled") else "no"),
            Column("Capabilities", get=lambda o: ", ".join(o.get("capabilities") or [])),
            Column("Tokens", get=lambda o: len(o.get("tokens") or [])),
        ),
        sections=(Section("Account", lambda o: _kv(o, "name", "enabled", "capabilities")),),
        extras=(
            Extra("create-token", "Generate token", "admin", inputs=True),
            Extra("delete-token", "Delete token", "admin", inputs=True),
            Extra("password", "Change password", "admin", inputs=True),
            Extra("can-i", "What may the portal's account do?", "view", inputs=True),
        ),
    )
)


def _cert_key(o: JSON) -> str:
    # Argo CD keeps one TLS entry per server name and derives its sub-type (rsa, ecdsa…) from the certificate;
    # a known-hosts entry is kept per server name and key type. So: "host:https", "host:ssh:ssh-ed25519".
    if o.get("certType") == "https":
        return f"{o.get('serverName', '')}:https"
    return f"{o.get('serverName', '')}:{o.get('certType', '')}:{o.get('certSubType', '')}"


def _cert_parts(key: str) -> tuple[str, str, str]:
    """(server name, type, sub-type) of a key; "host:https:" (the older form of a TLS key) still reads."""
    if key.endswith((":https", ":https:")):
        return key.rsplit(":https", 1)[0], "https", ""
    host, ctype, sub = (["", "", *key.rsplit(":", 2)])[-3:]
    return host, ctype, sub


def _cert_identity(o: JSON) -> JSON:
    """What Argo CD reads from the entry: a TLS certificate's subject, a known-hosts key's SHA256 fingerprint."""
    info = "subject" if o.get("certType") == "https" else "SHA256 fingerprint"
    return {**_kv(o, "serverName", "certType", "certSubType"), info: o.get("certInfo", "")}


def _cert_get(c: ArgoCDClient, key: str) -> JSON:
    host, ctype, sub = _cert_parts(key)
    for cert in c.list_certificates(host_name_pattern=host, cert_type=ctype or None):
        if _cert_parts(_cert_key(cert)) == (host, ctype, sub):
            return cert
    return _missing(c, key)


def _cert_delete(c: ArgoCDClient, key: str, obj: JSON) -> Any:
    host, ctype, sub = _cert_parts(key)
    return c.delete_certificates(host_name_pattern=host, cert_type=ctype or None, cert_sub_type=sub or None)


def _cert_create(c: ArgoCDClient, body: JSON) -> Any:
    """https: certData is the PEM. ssh: one item per known-hosts line, certData the base64 key (as the UI does)."""
    if body.get("certType") != "ssh":
        item = {**body, "certData": base64.b64encode(body.get("certData", "").encode()).decode()}
        return c.create_certificates([item])
    items = []
    for line in body.get("certData", "").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        host, keytype, key = line.split()[:3]
        items.append(
            {
                "serverName": body.get("serverName") or host.split(",")[0],
                "certType": "ssh",
                "certSubType": keytype,
                "certData": base64.b64encode(key.encode()).decode(),
            }
        )
    return c.create_certificates(items)


register(
    ResourceKind(
        slug="certificates",
        title="Certificates",
        singular="Certificate",
        audit_kind="certificate",
        description="TLS certificates and SSH known hosts Argo CD trusts for repository servers.",
        list=lambda c, f: c.list_certificates(
            host_name_pattern=f.get("hostNamePattern") or None, cert_type=f.get("certType") or None
        ),
        get=_cert_get,
        create=_cert_create,
        delete=_cert_delete,
        key=_cert_key,
        columns=(
            Column("Server", "serverName"),
            Column("Type", "certType"),
            Column("Sub-type", "certSubType"),
            Column("Subject / SHA256 fingerprint", "certInfo"),
        ),
        sections=(
            Section("Certificate", lambda o: _cert_identity(o)),
            Section("Data", lambda o: _b64text(o.get("certData", ""))),
        ),
        fields=(
            Field("serverName", "Server name", "serverName", required=True, create_only=True),
            Field(
                "certType",
                "Type",
                "certType",
                "choice",
                required=True,
                create_only=True,
                choices=(("https", "https (PEM certificate)"), ("ssh", "ssh (known-hosts line)")),
            ),
            Field(
                "certData",
                "Certificate data",
                "certData",
                "textarea",
                required=True,
                create_only=True,
                help="A PEM certificate for https; a known-hosts line `host keytype base64` for ssh.",
            ),
        ),
        validate=lambda body: validators.certificate(body.get("certType", ""), body.get("certData", "")),
        filters=(
            Filter("hostNamePattern", "Host name pattern"),
            Filter("certType", "Type", (("", "any"), ("https", "https"), ("ssh", "ssh"))),
        ),
    )
)


def _gpg_create(c: ArgoCDClient, body: JSON) -> JSON:
    """The key Argo CD imported, or {} when it imported none (a key with the same ID is skipped)."""
    answer = c.create_gpg_key(body.get("keyData", ""))
    return next(iter(dig(answer, "created.items") or []), {})


register(
    ResourceKind(
        slug="gpgkeys",
        title="GPG keys",
        singular="GPG key",
        audit_kind="gpgkey",
        description="Public keys used to verify commit signatures.",
        list=lambda c, f: c.list_gpg_keys(key_id=f.get("keyID") or None),
        get=lambda c, key: c.get_gpg_key(key),
        create=_gpg_create,
        delete=lambda c, key, obj: c.delete_gpg_key(key),
        key=lambda o: o.get("keyID", ""),
        columns=(
            Column("Key ID", "keyID"),
            Column("Owner", "owner"),
            Column("Type", "subType"),
            Column("Trust", "trust"),
            Column("Fingerprint", "fingerprint"),
        ),
        sections=(Section("Key", lambda o: _kv(o, "keyID", "fingerprint", "owner", "subType", "trust")),),
        fields=(
            Field("keyData", "Public key (ASCII-armoured)", "keyData", "textarea", required=True, create_only=True),
        ),
        validate=lambda body: validators.gpg_public_key(body.get("keyData", "")),
        filters=(Filter("keyID", "Key ID"),),
    )
)


def _notifications(c: ArgoCDClient, f: JSON) -> list[JSON]:
    rows: list[JSON] = []
    for category, call in (
        ("service", c.list_notification_services),
        ("template", c.list_notification_templates),
        ("trigger", c.list_notification_triggers),
    ):
        rows.extend({"category": category, "name": item.get("name", "")} for item in call())
    return rows


register(
    ResourceKind(
        slug="notifications",
        title="Notifications",
        singular="Notification",
        audit_kind="notification",
        description="Notification services, templates and triggers (read-only).",
        list=_notifications,
        key=lambda o: f"{o.get('category')}:{o.get('name')}",
        columns=(Column("Name", "name"), Column("Category", "category")),
    )
)


def _settings_row(c: ArgoCDClient, f: JSON) -> list[JSON]:
    settings = c.get_settings()
    version = c.version()
    plugins = [p.get("name", "") for p in c.list_plugins()]
    return [{"settings": settings, "version": version, "plugins": plugins}]


register(
    ResourceKind(
        slug="settings",
        title="Settings and version",
        singular="Settings",
        audit_kind="settings",
        description="Each instance's version, settings and config-management plugins (read-only).",
        list=_settings_row,
        get=lambda c, key: _settings_row(c, {})[0],
        key=lambda o: "settings",
        per_instance=True,
        sections=(
            Section("Version", lambda o: o.get("version") or {}),
            Section("Plugins", lambda o: o.get("plugins") or []),
            Section("Settings", lambda o: o.get("settings") or {}),
        ),
        extras=(
            Extra(
                "rotate-portal-token",
                "Rotate the portal's API token",
                "admin",
                confirm="Creates a new API token for the portal's own account, checks it, stores it, "
                "then deletes the old one.",
                operation="rotate_instance_token",
            ),
        ),
        columns=(
            Column("Version", "version.Version"),
            Column("URL", "settings.url"),
            Column("Tracking", "settings.trackingMethod"),
            Column("App label key", "settings.appLabelKey"),
            Column("Exec", get=lambda o: "on" if dig(o, "settings.execEnabled") else "off"),
            Column("Plugins", get=lambda o: ", ".join(o.get("plugins") or []) or "none"),
        ),
    )
)

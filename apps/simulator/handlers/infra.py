"""Repositories, repository credentials, clusters, certificates and GPG keys.

Secrets (passwords, private keys, bearer tokens, TLS keys) are stored but never returned, as in Argo CD.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
from typing import Any
from urllib.parse import unquote_plus

from .. import certs, gpg
from ..errors import denied, invalid, not_found, unknown
from ..httpd import Request, Router
from ..rbac import glob_match
from ..seed import GIT_DIRS
from ..state import State, now_ts
from .common import list_meta

REPO_PUBLIC = (
    "repo",
    "type",
    "name",
    "username",
    "insecure",
    "insecureIgnoreHostKey",
    "enableLfs",
    "enableOCI",
    "proxy",
    "noProxy",
    "project",
    "forceHttpBasicAuth",
    "inheritedCreds",
    "githubAppID",
    "githubAppInstallationID",
    "githubAppEnterpriseBaseUrl",
    "connectionState",
    "depth",
    "useAzureWorkloadIdentity",
    "webhookManifestCacheWarmDisabled",
    "insecureOCIForceHttp",
)
CREDS_PUBLIC = (
    "url",
    "username",
    "type",
    "enableOCI",
    "proxy",
    "noProxy",
    "forceHttpBasicAuth",
    "githubAppID",
    "githubAppInstallationID",
    "githubAppEnterpriseBaseUrl",
    "useAzureWorkloadIdentity",
    "insecureOCIForceHttp",
)
CLUSTER_UPDATABLE = ("name", "namespaces", "config", "project", "labels", "annotations", "shard", "clusterResources")


def as_saved(body: dict) -> dict:
    """What Argo CD stores on an update: every field of the request and nothing else (util/db writes each
    field into the secret, emptying those the request leaves empty), secrets included."""
    return {k: copy.deepcopy(v) for k, v in body.items() if v not in (None, "", False, 0, [], {})}


def cluster_field_set(body: dict, key: str) -> bool:
    """Whether a cluster field carries a value Argo CD stores (shard 0 is a value; empty strings/lists are not)."""
    value = body.get(key)
    if key == "shard":
        return value is not None
    return value is not None and value is not False and value != "" and value != [] and value != {}


def public_repo(repo: dict) -> dict:
    return {k: copy.deepcopy(repo[k]) for k in REPO_PUBLIC if k in repo and repo[k] not in (None, "", False, 0)}


def public_creds(creds: dict) -> dict:
    return {k: copy.deepcopy(creds[k]) for k in CREDS_PUBLIC if k in creds and creds[k] not in (None, "", False, 0)}


def public_cluster(cluster: dict, apps_count: int | None = None) -> dict:
    out = {k: copy.deepcopy(v) for k, v in cluster.items() if k != "config"}
    cfg = cluster.get("config") or {}
    tls = cfg.get("tlsClientConfig") or {}
    safe_tls = {k: tls[k] for k in ("insecure", "serverName", "caData") if k in tls}
    safe: dict[str, Any] = {"tlsClientConfig": safe_tls or {"insecure": False}}
    for key in ("awsAuthConfig", "proxyUrl", "disableCompression"):
        if key in cfg:
            safe[key] = copy.deepcopy(cfg[key])
    if "execProviderConfig" in cfg:
        safe["execProviderConfig"] = {
            k: copy.deepcopy(v)
            for k, v in cfg["execProviderConfig"].items()
            if k in ("command", "args", "apiVersion", "installHint")
        }
    out["config"] = safe
    if apps_count is not None:
        out.setdefault("info", {})["applicationsCount"] = apps_count
    return out


HELM_CHARTS = ("api", "web", "worker")
HELM_VERSIONS = ("1.0.0", "1.1.0", "1.2.3")


def helm_details(chart: str, version: str) -> dict:
    """A chart's HelmAppSpec: values.yaml as text and each leaf value as a parameter (dotted name)."""
    values = (
        "replicaCount: 1\n"
        "image:\n"
        f"  repository: registry.example.com/{chart}\n"
        f'  tag: "{version}"\n'
        "service:\n"
        "  type: ClusterIP\n"
        "  port: 80\n"
    )
    params = [
        ("replicaCount", "1"),
        ("image.repository", f"registry.example.com/{chart}"),
        ("image.tag", version),
        ("service.type", "ClusterIP"),
        ("service.port", "80"),
    ]
    return {
        "name": chart,
        "valueFiles": ["values.yaml"],
        "values": values,
        "parameters": [{"name": n, "value": v} for n, v in params],
    }


def register(router: Router, sim: Any) -> None:
    state: State = sim.state

    def repo_rbac(repo: dict | str, project: str = "") -> str:
        url = repo if isinstance(repo, str) else repo.get("repo") or repo.get("url", "")
        project = project or ("" if isinstance(repo, str) else repo.get("project") or "")
        return f"{project}/{url}" if project else url

    # ------------------------------------------------------------------ repositories (and write-repositories)

    def repo_routes(prefix: str, store_name: str, resource: str) -> None:
        def store() -> dict[str, dict]:
            return getattr(state, store_name)

        def lst(req: Request) -> dict:
            want = req.q("repo")
            project = req.q("appProject")
            with state.lock:
                items = [
                    public_repo(r)
                    for url, r in sorted(store().items())
                    if (not want or url == want)
                    and (not project or r.get("project") == project)
                    and req.ctx.can(resource, "get", repo_rbac(r))
                ]
            return {"metadata": {}, "items": items}

        def find(req: Request, action: str, param: str = "repo") -> dict:
            url = req.params[param]
            with state.lock:
                repo = store().get(url)
            if not req.ctx.can(resource, action, repo_rbac(repo or url)):
                raise denied(req.ctx.denied_message(resource, action, repo_rbac(repo or url)))
            if repo is None:
                raise not_found(f"repo '{url}' not found")
            return repo

        def get(req: Request) -> dict:
            with state.lock:
                return public_repo(find(req, "get"))

        def validate_repo(body: dict) -> None:
            url = body.get("repo") or ""
            if not url:
                raise invalid("repo URL is required")
            if not url.startswith(("https://", "http://", "git@", "ssh://", "oci://")) and body.get("type") != "helm":
                raise invalid(f"Unable to connect to repository: repository not accessible: invalid URL '{url}'")
            if "unreachable" in url:
                raise invalid(f"Unable to connect to repository: repository not found: {url}")

        def create(req: Request) -> dict:
            body = req.obj()
            validate_repo(body)
            url = body["repo"]
            req.ctx.require(resource, "create", repo_rbac(body))
            body.setdefault("type", "git")
            with state.lock:
                existing = store().get(url)
                new = {
                    **copy.deepcopy(body),
                    "connectionState": {"status": "Successful", "message": "", "attemptedAt": now_ts()},
                }
                if existing is not None:
                    same = {k: v for k, v in existing.items() if k != "connectionState"} == {
                        k: v for k, v in body.items() if k != "connectionState"
                    }
                    if not same and not req.qbool("upsert"):
                        raise invalid("existing repository spec is different; use upsert flag to force update")
                    if not same:
                        req.ctx.require(resource, "update", repo_rbac(body))
                        store()[url] = new
                    return public_repo(store()[url])
                store()[url] = new
                return public_repo(new)

        def update(req: Request) -> dict:
            url = req.params["repo.repo"]
            body = req.obj()
            body["repo"] = url
            req.ctx.require(resource, "update", repo_rbac(body))
            with state.lock:
                existing = store().get(url)
                if existing is None:
                    raise not_found(f"repo '{url}' not found")
                saved = {**as_saved(body), "connectionState": existing.get("connectionState")}
                store()[url] = saved
                return public_repo(saved)

        def delete(req: Request) -> dict:
            repo = find(req, "delete")
            with state.lock:
                store().pop(repo["repo"], None)
            return {}

        def validate(req: Request) -> dict:
            url = req.params["repo"]
            req.ctx.require(resource, "create", repo_rbac(url))
            validate_repo({"repo": url, "type": req.q("type")})
            return {}

        router.add("GET", prefix, lst)
        router.add("POST", prefix, create)
        router.add("GET", prefix + "/{repo}", get, plus_decode=True)
        router.add("PUT", prefix + "/{repo.repo}", update, plus_decode=True)
        router.add("DELETE", prefix + "/{repo}", delete, plus_decode=True)
        router.add("POST", prefix + "/{repo}/validate", validate, plus_decode=True)

    repo_routes("/api/v1/repositories", "repos", "repositories")
    repo_routes("/api/v1/write-repositories", "write_repos", "write-repositories")

    def known_repo(req: Request) -> str:
        url = req.params.get("repo") or req.params.get("source.repoURL") or ""
        with state.lock:
            repo = state.repos.get(url)
        req.ctx.require("repositories", "get", repo_rbac(repo or url))
        if repo is None and "unreachable" in url:  # Argo CD tries a repository it does not know anonymously
            raise unknown(f"failed to list refs: repository not found: {url}")
        return url

    def repo_apps(req: Request) -> dict:
        url = known_repo(req)
        with state.lock:
            paths = set(GIT_DIRS)
            for rec in state.apps.values():
                src = state._source(rec.obj["spec"])
                if src.get("repoURL") == url and src.get("path"):
                    paths.add(src["path"])
        return {"items": [{"path": p, "type": "Kustomize" if "overlays" in p else "Directory"} for p in sorted(paths)]}

    def refs(req: Request) -> dict:
        known_repo(req)
        return {"branches": ["develop", "main", "release-1.x"], "tags": ["v1.0.0", "v1.1.0", "v1.2.0"]}

    def helm_charts(req: Request) -> dict:
        known_repo(req)
        return {"items": [{"name": c, "versions": list(HELM_VERSIONS)} for c in HELM_CHARTS]}

    def app_details(req: Request) -> dict:
        """RepoAppDetailsResponse: the source type found at the path (or chart), and for Helm the chart's
        values.yaml and its parameters flattened as `helm inspect values` gives them to Argo CD."""
        url = known_repo(req)
        body = req.obj()
        source = body.get("source") or {}
        chart, path = source.get("chart") or "", source.get("path") or ""
        revision = source.get("targetRevision") or ""
        if chart or url.startswith("https://charts"):
            if chart not in HELM_CHARTS or (revision not in ("", "*", "HEAD") and revision not in HELM_VERSIONS):
                raise unknown(f'chart "{chart}" version "{revision}" not found in repository {url}')
            return {"type": "Helm", "helm": helm_details(chart, revision or HELM_VERSIONS[-1])}
        if path.startswith("charts/"):
            return {"type": "Helm", "helm": helm_details(path.rsplit("/", 1)[-1], HELM_VERSIONS[-1])}
        if "overlays" in path:
            return {"type": "Kustomize", "kustomize": {"images": [f"registry.example.com/{path.split('/')[1]}"]}}
        return {"type": "Directory", "directory": {}}

    router.add("GET", "/api/v1/repositories/{repo}/apps", repo_apps, plus_decode=True)
    router.add("GET", "/api/v1/repositories/{repo}/refs", refs, plus_decode=True)
    router.add("GET", "/api/v1/repositories/{repo}/helmcharts", helm_charts, plus_decode=True)
    router.add("GET", "/api/v1/repositories/{repo}/oci-tags", refs, plus_decode=True)
    router.add("POST", "/api/v1/repositories/{source.repoURL}/appdetails", app_details, plus_decode=True)

    # ------------------------------------------------------------------ repo creds

    def creds_routes(prefix: str, store_name: str) -> None:
        def store() -> dict[str, dict]:
            return getattr(state, store_name)

        def lst(req: Request) -> dict:
            want = req.q("url")
            with state.lock:
                items = [
                    public_creds(c)
                    for url, c in sorted(store().items())
                    if (not want or url == want) and req.ctx.can("repositories", "get", url)
                ]
            return {"metadata": {}, "items": items}

        def create(req: Request) -> dict:
            body = req.obj()
            url = body.get("url") or ""
            if not url:
                raise invalid("repository credentials URL is required")
            req.ctx.require("repositories", "create", url)
            with state.lock:
                existing = store().get(url)
                if existing is not None and existing != body:
                    if not req.qbool("upsert"):
                        raise invalid(
                            "existing repository credentials spec is different; use upsert flag to force update"
                        )
                    req.ctx.require("repositories", "update", url)
                store()[url] = copy.deepcopy(body)
                return {"url": url}  # Argo CD answers a create or update with the URL alone

        def update(req: Request) -> dict:
            url = req.params["creds.url"]
            body = req.obj()
            body["url"] = url
            req.ctx.require("repositories", "update", url)
            with state.lock:
                if url not in store():
                    raise not_found(f"repository credentials for '{url}' not found")
                store()[url] = as_saved(body)
                return {"url": url}

        def delete(req: Request) -> dict:
            url = req.params["url"]
            req.ctx.require("repositories", "delete", url)
            with state.lock:
                if url not in store():
                    raise not_found(f"repository credentials for '{url}' not found")
                del store()[url]
            return {}

        router.add("GET", prefix, lst)
        router.add("POST", prefix, create)
        router.add("PUT", prefix + "/{creds.url}", update, plus_decode=True)
        router.add("DELETE", prefix + "/{url}", delete, plus_decode=True)

    creds_routes("/api/v1/repocreds", "repocreds")
    creds_routes("/api/v1/write-repocreds", "write_repocreds")

    # ------------------------------------------------------------------ clusters

    def cluster_rbac(cluster: dict) -> str:
        return f"{cluster['project']}/{cluster['server']}" if cluster.get("project") else cluster["server"]

    def apps_on(cluster: dict) -> int:
        return sum(
            1
            for rec in state.apps.values()
            if (rec.obj["spec"].get("destination") or {}).get("server") == cluster["server"]
            or (rec.obj["spec"].get("destination") or {}).get("name") == cluster.get("name")
        )

    def find_cluster(req: Request, action: str) -> dict:
        """getClusterWith403IfNotExist: unknown and forbidden look the same (403)."""
        value = req.params.get("id.value") or req.q("id.value") or req.q("server")
        id_type = req.q("id.type") or "server"
        if not value and req.q("name"):
            value, id_type = req.q("name"), "name"
        with state.lock:
            if id_type in ("name", "name_escaped"):
                name = unquote_plus(value) if id_type == "name_escaped" else value
                cluster = next((c for c in state.clusters.values() if c.get("name") == name), None)
            else:
                cluster = state.clusters.get(value)
        if cluster is None or not req.ctx.can("clusters", action, cluster_rbac(cluster)):
            raise denied("permission denied")
        return cluster

    def list_clusters(req: Request) -> dict:
        server, name = req.q("server"), req.q("name")
        with state.lock:
            items = [
                public_cluster(c, apps_on(c))
                for c in sorted(state.clusters.values(), key=lambda c: c.get("name", ""))
                if (not server or c["server"] == server)
                and (not name or c.get("name") == name)
                and req.ctx.can("clusters", "get", cluster_rbac(c))
            ]
        return {"metadata": {}, "items": items}

    def get_cluster(req: Request) -> dict:
        cluster = find_cluster(req, "get")
        with state.lock:
            return public_cluster(cluster, apps_on(cluster))

    def create_cluster(req: Request) -> dict:
        body = req.obj()
        server = body.get("server") or ""
        if not server:
            raise invalid("cluster server is required")
        if not server.startswith(("https://", "http://")):
            raise invalid(f"invalid cluster server URL: {server}")
        req.ctx.require("clusters", "create", cluster_rbac(body))
        with state.lock:
            existing = state.clusters.get(server)
            new = copy.deepcopy(body)
            new.setdefault("name", server)
            new.setdefault("config", {"tlsClientConfig": {"insecure": False}})
            state_info = {"status": "Successful", "message": "", "attemptedAt": now_ts()}
            new["connectionState"] = state_info
            new["info"] = {"connectionState": state_info, "serverVersion": "1.31", "applicationsCount": 0}
            new["serverVersion"] = "1.31"
            if existing is not None:
                comparable = {
                    k: v for k, v in existing.items() if k not in ("connectionState", "info", "serverVersion")
                }
                incoming = {k: v for k, v in new.items() if k not in ("connectionState", "info", "serverVersion")}
                if comparable != incoming:
                    if not req.qbool("upsert"):
                        raise invalid("existing cluster spec is different; use upsert flag to force update")
                    req.ctx.require("clusters", "update", cluster_rbac(existing))
                    state.clusters[server] = new
                return public_cluster(state.clusters[server], apps_on(state.clusters[server]))
            state.clusters[server] = new
            return public_cluster(new, 0)

    def update_cluster(req: Request) -> dict:
        cluster = find_cluster(req, "update")
        body = req.obj()
        # updatedFields is a repeated query parameter (updatedFields=a&updatedFields=b); a name Argo CD does
        # not know (including a comma-joined list) is ignored.
        fields = [f for f in req.qs("updatedFields") if f]
        with state.lock:
            if not fields:
                # Without updatedFields the request is the whole cluster: every field is written as sent and
                # the ones it leaves out are emptied, connection secrets included (clusterToSecret).
                saved = {k: copy.deepcopy(body[k]) for k in CLUSTER_UPDATABLE if cluster_field_set(body, k)}
                saved["server"] = cluster["server"]
                saved.setdefault("config", {})
                for key in ("connectionState", "info", "serverVersion"):
                    if key in cluster:
                        saved[key] = cluster[key]
                cluster.clear()
                cluster.update(saved)
            for field in fields:
                if field not in CLUSTER_UPDATABLE:
                    continue
                if cluster_field_set(body, field):
                    cluster[field] = copy.deepcopy(body[field])
                else:
                    cluster.pop(field, None)
            # An empty name is stored as the server URL.
            cluster["name"] = cluster.get("name") or cluster["server"]
            return public_cluster(cluster, apps_on(cluster))

    def delete_cluster(req: Request) -> dict:
        cluster = find_cluster(req, "delete")
        with state.lock:
            state.clusters.pop(cluster["server"], None)
        return {}

    def rotate_auth(req: Request) -> dict:
        cluster = find_cluster(req, "update")
        with state.lock:
            cfg = cluster.setdefault("config", {})
            if not cfg.get("bearerToken"):
                raise invalid(f"Cluster '{cluster['server']}' does not use bearer token authentication")
            cfg["bearerToken"] = f"sim-rotated-{hashlib.sha1(now_ts().encode()).hexdigest()[:16]}"
        return {}

    def invalidate_cache(req: Request) -> dict:
        cluster = find_cluster(req, "update")
        with state.lock:
            cluster["refreshRequestedAt"] = now_ts()
            return public_cluster(cluster, apps_on(cluster))

    router.add("GET", "/api/v1/clusters", list_clusters)
    router.add("POST", "/api/v1/clusters", create_cluster)
    router.add("GET", "/api/v1/clusters/{id.value}", get_cluster, plus_decode=True)
    router.add("PUT", "/api/v1/clusters/{id.value}", update_cluster, plus_decode=True)
    router.add("DELETE", "/api/v1/clusters/{id.value}", delete_cluster, plus_decode=True)
    router.add("POST", "/api/v1/clusters/{id.value}/rotate-auth", rotate_auth, plus_decode=True)
    router.add("POST", "/api/v1/clusters/{id.value}/invalidate-cache", invalidate_cache, plus_decode=True)

    # ------------------------------------------------------------------ certificates

    def cert_matches(cert: dict, req: Request) -> bool:
        pattern, ctype, subtype = req.q("hostNamePattern"), req.q("certType"), req.q("certSubType")
        if pattern and not glob_match(pattern, cert["serverName"]):
            return False
        if ctype and ctype != cert["certType"]:
            return False
        return not subtype or subtype == cert.get("certSubType", "")

    def list_certs(req: Request) -> dict:
        req.ctx.require("certificates", "get", "")
        with state.lock:
            return {"metadata": {}, "items": [copy.deepcopy(c) for c in state.certs if cert_matches(c, req)]}

    def create_certs(req: Request) -> dict:
        req.ctx.require("certificates", "create", "")
        body = req.obj()
        created = []
        with state.lock:
            for item in body.get("items") or []:
                host, ctype = item.get("serverName") or "", item.get("certType") or ""
                # util/db CreateRepoCertificate fails with plain errors (no gRPC code): HTTP 500, code 2.
                if not host:
                    raise unknown(f"Invalid hostname in request: {host}")
                if ctype not in ("ssh", "https"):
                    raise unknown(f"Unknown certificate type: {ctype}")
                try:
                    data = base64.b64decode(item.get("certData") or "", validate=True).decode()
                except (binascii.Error, UnicodeDecodeError) as exc:
                    raise invalid(f"illegal base64 data in certData: {exc}") from exc
                # Argo CD validates the data with Go's x509 / ssh packages: plain errors, HTTP 500.
                if ctype == "https":
                    try:
                        found = certs.tls_certificates(data)
                    except ValueError as exc:
                        raise unknown(str(exc)) from exc
                    if not found:
                        raise unknown("No valid PEM data received.")
                    subtype, info = found[0]
                else:
                    subtype = item.get("certSubType") or ""
                    try:
                        info = "SHA256:" + certs.ssh_fingerprint(subtype, data)
                    except ValueError as exc:
                        raise unknown(str(exc)) from exc
                cert = {
                    "serverName": host,
                    "certType": ctype,
                    "certSubType": subtype,
                    "certData": item["certData"],
                    "certInfo": info,
                }
                old = next(
                    (
                        c
                        for c in state.certs
                        # A TLS entry is kept per server name; a known-hosts entry per name and key type.
                        if (c["serverName"], c["certType"]) == (host, ctype)
                        and (ctype == "https" or c["certSubType"] == subtype)
                    ),
                    None,
                )
                if old is not None:
                    if old["certData"] == cert["certData"]:
                        continue
                    if not req.qbool("upsert"):
                        raise unknown(
                            f"TLS certificate for server '{host}' already exist and upsert was not specified."
                            if ctype == "https"
                            else f"Key for '{host}' (subtype: '{subtype}') already exist and upsert was not specified."
                        )
                    state.certs.remove(old)
                state.certs.append(cert)
                created.append(copy.deepcopy(cert))
        return {"metadata": {}, "items": created}

    def delete_certs(req: Request) -> dict:
        req.ctx.require("certificates", "delete", "")
        with state.lock:
            removed = [c for c in state.certs if cert_matches(c, req)]
            state.certs = [c for c in state.certs if not cert_matches(c, req)]
        return {"metadata": {}, "items": removed}

    router.add("GET", "/api/v1/certificates", list_certs)
    router.add("POST", "/api/v1/certificates", create_certs)
    router.add("DELETE", "/api/v1/certificates", delete_certs)

    # ------------------------------------------------------------------ GPG keys

    def list_keys(req: Request) -> dict:
        req.ctx.require("gpgkeys", "get", "")
        want = req.q("keyID")
        with state.lock:
            items = [copy.deepcopy(k) for kid, k in sorted(state.gpgkeys.items()) if not want or kid == want]
        return {"metadata": {}, "items": items}

    def get_key(req: Request) -> dict:
        req.ctx.require("gpgkeys", "get", "")
        kid = req.params["keyID"]
        with state.lock:
            key = state.gpgkeys.get(kid)
            if key is None:
                # A plain error in Argo CD (no gRPC code), hence HTTP 500.
                raise unknown(f"No such key: {kid}")
            return copy.deepcopy(key)

    def create_key(req: Request) -> dict:
        req.ctx.require("gpgkeys", "create", "")
        body = req.obj()
        try:
            keys = gpg.read_public_keys(body.get("keyData") or "")
        except gpg.GpgError as exc:
            raise invalid(f"Could not parse GnuPG key: {exc}") from exc
        created, skipped = [], []
        with state.lock:
            for key in keys:
                if key["keyID"] in state.gpgkeys:
                    skipped.append(key["keyID"])
                    continue
                state.gpgkeys[key["keyID"]] = key
                created.append(copy.deepcopy(key))
        answer: dict[str, Any] = {"created": {"metadata": {}, "items": created}}
        if skipped:
            answer["skipped"] = skipped
        return answer

    def delete_key(req: Request) -> dict:
        req.ctx.require("gpgkeys", "delete", "")
        kid = req.q("keyID")
        with state.lock:
            if kid not in state.gpgkeys:
                raise unknown(f"No such key configured: {kid}")
            del state.gpgkeys[kid]
        return {}

    router.add("GET", "/api/v1/gpgkeys", list_keys)
    router.add("POST", "/api/v1/gpgkeys", create_key)
    router.add("DELETE", "/api/v1/gpgkeys", delete_key)
    router.add("GET", "/api/v1/gpgkeys/{keyID}", get_key)
    sim.public_repo = public_repo
    sim.public_cluster = public_cluster
    _ = list_meta

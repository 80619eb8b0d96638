"""Deterministic, realistic seed data: projects, clusters, repos, apps, appsets, certs, GPG keys.

Everything is derived from one random.Random(seed) so `--seed S` always yields the same instance.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

TEAMS = ["payments", "checkout", "search", "identity", "platform", "data", "mobile", "growth", "infra", "ml"]
COMPONENTS = [
    "api",
    "web",
    "worker",
    "gateway",
    "cache",
    "scheduler",
    "frontend",
    "auth",
    "billing",
    "notifier",
    "ingest",
    "reporting",
]
ENVS = ["dev", "staging", "prod"]
IN_CLUSTER = "https://kubernetes.default.svc"
CLUSTERS = [
    ("in-cluster", IN_CLUSTER, "dev"),
    ("dev-us", "https://dev-us.k8s.example.com:6443", "dev"),
    ("staging-us", "https://staging-us.k8s.example.com:6443", "staging"),
    ("prod-eu", "https://prod-eu.k8s.example.com:6443", "prod"),
]
ORG = "https://github.com/acme"
HELM_REPO = "https://charts.example.com/stable"
BASE_TIME = datetime(2026, 1, 5, 9, 0, 0, tzinfo=UTC)

# Git directories the fake git generator "finds" in any repo (fixed so previews are predictable).
GIT_DIRS = ["apps/api", "apps/web", "apps/worker", "cluster-addons/cert-manager", "cluster-addons/ingress-nginx"]


def ts(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rand_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


@dataclass
class AppSeed:
    obj: dict
    sync: str  # desired initial sync status
    health: str
    history_revisions: list[str] = field(default_factory=list)
    fail_sync: bool = False


@dataclass
class Seed:
    projects: list[dict]
    clusters: list[dict]
    repos: list[dict]
    repocreds: list[dict]
    apps: list[AppSeed]
    appsets: list[dict]
    certs: list[dict]
    gpgkeys: list[dict]


def project_names(count: int) -> list[str]:
    names = ["default"]
    for i in range(max(count, 1) - 1):
        names.append(TEAMS[i] if i < len(TEAMS) else f"team-{i}")
    return names


def team_repo(team: str) -> str:
    return f"{ORG}/{team}-deploy.git"


def make_project(name: str, created: datetime, uid: str) -> dict:
    meta = {
        "name": name,
        "namespace": "argocd",
        "uid": uid,
        "resourceVersion": "1",
        "generation": 1,
        "creationTimestamp": ts(created),
    }
    if name == "default":
        spec = {
            "sourceRepos": ["*"],
            "destinations": [{"server": "*", "namespace": "*"}],
            "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
        }
        return {"metadata": meta, "spec": spec, "status": {}}
    spec = {
        "description": f"Applications owned by the {name} team",
        "sourceRepos": [f"{ORG}/{name}-*", HELM_REPO],
        "destinations": [{"server": "*", "namespace": f"{name}-*"}, {"name": "*", "namespace": f"{name}-*"}],
        "clusterResourceWhitelist": [{"group": "", "kind": "Namespace"}],
        "namespaceResourceWhitelist": [{"group": "*", "kind": "*"}],
        "roles": [
            {
                "name": "ci",
                "description": f"CI pipeline for {name}: may sync its apps",
                "policies": [
                    f"p, proj:{name}:ci, applications, get, {name}/*, allow",
                    f"p, proj:{name}:ci, applications, sync, {name}/*, allow",
                ],
            },
            {
                "name": "viewer",
                "description": "Read-only",
                "policies": [f"p, proj:{name}:viewer, applications, get, {name}/*, allow"],
                "groups": [f"acme:{name}"],
            },
        ],
        # A weekend maintenance freeze: never active on weekdays, so ordinary syncs are allowed.
        "syncWindows": [
            {
                "kind": "deny",
                "schedule": "0 3 * * 6",
                "duration": "1h",
                "applications": ["*-prod"],
                "manualSync": False,
                "timeZone": "UTC",
            }
        ],
        "sourceNamespaces": ["argocd"],
    }
    return {"metadata": meta, "spec": spec, "status": {}}


def generate(apps: int, projects: int, seed: int) -> Seed:
    rng = random.Random(seed)
    proj_names = project_names(projects)
    proj_objs = [
        make_project(name, BASE_TIME - timedelta(days=90 - i), rand_uuid(rng)) for i, name in enumerate(proj_names)
    ]
    teams = proj_names[1:] or ["platform"]

    clusters = []
    for i, (name, server, env) in enumerate(CLUSTERS):
        c = {
            "server": server,
            "name": name,
            "config": {"tlsClientConfig": {"insecure": False}},
            "connectionState": {"status": "Successful", "message": "", "attemptedAt": ts(BASE_TIME)},
            "serverVersion": "1.31",
            "info": {
                "connectionState": {"status": "Successful", "message": "", "attemptedAt": ts(BASE_TIME)},
                "serverVersion": "1.31",
                "cacheInfo": {"resourcesCount": 1200 + i * 37, "apisCount": 62, "lastCacheSyncTime": ts(BASE_TIME)},
                "applicationsCount": 0,
                "apiVersions": ["apps/v1", "v1", "networking.k8s.io/v1", "batch/v1"],
            },
            "labels": {"env": env} if name != "in-cluster" else {},
            "annotations": {},
        }
        if name != "in-cluster":
            c["config"] = {"bearerToken": f"sim-bearer-{rng.getrandbits(64):x}", "tlsClientConfig": {"insecure": False}}
        clusters.append(c)

    repos = [{"repo": team_repo(t), "type": "git", "name": f"{t}-deploy", "connectionState": _ok()} for t in teams]
    repos.append({"repo": HELM_REPO, "type": "helm", "name": "stable", "connectionState": _ok()})
    repocreds = [{"url": f"{ORG}/", "username": "acme-bot", "password": "s3cret", "type": "git"}]

    app_seeds: list[AppSeed] = []
    seen: set[str] = set()
    for i in range(apps):
        # Vary env fastest, then team, then component, so even small instances look mixed.
        env = ENVS[i % len(ENVS)]
        team = teams[(i // len(ENVS)) % len(teams)]
        comp = COMPONENTS[(i // (len(ENVS) * len(teams))) % len(COMPONENTS)]
        base = f"{team}-{comp}-{env}"
        name = base
        n = 2
        while name in seen:
            name = f"{base}-{n}"
            n += 1
        seen.add(name)
        project = team if team in proj_names else "default"
        cluster = next(c for c in CLUSTERS if c[2] == env and c[0] != "in-cluster")
        use_name = rng.random() < 0.3
        dest = {"namespace": f"{team}-{env}"}
        if env == "dev" and rng.random() < 0.3:
            dest["server" if not use_name else "name"] = IN_CLUSTER if not use_name else "in-cluster"
        else:
            dest["name" if use_name else "server"] = cluster[0] if use_name else cluster[1]
        kind = rng.random()
        if kind < 0.15:
            source = {
                "repoURL": HELM_REPO,
                "chart": comp,
                "targetRevision": f"1.{rng.randint(0, 9)}.{rng.randint(0, 20)}",
                "helm": {"releaseName": name, "valueFiles": [f"values-{env}.yaml"]},
            }
        else:
            source = {"repoURL": team_repo(team), "path": f"apps/{comp}/overlays/{env}", "targetRevision": "HEAD"}
            if kind < 0.35:
                source["kustomize"] = {"commonLabels": {"env": env}}
        labels = {"team": team, "env": env, "component": comp, "app.kubernetes.io/part-of": team}
        roll = rng.random()
        if roll < 0.64:
            sync, health = "Synced", "Healthy"
        elif roll < 0.78:
            sync, health = "OutOfSync", "Healthy"
        elif roll < 0.87:
            sync, health = "Synced", "Progressing"
        elif roll < 0.95:
            sync, health = "OutOfSync", "Degraded"
        else:
            sync, health = "OutOfSync", "Missing"
        fail = rng.random() < 0.03
        if fail:
            labels["sim/fail-sync"] = "true"
        sync_policy: dict = {"syncOptions": ["CreateNamespace=true"]}
        auto_roll = rng.random()
        if auto_roll < 0.2:
            sync_policy["automated"] = {"prune": True, "selfHeal": True}
        elif auto_roll < 0.3:
            sync_policy["automated"] = {"prune": False, "selfHeal": False}
        if rng.random() < 0.3:
            sync_policy["retry"] = {"limit": 2, "backoff": {"duration": "5s", "factor": 2, "maxDuration": "3m"}}
        created = BASE_TIME + timedelta(minutes=i)
        obj = {
            "metadata": {
                "name": name,
                "namespace": "argocd",
                "uid": rand_uuid(rng),
                "generation": rng.randint(2, 40),
                "creationTimestamp": ts(created),
                "labels": labels,
                "annotations": {"notifications.argoproj.io/subscribe.on-sync-failed.slack": f"{team}-alerts"},
                "finalizers": ["resources-finalizer.argocd.argoproj.io"],
            },
            "spec": {
                "project": project,
                "source": source,
                "destination": dest,
                "syncPolicy": sync_policy,
            },
        }
        if rng.random() < 0.2:
            obj["spec"]["revisionHistoryLimit"] = 5
        history = [f"{rng.getrandbits(160):040x}" for _ in range(rng.randint(1, 4))]
        app_seeds.append(AppSeed(obj=obj, sync=sync, health=health, history_revisions=history, fail_sync=fail))

    appsets = [
        {
            "metadata": {
                "name": f"{teams[0]}-envs",
                "namespace": "argocd",
                "uid": rand_uuid(rng),
                "resourceVersion": "1",
                "generation": 1,
                "creationTimestamp": ts(BASE_TIME),
                "labels": {"team": teams[0]},
            },
            "spec": {
                # A preview environment per cluster labelled preview=enabled. No seeded cluster carries the
                # label, so the set owns no applications until one is labelled (and instance sizes stay
                # exactly what was asked for).
                "generators": [{"clusters": {"selector": {"matchLabels": {"preview": "enabled"}}}}],
                "template": {
                    "metadata": {"name": f"{teams[0]}-preview-{{{{nameNormalized}}}}", "labels": {"team": teams[0]}},
                    "spec": {
                        "project": teams[0] if teams[0] in proj_names else "default",
                        "source": {
                            "repoURL": team_repo(teams[0]),
                            "path": "apps/api/overlays/preview",
                            "targetRevision": "HEAD",
                        },
                        "destination": {"server": "{{server}}", "namespace": f"{teams[0]}-preview"},
                    },
                },
            },
            "status": {},
        }
    ]
    # Real keys and a real (self-signed) certificate; certInfo is what Argo CD reads from them: the key's SHA256
    # fingerprint for known-hosts entries (certData is the key field), the subject for TLS certificates.
    certs = [
        {
            "serverName": "github.com",
            "certType": "ssh",
            "certSubType": "ssh-ed25519",
            "certData": _b64("AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"),
            "certInfo": "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU",
        },
        {
            "serverName": "gitlab.com",
            "certType": "ssh",
            "certSubType": "ssh-ed25519",
            "certData": _b64("AAAAC3NzaC1lZDI1NTE5AAAAIAfuCHKVTjquxvt6CM6tdG4SLp1Btn/nOeHHE5UOzRdf"),
            "certInfo": "SHA256:eUXGGm1YGsMAS7vkcx6JOJdOGHPem5gQp4taiCfCLB8",
        },
        {
            "serverName": "git.acme.internal",
            "certType": "https",
            "certSubType": "ecdsa",
            "certData": _b64(
                "-----BEGIN CERTIFICATE-----\n"
                "MIIBaDCCAQ6gAwIBAgICXu0wCgYIKoZIzj0EAwIwPTELMAkGA1UEBhMCVVMxEjAQ\n"
                "BgNVBAoMCUFjbWUgQ29ycDEaMBgGA1UEAwwRZ2l0LmFjbWUuaW50ZXJuYWwwHhcN\n"
                "MjYwMTAxMDAwMDAwWhcNMzUxMjMwMDAwMDAwWjA9MQswCQYDVQQGEwJVUzESMBAG\n"
                "A1UECgwJQWNtZSBDb3JwMRowGAYDVQQDDBFnaXQuYWNtZS5pbnRlcm5hbDBZMBMG\n"
                "ByqGSM49AgEGCCqGSM49AwEHA0IABBslSOYpolwjlamwYpxlzu7y/+MyryGWZJQF\n"
                "WN38NfyMQNNxcWXi+kXhKBAVGBu8vsq41OMzMJXARO8xQzsUpa0wCgYIKoZIzj0E\n"
                "AwIDSAAwRQIhAN8FzaOXUwbOVfODAMV+jhobnCKO+OKKOz4/8Xoa48dHAiA5WKj8\n"
                "A2Zr4jMPS/pErvRAZZNz7gpBhi2AgAV15GUJkg==\n"
                "-----END CERTIFICATE-----\n"
            ),
            "certInfo": "CN=git.acme.internal,O=Acme Corp,C=US",
        },
    ]
    # A real key (made with gpg for the simulator); the fields are what Argo CD reads from it with gpg, which
    # tests/simulator/test_fidelity.py checks.
    gpgkeys = [
        {
            "keyID": "994FCCE12C8A7203",
            "fingerprint": "C2FA92E694E59D3E073DE773994FCCE12C8A7203",
            "owner": "Acme Release Signing <release@acme.example>",
            "trust": "unknown",
            "subType": "rsa2048",
            "keyData": (
                "-----BEGIN PGP PUBLIC KEY BLOCK-----\n"
                "\n"
                "mQENBGsXICwBCADNzCeFPIukgC6EjbIash1BOYot0OxhWolWaybaE4GSczqwHk+Q\n"
                "cWS/AMdqaVkaGR121YfxfAP85/IvECPdAaU0RdcxMa/8Mg2mWLg04yz1X2C0Yg2F\n"
                "I5TkHeWHOc00CPA5MEB1Ds1TzmbjOrn9IwgPeLTjyhMdx2aTauu10YyTsZ+KBGMM\n"
                "lFo+k4+V6f8bWmZt14nHfncYlqEdIYWTGMYKyibx4b7KVGSsLwtdL+ysFm35y6W5\n"
                "IV82S1im+EgqijJzflLaVXqELF9kUBV0bk0cvrjbpqPnYZMcYZvag2h66f1QKXMA\n"
                "90plPoTF1cvekHNtdpBBZWu6flKq+4eAhbY7ABEBAAG0K0FjbWUgUmVsZWFzZSBT\n"
                "aWduaW5nIDxyZWxlYXNlQGFjbWUuZXhhbXBsZT6JAU4EEwEKADgWIQTC+pLmlOWd\n"
                "Pgc953OZT8zhLIpyAwUCaxcgLAIbAwULCQgHAgYVCgkICwIEFgIDAQIeAQIXgAAK\n"
                "CRCZT8zhLIpyA7bKB/40/kx/tnm1PI3R2CiJDD0xpx46QrdJMH058t3vNC8Fm/6h\n"
                "/zS2l5tQRnJqGvljCT9GckqmKO9LQMzfmcAixSddul+VhxHUHtcD1Ml2HspLF1tq\n"
                "Ru7oZ8NoP47d/x63Jf4ef9uyyzF864OPUUCHUqtAyS5JAvD/TFzRfF/7qU+um0PT\n"
                "AFkva5Bai5+wGHhyuUbXvA20jejHHyC8HsMDo0bPfXDsE4/EBKr6wUkorHD8Pd7J\n"
                "FrELId57pSaey6644KR22UP3EzjiHBmsCeQ4koLaYfmFx4O16xVWdl8ICn4xflNm\n"
                "o9tNGERsiBrqVeFB/tMgrPrpXefutdTF4EpYJGNF\n"
                "=pJgC\n"
                "-----END PGP PUBLIC KEY BLOCK-----\n"
            ),
        },
    ]
    return Seed(proj_objs, clusters, repos, repocreds, app_seeds, appsets, certs, gpgkeys)


def _ok() -> dict:
    return {"status": "Successful", "message": "", "attemptedAt": ts(BASE_TIME)}


def _b64(text: str) -> str:
    # certData is a []byte field: Go's encoding/json emits it base64-encoded.
    import base64

    return base64.b64encode(text.encode()).decode()

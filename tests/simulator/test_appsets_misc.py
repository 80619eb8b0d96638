"""ApplicationSets (generators, templates, CRUD, watch) plus list filtering and projection details."""

from __future__ import annotations

import json

import pytest

from .helpers import login, pgp_public_key, self_signed_pem, unique


def appset(name: str, generators: list, go: bool = True, project: str = "default", **template) -> dict:
    tmpl = {
        "metadata": {"name": "{{.name}}-{{.path.basename}}" if go else "{{name}}-{{path.basename}}"},
        "spec": {
            "project": project,
            "source": {
                "repoURL": "https://github.com/acme/addons.git",
                "targetRevision": "HEAD",
                "path": "{{.path.path}}" if go else "{{path}}",
            },
            "destination": {
                "server": "{{.server}}" if go else "{{server}}",
                "namespace": "{{.path.basename}}" if go else "{{path.basename}}",
            },
        },
    }
    tmpl.update(template)
    return {"metadata": {"name": name}, "spec": {"goTemplate": go, "generators": generators, "template": tmpl}}


MATRIX = [
    {
        "matrix": {
            "generators": [
                {
                    "git": {
                        "repoURL": "https://github.com/acme/addons.git",
                        "revision": "HEAD",
                        "directories": [{"path": "cluster-addons/*"}],
                    }
                },
                {"clusters": {"selector": {"matchLabels": {"env": "prod"}}}},
            ]
        }
    }
]


@pytest.mark.parametrize("go", [True, False])
def test_generate_matrix_git_clusters(fresh, go):
    # A private simulator: other suites add clusters to the shared one, and the clusters generator lists them all.
    sim = fresh(seed=7, apps=30, projects=4)
    admin = login(sim.url, "admin", "password")
    r = admin.post("/api/v1/applicationsets/generate", {"applicationSet": appset("gen", MATRIX, go=go)})
    assert r.status_code == 200, r.text
    apps = r.json()["applications"]
    names = sorted(a["metadata"]["name"] for a in apps)
    assert names == ["prod-eu-cert-manager", "prod-eu-ingress-nginx"]
    one = next(a for a in apps if a["metadata"]["name"] == "prod-eu-cert-manager")
    assert one["spec"]["source"]["path"] == "cluster-addons/cert-manager"
    assert one["spec"]["destination"] == {"server": "https://prod-eu.k8s.example.com:6443", "namespace": "cert-manager"}


def test_generate_list_and_errors(admin):
    gens = [
        {
            "list": {
                "elements": [
                    {"name": "a", "server": "https://kubernetes.default.svc", "path": {"path": "x/a", "basename": "a"}}
                ]
            }
        }
    ]
    apps = admin.post("/api/v1/applicationsets/generate", {"applicationSet": appset("l", gens)}).json()["applications"]
    assert [a["metadata"]["name"] for a in apps] == ["a-a"]
    bad = appset("l", gens, project="{{.name}}")
    r = admin.post("/api/v1/applicationsets/generate", {"applicationSet": bad})
    assert r.status_code == 400 and "templated `project`" in r.json()["message"]
    r = admin.post(
        "/api/v1/applicationsets/generate",
        {"applicationSet": appset("m", [{"merge": {"generators": [{"list": {"elements": []}}], "mergeKeys": ["x"]}}])},
    )
    assert r.status_code == 400 and "Merge requires two or more" in r.json()["message"]
    missing = appset("k", [{"list": {"elements": [{"name": "a"}]}}])
    missing["spec"]["goTemplateOptions"] = ["missingkey=error"]
    r = admin.post("/api/v1/applicationsets/generate", {"applicationSet": missing})
    assert r.status_code == 400 and "map has no entry" in r.json()["message"]


def test_appset_crud(admin):
    name = unique("set")
    body = appset(name, MATRIX)
    assert admin.post("/api/v1/applicationsets", body).status_code == 200
    assert admin.post("/api/v1/applicationsets", body).status_code == 200
    changed = json.loads(json.dumps(body))
    changed["spec"]["goTemplateOptions"] = ["missingkey=error"]
    r = admin.post("/api/v1/applicationsets", changed)
    assert r.status_code == 400 and "upsert" in r.json()["message"]
    assert admin.post("/api/v1/applicationsets", changed, params={"upsert": "true"}).status_code == 200
    got = admin.get(f"/api/v1/applicationsets/{name}").json()
    assert got["spec"]["goTemplateOptions"] == ["missingkey=error"] and got["metadata"]["generation"] == 2
    assert name in [
        a["metadata"]["name"]
        for a in admin.get("/api/v1/applicationsets", params={"projects": "default"}).json()["items"]
    ]
    assert admin.delete(f"/api/v1/applicationsets/{name}").json() == {}
    assert admin.get(f"/api/v1/applicationsets/{name}").status_code == 404


def test_list_filters_and_fields(admin):
    items = admin.get("/api/v1/applications").json()["items"]
    assert [a["metadata"]["name"] for a in items] == sorted(a["metadata"]["name"] for a in items)
    team = items[0]["metadata"]["labels"]["team"]
    by_sel = admin.get("/api/v1/applications", params={"selector": f"team={team},env in (dev,prod)"}).json()["items"]
    assert by_sel and all(
        a["metadata"]["labels"]["team"] == team and a["metadata"]["labels"]["env"] in ("dev", "prod") for a in by_sel
    )
    projects = sorted({a["spec"]["project"] for a in items})[:2]
    by_proj = admin.get("/api/v1/applications", params={"projects": projects}).json()["items"]
    assert {a["spec"]["project"] for a in by_proj} == set(projects)
    fields = "items.metadata.name,items.status.sync.status,items.status.health,items.spec.bogus"
    proj = admin.get("/api/v1/applications", params={"fields": fields}).json()
    assert set(proj) == {"metadata", "items"}
    assert all(set(i) == {"metadata", "status"} and set(i["status"]) == {"sync", "health"} for i in proj["items"])
    assert set(proj["items"][0]["status"]["sync"]) == {"status"}
    assert admin.get("/api/v1/applications", params={"selector": "a in (b"}).status_code == 500
    assert admin.get("/api/v1/applications", params={"limit": "1"}).json()["items"].__len__() == len(items)


def test_certificates_and_gpg(admin):
    import base64

    data = base64.b64encode(self_signed_pem("misc.example.com").encode()).decode()
    r = admin.post(
        "/api/v1/certificates", {"items": [{"serverName": "misc.example.com", "certType": "https", "certData": data}]}
    )
    assert r.status_code == 200 and len(r.json()["items"]) == 1
    listed = admin.get("/api/v1/certificates", params={"hostNamePattern": "*.example.com", "certType": "https"}).json()[
        "items"
    ]
    assert "misc.example.com" in [c["serverName"] for c in listed]
    removed = admin.delete("/api/v1/certificates", params={"hostNamePattern": "misc.example.com"}).json()["items"]
    assert [c["serverName"] for c in removed] == ["misc.example.com"]
    r = admin.post("/api/v1/gpgkeys", {"keyData": pgp_public_key("misc")})
    key_id = r.json()["created"]["items"][0]["keyID"]
    assert admin.get(f"/api/v1/gpgkeys/{key_id}").status_code == 200
    assert admin.delete("/api/v1/gpgkeys", params={"keyID": key_id}).status_code == 200
    # A missing key is a plain error in Argo CD (no gRPC code): 500, code 2.
    r = admin.get(f"/api/v1/gpgkeys/{key_id}")
    assert r.status_code == 500 and r.json()["message"] == f"No such key: {key_id}"
    r = admin.delete("/api/v1/gpgkeys", params={"keyID": key_id})
    assert r.status_code == 500 and r.json()["message"] == f"No such key configured: {key_id}"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not*base64*at all", "no valid OpenPGP data found"),
        ("aGVsbG8gd29ybGQ=", "Invalid keyring"),  # "hello world": no packet header
        ("tAVhbGljZQ==", "no public key found"),  # a user ID packet on its own
    ],
)
def test_gpg_key_that_gpg_cannot_import_is_refused(admin, body, reason):
    before = admin.get("/api/v1/gpgkeys").json()["items"]
    armored = f"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n{body}\n-----END PGP PUBLIC KEY BLOCK-----\n"
    r = admin.post("/api/v1/gpgkeys", {"keyData": armored})
    assert r.status_code == 400 and r.json()["code"] == 3
    assert r.json()["message"].startswith("Could not parse GnuPG key") and reason in r.json()["message"]
    assert admin.get("/api/v1/gpgkeys").json()["items"] == before


def test_seeded_and_exported_gpg_keys_with_armor_headers_are_accepted(fresh):
    server = fresh()
    client = login(server.url, "admin", "password")
    seeded = server.state.gpgkeys["994FCCE12C8A7203"]["keyData"]
    with_headers = pgp_public_key("headers").replace("\n\n", "\nVersion: GnuPG v2\n\n", 1)
    assert client.post("/api/v1/gpgkeys", {"keyData": with_headers}).status_code == 200
    again = client.post("/api/v1/gpgkeys", {"keyData": seeded})
    assert again.status_code == 200 and again.json()["skipped"] == ["994FCCE12C8A7203"]

"""Where the simulator answers as Argo CD itself does: project wording, GPG keys, certificates, sessions."""

from __future__ import annotations

import base64
import copy
import subprocess

import pytest
from cryptography import x509

from .helpers import gpg_colons, pgp_public_key, self_signed_pem, unique


def _project(name: str) -> dict:
    return {
        "metadata": {"name": name},
        "spec": {
            "description": "first",
            "sourceRepos": ["https://a.example/x.git", "https://a.example/y.git"],
            "destinations": [{"server": "*", "namespace": "*"}],
        },
    }


def test_recreating_a_project_with_another_spec_names_the_differing_keys_as_argocd_does(admin):
    body = _project(unique("fid-proj"))
    assert admin.post("/api/v1/projects", {"project": body}).status_code == 200
    changed = copy.deepcopy(body)
    changed["spec"]["description"] = "second"
    changed["spec"]["sourceRepos"][1] = "https://a.example/z.git"
    r = admin.post("/api/v1/projects", {"project": changed})
    assert r.status_code == 400
    assert r.json()["message"] == (
        "existing project spec is different; use upsert flag to force update; "
        'difference in keys "Description,SourceRepos,1"'
    )
    assert admin.post("/api/v1/projects", {"project": body}).status_code == 200  # the same spec is no conflict


def _gpg_reading(armored: str) -> dict:
    """keyID, fingerprint, owner and subtype of the first key, from `gpg --with-colons` itself."""
    fields = gpg_colons(armored)
    pub = next(f for f in fields if f[0] == "pub")
    fingerprint = next(f for f in fields if f[0] == "fpr")[9]
    owner = next(f for f in fields if f[0] == "uid")[9]
    # gpg names RSA keys by algorithm and length, ECC keys by curve (field 17).
    subtype = f"rsa{pub[2]}" if pub[3] == "1" else pub[16]
    return {"keyID": pub[4], "fingerprint": fingerprint, "owner": owner, "subType": subtype}


@pytest.mark.parametrize("algo", ["rsa2048", "ed25519"])
def test_a_gpg_key_is_reported_with_the_identity_gpg_reads_from_it(admin, algo):
    armored = pgp_public_key(unique("fid-gpg").replace("-", ""), algo)
    expected = _gpg_reading(armored)
    r = admin.post("/api/v1/gpgkeys", {"keyData": armored})
    assert r.status_code == 200, r.text
    (created,) = r.json()["created"]["items"]
    assert {k: created[k] for k in expected} == expected
    assert created["trust"] == "unknown"  # a key imported into a fresh keyring has no owner trust yet
    assert expected["keyID"] == expected["fingerprint"][-16:]
    listed = admin.get(f"/api/v1/gpgkeys/{expected['keyID']}").json()
    assert {k: listed[k] for k in expected} == expected
    assert _gpg_reading(listed["keyData"]) == expected, "the stored key data is the key itself"


def test_the_seeded_gpg_key_carries_what_gpg_reads_from_it(sim):
    (seeded,) = [k for k in sim.state.gpgkeys.values() if k["keyID"] == "994FCCE12C8A7203"]
    assert {k: seeded[k] for k in ("keyID", "fingerprint", "owner", "subType")} == _gpg_reading(seeded["keyData"])


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()  # certData is a Go []byte


def _ssh_keygen_fingerprint(tmp_path, line: str) -> str:
    path = tmp_path / "known_hosts"
    path.write_text(line + "\n")
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()[1]


def test_an_https_certificate_is_described_by_its_subject_and_key_algorithm(admin):
    host = f"{unique('fid-tls')}.example.com"
    pem = self_signed_pem(host)
    r = admin.post(
        "/api/v1/certificates", {"items": [{"serverName": host, "certType": "https", "certData": _b64(pem)}]}
    )
    assert r.status_code == 200, r.text
    (listed,) = admin.get("/api/v1/certificates", params={"hostNamePattern": host}).json()["items"]
    assert listed["certInfo"] == f"CN={host},O=Fidelity Test,C=DE"
    assert listed["certSubType"] == "ecdsa"


def test_a_known_hosts_key_is_described_by_its_sha256_fingerprint(admin, tmp_path):
    host = f"{unique('fid-ssh')}.example.com"
    key_path = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key_path)], check=True)
    keytype, key = (key_path.with_suffix(".pub")).read_text().split()[:2]
    item = {"serverName": host, "certType": "ssh", "certSubType": keytype, "certData": _b64(key)}
    assert admin.post("/api/v1/certificates", {"items": [item]}).status_code == 200
    (listed,) = admin.get("/api/v1/certificates", params={"hostNamePattern": host}).json()["items"]
    assert listed["certInfo"] == _ssh_keygen_fingerprint(tmp_path, f"{host} {keytype} {key}")
    bad = {**item, "serverName": "x." + host, "certData": _b64("AAAAnotakey")}
    r = admin.post("/api/v1/certificates", {"items": [bad]})
    assert r.status_code == 500 and r.json()["message"] == "ssh: no key found"


def test_the_seeded_certificates_carry_what_argocd_reads_from_them(sim, tmp_path):
    by_host = {c["serverName"]: c for c in sim.state.certs}
    github = by_host["github.com"]
    line = f"github.com {github['certSubType']} {base64.b64decode(github['certData']).decode()}"
    assert github["certInfo"] == _ssh_keygen_fingerprint(tmp_path, line)
    tls = by_host["git.acme.internal"]
    cert = x509.load_pem_x509_certificate(base64.b64decode(tls["certData"]))
    assert tls["certInfo"] == cert.subject.rfc4514_string() == "CN=git.acme.internal,O=Acme Corp,C=US"


def test_a_sync_window_on_day_seven_is_refused_as_robfig_cron_refuses_it(admin):
    body = _project(unique("fid-win"))
    body["spec"]["syncWindows"] = [
        {"kind": "deny", "schedule": "0 22 * * 5-7", "duration": "1h", "applications": ["*"]}
    ]
    r = admin.post("/api/v1/projects", {"project": body})
    assert r.status_code == 400
    assert r.json()["message"] == "cannot parse schedule '0 22 * * 5-7': end of range (7) above maximum (6): 5-7"
    body["spec"]["syncWindows"][0]["schedule"] = "0 22 * * 5,6,0"
    assert admin.post("/api/v1/projects", {"project": body}).status_code == 200

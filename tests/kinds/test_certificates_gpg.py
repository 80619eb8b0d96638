"""Certificates and GPG keys: validated in the portal before Argo CD is called; filters; delete."""

from __future__ import annotations

import datetime
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from apps.audit.models import AuditEvent

from .conftest import events, pgp_public_key

pytestmark = pytest.mark.django_db
SSH_LINE = "git.{u}.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
PRIVATE_GPG = "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBF-secret\n-----END PGP PRIVATE KEY BLOCK-----\n"


def pem_certificate(host: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def certs_for(sim, host: str) -> list[dict]:
    return [c for c in sim.state.certs if c["serverName"] == host]


def test_https_certificate_is_added_listed_filtered_and_deleted(admin_client, argo, sim, unique):
    host = f"git.{unique}.example"
    r = admin_client.post(
        "/kinds/certificates/sim-k/new/", {"serverName": host, "certType": "https", "certData": pem_certificate(host)}
    )
    assert r.status_code == 302, r.content.decode()[:2000]
    assert [c["certType"] for c in certs_for(sim, host)] == ["https"]
    listed = admin_client.get(f"/kinds/certificates/?hostNamePattern={host}&certType=https").content.decode()
    assert host in listed and "github.com" not in listed
    key = f"{host}:https"
    assert f"/kinds/certificates/sim-k/{quote(key, safe='')}/" in listed, "a TLS entry is named host:https"
    assert f"{host}:https:" not in listed
    detail = admin_client.get(f"/kinds/certificates/sim-k/{quote(key, safe='')}/").content.decode()
    assert "BEGIN CERTIFICATE" in detail
    r = admin_client.post(f"/kinds/certificates/sim-k/{quote(key, safe='')}/delete/", {"delete": "1"})
    assert r.status_code == 302 and not certs_for(sim, host)
    assert [e.action for e in events(kind="certificate", name__startswith=host)] == ["create", "delete"]
    assert events(kind="certificate", action="delete")[0].name == key


def test_a_pem_that_does_not_parse_is_refused_before_argocd(admin_client, argo, sim, unique):
    host = f"bad.{unique}.example"
    junk = "-----BEGIN CERTIFICATE-----\nMIIBnotreallyacert\n-----END CERTIFICATE-----\n"
    r = admin_client.post("/kinds/certificates/sim-k/new/", {"serverName": host, "certType": "https", "certData": junk})
    assert r.status_code == 400 and "not a valid PEM X.509 certificate" in r.content.decode()
    plain = admin_client.post(
        "/kinds/certificates/sim-k/new/", {"serverName": host, "certType": "https", "certData": "hi"}
    )
    assert "must be PEM text" in plain.content.decode()
    assert not certs_for(sim, host) and not events(kind="certificate")


def test_ssh_known_hosts_line_is_checked_then_added(admin_client, argo, sim, unique):
    host = f"git.{unique}.example"
    bad = admin_client.post(
        "/kinds/certificates/sim-k/new/", {"serverName": host, "certType": "ssh", "certData": f"{host} ssh-rsa"}
    )
    assert bad.status_code == 400 and "is not `host keytype base64-key`" in bad.content.decode()
    wrong_type = admin_client.post(
        "/kinds/certificates/sim-k/new/", {"serverName": host, "certType": "ssh", "certData": f"{host} rsa AAAA"}
    )
    assert "is not an SSH key type" in wrong_type.content.decode()
    assert not certs_for(sim, host)
    ok = admin_client.post(
        "/kinds/certificates/sim-k/new/", {"serverName": host, "certType": "ssh", "certData": SSH_LINE.format(u=unique)}
    )
    assert ok.status_code == 302
    assert [(c["certType"], c["certSubType"]) for c in certs_for(sim, host)] == [("ssh", "ssh-ed25519")]


def test_private_gpg_key_is_refused_and_public_key_is_added_then_deleted(admin_client, argo, sim, unique):
    before = set(sim.state.gpgkeys)
    r = admin_client.post("/kinds/gpgkeys/sim-k/new/", {"keyData": PRIVATE_GPG})
    body = r.content.decode()
    assert r.status_code == 400 and "PRIVATE key" in body and "lQOYBF-secret" not in body
    junk = admin_client.post("/kinds/gpgkeys/sim-k/new/", {"keyData": "not a key"})
    assert "ASCII-armoured public key" in junk.content.decode()
    assert set(sim.state.gpgkeys) == before and not events(kind="gpgkey")
    ok = admin_client.post("/kinds/gpgkeys/sim-k/new/", {"keyData": pgp_public_key(unique)})
    (new_id,) = set(sim.state.gpgkeys) - before
    assert ok.status_code == 302 and ok["Location"] == f"/kinds/gpgkeys/sim-k/{new_id}/"
    assert new_id in admin_client.get(f"/kinds/gpgkeys/?keyID={new_id}").content.decode()
    r = admin_client.post(f"/kinds/gpgkeys/sim-k/{new_id}/delete/", {"delete": "1"})
    assert r.status_code == 302 and new_id not in sim.state.gpgkeys
    assert [e.outcome for e in events(kind="gpgkey", action="delete")] == [AuditEvent.Outcome.SUCCEEDED]


def test_member_without_an_instance_wide_grant_cannot_add_certificates(client, bob, grant, argo, sim, unique):
    grant(bob, ["view", "create"], project="payments")
    client.force_login(bob)
    host = f"x.{unique}.example"
    r = client.post(
        "/kinds/certificates/sim-k/new/", {"serverName": host, "certType": "https", "certData": pem_certificate(host)}
    )
    assert r.status_code == 404 and not certs_for(sim, host)
    assert events(outcome=AuditEvent.Outcome.DENIED, kind="certificate", actor="bob")


def test_an_armored_block_argocd_cannot_read_is_refused_with_its_message(admin_client, argo, sim, unique):
    before = set(sim.state.gpgkeys)
    junk = f"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot*base64*{unique}\n-----END PGP PUBLIC KEY BLOCK-----\n"
    r = admin_client.post("/kinds/gpgkeys/sim-k/new/", {"keyData": junk})
    assert r.status_code == 400 and "Could not parse GnuPG key" in r.content.decode()
    assert set(sim.state.gpgkeys) == before
    assert events(kind="gpgkey", action="create")[-1].outcome == AuditEvent.Outcome.FAILED


def test_adding_a_key_that_is_already_there_goes_to_the_list_not_an_empty_key_page(admin_client, argo, sim, unique):
    assert admin_client.post("/kinds/gpgkeys/sim-k/new/", {"keyData": pgp_public_key(unique)}).status_code == 302
    r = admin_client.post("/kinds/gpgkeys/sim-k/new/", {"keyData": pgp_public_key(unique)})
    assert r.status_code == 302 and r["Location"] == "/kinds/gpgkeys/?instance=sim-k"
    assert "added no new GPG key on sim-k" in admin_client.get(r["Location"]).content.decode()


def test_certificates_show_the_subject_argocd_reads_and_known_hosts_their_sha256_fingerprint(
    admin_client, argo, sim, unique
):
    host = f"git.{unique}.example"
    admin_client.post(
        "/kinds/certificates/sim-k/new/", {"serverName": host, "certType": "https", "certData": pem_certificate(host)}
    )
    admin_client.post(
        "/kinds/certificates/sim-k/new/", {"serverName": host, "certType": "ssh", "certData": SSH_LINE.format(u=unique)}
    )
    listed = admin_client.get(f"/kinds/certificates/?hostNamePattern={host}").content.decode()
    assert "Subject / SHA256 fingerprint" in listed
    assert f"CN={host}" in listed and "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU" in listed
    tls = admin_client.get(f"/kinds/certificates/sim-k/{quote(f'{host}:https', safe='')}/").content.decode()
    assert "subject" in tls and f"CN={host}" in tls and "ecdsa" in tls
    older = admin_client.get(f"/kinds/certificates/sim-k/{quote(f'{host}:https:', safe='')}/")
    assert older.status_code == 200 and f"CN={host}" in older.content.decode(), "an older link still opens it"
    ssh = admin_client.get(f"/kinds/certificates/sim-k/{quote(f'{host}:ssh:ssh-ed25519', safe='')}/").content.decode()
    assert "SHA256 fingerprint" in ssh and "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU" in ssh

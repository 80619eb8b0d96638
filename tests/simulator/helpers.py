"""Shared helpers for simulator tests: an authenticated client, polling, and the swagger validator."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from functools import cache, lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jsonschema
import requests

SWAGGER = Path("/work/shared/argocd/swagger.json")


class Client:
    """requests.Session bound to one sim and one bearer token."""

    def __init__(self, base: str, token: str | None = None) -> None:
        self.base = base
        self.s = requests.Session()
        if token:
            self.s.headers["Authorization"] = f"Bearer {token}"

    def req(self, method: str, path: str, **kw: Any) -> requests.Response:
        kw.setdefault("timeout", 10)
        return self.s.request(method, self.base + path, **kw)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.req("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        return self.req("POST", path, json={} if body is None else body, **kw)

    def put(self, path: str, body: Any, **kw: Any) -> requests.Response:
        return self.req("PUT", path, json=body, **kw)

    def patch(self, path: str, body: Any, **kw: Any) -> requests.Response:
        return self.req("PATCH", path, json=body, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        # Argo CD demands the JSON content type on DELETE too.
        kw.setdefault("headers", {"Content-Type": "application/json"})
        return self.req("DELETE", path, **kw)

    def app(self, name: str) -> dict:
        r = self.get(f"/api/v1/applications/{name}")
        assert r.status_code == 200, r.text
        return r.json()


def login(base: str, username: str, password: str) -> Client:
    r = requests.post(base + "/api/v1/session", json={"username": username, "password": password}, timeout=10)
    assert r.status_code == 200, r.text
    return Client(base, r.json()["token"])


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05, what: str = "") -> Any:
    """Poll until predicate() is truthy; fail with the last value after the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what or predicate}: last={last!r}")


def enc(value: str) -> str:
    """encodeURIComponent for repo URLs / cluster servers in path segments."""
    return quote(value, safe="")


@cache
def pgp_public_key(seed: str, algo: str = "ed25519") -> str:
    """A real ASCII-armored public key that gpg makes for `Test <seed>` (the same one for the same seed)."""
    with tempfile.TemporaryDirectory(prefix="gpgt-") as home:
        env = {**os.environ, "GNUPGHOME": home}
        batch = ["gpg", "--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", ""]
        owner = f"Test {seed} <{seed}@example.com>"
        try:
            subprocess.run(
                [*batch, "--quick-gen-key", owner, algo, "sign", "never"], env=env, check=True, capture_output=True
            )
            return subprocess.run(
                ["gpg", "--armor", "--export"], env=env, check=True, capture_output=True, text=True
            ).stdout
        finally:
            subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, check=False, capture_output=True)


def gpg_colons(armored: str) -> list[list[str]]:
    """`gpg --with-colons --list-keys` of the block imported into a fresh keyring: the fields per line."""
    with tempfile.TemporaryDirectory(prefix="gpgt-") as home:
        env = {**os.environ, "GNUPGHOME": home}
        subprocess.run(
            ["gpg", "--batch", "--import"], input=armored, env=env, check=True, capture_output=True, text=True
        )
        out = subprocess.run(
            ["gpg", "--with-colons", "--list-keys"], env=env, check=True, capture_output=True, text=True
        ).stdout
    return [line.split(":") for line in out.splitlines()]


def self_signed_pem(common_name: str) -> str:
    """A real self-signed ECDSA certificate for CN=<common_name>, O=Fidelity Test, C=DE, in PEM."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Fidelity Test"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def unique(prefix: str) -> str:
    return f"{prefix}-{time.monotonic_ns() % 10**10}"


def new_app_body(name: str, project: str = "default", namespace: str = "default", **spec: Any) -> dict:
    body = {
        "metadata": {"name": name, "namespace": "argocd", "labels": {"team": "test", "env": "dev"}},
        "spec": {
            "project": project,
            "source": {
                "repoURL": "https://github.com/acme/test-deploy.git",
                "path": "apps/web",
                "targetRevision": "HEAD",
            },
            "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
        },
    }
    body["spec"].update(spec)
    return body


# ------------------------------------------------------------------------------------------ swagger


def _patch_quirks(defs: dict) -> None:
    """Make swagger 2.0 match what Go's encoding/json actually emits, and forbid unknown fields."""

    def flatten_all_of(node: dict) -> None:
        # Inline embedded Go structs (allOf: [$ref]) so additionalProperties=False sees every field.
        refs = node.pop("allOf", None) or []
        for ref in refs:
            target = defs[ref["$ref"].split("/")[-1]] if "$ref" in ref else ref
            if "allOf" in target:
                flatten_all_of(target)
            node.setdefault("properties", {}).update(copy.deepcopy(target.get("properties") or {}))
            node.setdefault("type", "object")

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "allOf" in node:
                flatten_all_of(node)
            if node.get("type") == "string" and node.get("format") in ("int64", "uint64"):
                node["type"] = ["string", "integer"]
            if node.get("type") == "object" and "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(defs)
    # metav1.MicroTime and Time marshal as RFC3339 strings (or null when zero), not the proto shape.
    defs["v1MicroTime"] = {"type": ["string", "null"]}
    defs["v1Time"] = {"type": ["string", "null"]}
    # apiextensions JSON and RawExtension marshal as the raw embedded JSON value.
    defs["v1JSON"] = {}
    defs["runtimeRawExtension"] = {}
    # intstr.IntOrString marshals as a bare int or string.
    defs["intstrIntOrString"] = {"type": ["string", "integer"]}


@lru_cache(maxsize=1)
def swagger() -> dict:
    spec = json.loads(SWAGGER.read_text())
    _patch_quirks(spec["definitions"])
    return spec


@cache
def _validator(method: str, path: str) -> jsonschema.Draft4Validator:
    spec = swagger()
    op = spec["paths"][path][method.lower()]
    schema = {**op["responses"]["200"]["schema"], "definitions": spec["definitions"]}
    # Skip meta-validation of the whole swagger (slow); Draft 4 is what swagger 2.0 builds on.
    return jsonschema.Draft4Validator(schema)


@cache
def _def_validator(name: str) -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator({"$ref": f"#/definitions/{name}", "definitions": swagger()["definitions"]})


def validate(method: str, path: str, body: Any) -> None:
    _validator(method, path).validate(body)


def validate_def(name: str, body: Any) -> None:
    _def_validator(name).validate(body)


def hard_close(resp: requests.Response) -> None:
    """Drop a streamed response at the socket level (like a browser tab closing).

    `resp.close()` alone blocks until the read timeout while another thread is inside iter_lines().
    """
    import socket

    with contextlib.suppress(AttributeError, OSError):
        resp.raw._fp.fp.raw._sock.shutdown(socket.SHUT_RDWR)
    resp.close()

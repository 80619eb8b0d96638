"""Start and stop the demo's OpenID Connect provider (apps/identity/demo_oidc.py, `manage.py demo_oidc_provider`)
as a process of its own, on a free port."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import requests

ROOT = Path(__file__).resolve().parents[2]
CLIENT_ID = "argocd-portal"
CLIENT_SECRET = "portal-client-secret-for-tests"

# The provider's users: alice is in a web developers' group and the platform group; bob only in the latter.
USERS = {
    "alice": {"password": "alice-at-the-provider", "email": "alice@example.com", "groups": ["dev-web", "platform"]},
    "bob": {"password": "bob-at-the-provider", "email": "bob@example.com", "groups": ["platform"]},
}


class Provider:
    def __init__(self, users_file: Path, redirect_uri: str):
        self.users_file = users_file
        self.redirect_uri = redirect_uri
        self.users = json.loads(json.dumps(USERS))
        self.proc: subprocess.Popen | None = None
        self.issuer = ""

    def start(self) -> Provider:
        self.save_users()
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "demo_oidc_provider", "--port", "0", "--users-file", str(self.users_file),
             "--client-id", CLIENT_ID, "--redirect-uri", self.redirect_uri],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "DEBUG": "1", "DEMO_OIDC_CLIENT_SECRET": CLIENT_SECRET},
        )  # fmt: skip
        line = self.proc.stdout.readline()  # the provider prints its address once it answers
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"the test OIDC provider did not start: {line!r}")
        self.issuer = line.split()[-1]
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def set_groups(self, username: str, groups: list[str]) -> None:
        self.users[username]["groups"] = groups
        self.save_users()

    def save_users(self) -> None:
        self.users_file.write_text(json.dumps(self.users))

    def configure(self, settings) -> None:
        settings.OIDC_ISSUER = self.issuer
        settings.OIDC_CLIENT_ID = CLIENT_ID
        settings.OIDC_CLIENT_SECRET = CLIENT_SECRET
        settings.OIDC_PROVIDER_NAME = "Test IdP"

    def sign_in(self, authorize_url: str, username: str) -> str:
        """Fill the provider's login form over HTTP (no browser) and return where it sends the user back."""
        params = dict(parse_qsl(urlsplit(authorize_url).query))
        form = {**params, "username": username, "password": self.users[username]["password"]}
        response = requests.post(f"{self.issuer}/authorize", data=form, allow_redirects=False, timeout=10)
        assert response.status_code == 302, response.text
        return response.headers["Location"]

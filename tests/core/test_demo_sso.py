"""`make demo`'s single sign-on and API token: the demo's own OIDC provider process signs the demo SSO user in,
the seeded group mapping puts them in team payments, and the member's token (shown once) opens the API."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from django.core.management import CommandError, call_command
from django.test import Client

from apps.audit.models import AuditEvent
from apps.identity.models import GroupMapping
from apps.identity.tokens import ApiToken, digest
from apps.teams.models import Membership

from .test_demo import free_ports

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_provider(tmp_path, settings):
    """The demo's provider, started by the demo's helpers; the portal configured as the demo configures it."""
    from apps.core.management.commands import demo

    opts = {"oidc_port": free_ports(1), "port": free_ports(1)}
    users_file = tmp_path / "sso-users.json"
    password = demo.write_sso_users(users_file)
    secret = "demo-client-secret-for-tests"
    proc = subprocess.Popen(
        demo.oidc_provider_command(sys.executable, opts, users_file),
        cwd=ROOT, env={**demo.oidc_provider_env(secret), "DEBUG": "1"}, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout.readline().startswith("listening on ")
        for name, value in demo.portal_oidc_env(opts, secret).items():
            setattr(settings, name, value)
        yield opts, users_file, password
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_demo_sso_user_signs_in_and_joins_team_payments_through_the_seeded_mapping(demo_provider):
    from apps.core.management.commands import demo
    from apps.teams.demo import seed_teams

    opts, users_file, password = demo_provider
    assert users_file.stat().st_mode & 0o077 == 0, "the demo SSO password is readable by others"
    assert json.loads(users_file.read_text())["sso-dev"]["groups"] == ["payments-devs"]
    seed_teams("member-Secret-1")
    demo.seed_identity()
    rule = GroupMapping.objects.get(group="payments-devs")
    assert rule.team.slug == "payments"
    assert AuditEvent.objects.filter(action="create", kind="group_mapping", name="payments-devs").exists()

    browser = Client(HTTP_HOST=f"127.0.0.1:{opts['port']}")  # the address the provider sends people back to
    assert b"Sign in with demo SSO" in browser.get("/login/").content
    start = browser.get("/oidc/login/")
    assert start["Location"].startswith(f"http://127.0.0.1:{opts['oidc_port']}/authorize?")
    form = {**dict(parse_qsl(urlsplit(start["Location"]).query)), "username": "sso-dev", "password": password}
    authorize = f"http://127.0.0.1:{opts['oidc_port']}/authorize"
    wrong = requests.post(authorize, data={**form, "password": "x"}, timeout=10)
    assert wrong.status_code == 200 and "Wrong username or password" in wrong.text
    answer = requests.post(
        f"http://127.0.0.1:{opts['oidc_port']}/authorize", data=form, allow_redirects=False, timeout=10
    )
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["Location"])
    assert back.path == "/oidc/callback/"
    assert browser.get(f"{back.path}?{back.query}").status_code == 302
    assert browser.get("/account/password/").status_code == 200  # signed in
    assert Membership.objects.filter(user__username="sso-dev", team__slug="payments").exists()


def test_the_demo_member_gets_one_working_api_token_whose_secret_is_not_stored():
    from apps.core.management.commands import demo
    from apps.teams.demo import seed_teams

    seed_teams("member-Secret-1")
    secret = demo.seed_identity()
    token = ApiToken.objects.get()
    assert token.user.username == "dev" and token.digest == digest(secret) and secret.startswith("acp_")
    created = AuditEvent.objects.get(action="create", kind="api_token")
    assert created.actor == "dev" and secret not in json.dumps([created.request, created.after])
    answer = Client().get("/api/applications?project=payments", headers={"Authorization": f"Bearer {secret}"})
    assert answer.status_code == 200, answer.content


def test_the_demo_provider_refuses_to_run_without_debug(settings, tmp_path):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="development only"):
        call_command("demo_oidc_provider", "--users-file", str(tmp_path / "u.json"), "--redirect-uri", "http://x/")

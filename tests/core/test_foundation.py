from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_health_is_public_and_alive(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_ready_when_database_cache_and_broker_answer_and_a_worker_consumes(client):
    from apps.operations import workers

    workers.beat("celery@test")  # what a consuming worker's heartbeat step writes
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"] == ["broker", "cache", "database", "workers"]


@pytest.mark.django_db
def test_not_ready_names_the_broker_that_is_down(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "broker" in json.loads(response.content)["failed"]


@pytest.mark.django_db
def test_pages_need_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.django_db
def test_login_page_renders_with_csrf(client):
    response = client.get("/login/")
    assert response.status_code == 200
    assert b"csrfmiddlewaretoken" in response.content


@pytest.mark.django_db
def test_home_after_login_carries_csrf_header_for_htmx(client, alice):
    response = client.post("/login/", {"username": "alice", "password": "alice-password-123"}, follow=True)
    assert response.status_code == 200
    assert b"X-CSRFToken" in response.content
    assert b"vendor/htmx/htmx.min.js" in response.content


@pytest.mark.django_db
def test_unknown_page_uses_portal_404(client, alice, settings):
    settings.DEBUG = False
    client.force_login(alice)
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert b"404" in response.content and b"Argo CD Portal" in response.content


def test_a_refusal_and_a_visit_to_a_form_address_get_portal_pages_in_development_too(client, alice, settings):
    settings.DEBUG = True  # where Django would show its debug page with every URL pattern
    client.force_login(alice)
    response = client.get("/teams/no-such-team/")
    body = response.content.decode()
    assert response.status_code == 404 and "404 · Not found" in body and "URLconf" not in body
    response = client.get("/logout/")  # logout is a POST
    assert response.status_code == 405 and "405 · Not a page" in response.content.decode()
    assert "POST" in response["Allow"]


@pytest.mark.django_db
def test_post_without_csrf_is_refused():
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/login/", {"username": "x", "password": "y"})
    assert response.status_code == 403


def test_vendored_assets_exist():
    assert (ROOT / "static/vendor/htmx/htmx.min.js").stat().st_size > 10_000
    assert (ROOT / "static/vendor/pico/pico.min.css").stat().st_size > 10_000


def test_compose_services_run_commands_that_exist():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"web", "worker", "beat", "redis", "postgres", "indexer", "simulator"} <= set(services)
    from django.core.management import get_commands

    commands = get_commands()
    for name, service in services.items():
        command = service.get("command")
        if not command:
            assert "image" in service, name
            continue
        words = command if isinstance(command, list) else command.split()
        if words[:2] == ["python", "manage.py"]:
            assert words[2] in commands, f"{name}: manage.py {words[2]} does not exist"
        elif words[0] == "gunicorn":
            module = words[-1].split(":")[0]
            assert (ROOT / (module.replace(".", "/") + ".py")).exists(), name
        elif words[0] == "celery":
            assert words[words.index("-A") + 1] == "portal", name
        else:
            pytest.fail(f"{name}: unexpected command {words}")
        assert "healthcheck" in service, f"{name} has no healthcheck"


def test_env_example_lists_every_setting():
    text = (ROOT / ".env.example").read_text()
    for var in (
        "SECRET_KEY",
        "DEBUG",
        "ALLOWED_HOSTS",
        "DATABASE_URL",
        "REDIS_URL",
        "FIELD_ENCRYPTION_KEY",
        "CSRF_TRUSTED_ORIGINS",
        "LOG_LEVEL",
    ):
        assert f"{var}=" in text, var


def test_production_settings_pass_deploy_checks(tmp_path):
    import os
    import subprocess
    import sys

    env = dict(
        os.environ,
        DEBUG="0",
        SECRET_KEY="x" * 60 + "-a-long-random-production-secret",
        ALLOWED_HOSTS="portal.example.com",
        FIELD_ENCRYPTION_KEY="a2V5LWZvci10ZXN0cy1vbmx5LTMyLWJ5dGVzLWxvbmc=",
        PORTAL_VAR_DIR=str(tmp_path),
    )
    out = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no issues" in out.stdout


@pytest.mark.skipif(not shutil.which("redis-cli"), reason="needs redis")
@pytest.mark.celery
def test_a_real_worker_runs_a_task(celery_worker):
    from apps.core.tasks import ping

    assert ping.delay().get(timeout=20) == "pong"


def test_client_address_comes_from_the_trusted_proxy_hop(rf, settings):
    from apps.core.net import client_ip

    request = rf.get("/", HTTP_X_FORWARDED_FOR="6.6.6.6, 10.0.0.7", REMOTE_ADDR="10.0.0.1")
    settings.PROXY_COUNT = 0
    assert client_ip(request) == "10.0.0.1"
    settings.PROXY_COUNT = 1
    assert client_ip(request) == "10.0.0.7"


def test_client_addresses_are_normalised_or_dropped(rf, settings):
    from apps.core.net import client_ip

    settings.PROXY_COUNT = 0
    assert client_ip(rf.get("/", REMOTE_ADDR="2001:DB8:0:0::1")) == "2001:db8::1"
    assert client_ip(rf.get("/", REMOTE_ADDR="fe80::1%eth0")) == "fe80::1"
    assert client_ip(rf.get("/", REMOTE_ADDR="unknown")) is None


@pytest.mark.django_db
def test_an_odd_address_keeps_the_audit_chain_verifiable(rf, settings):
    from apps.audit.chain import verify
    from apps.audit.service import Outcome, record

    settings.PROXY_COUNT = 1
    request = rf.get("/", HTTP_X_FORWARDED_FOR="2001:DB8:0:0::1", REMOTE_ADDR="10.0.0.1")
    record(request, action="test", outcome=Outcome.SUCCEEDED)
    record(rf.get("/", REMOTE_ADDR="1.2.3.4:80"), action="test", outcome=Outcome.SUCCEEDED)
    checked, bad, reason = verify()
    assert (checked, bad) == (2, None), reason


def test_an_htmx_request_after_the_session_ended_sends_the_page_to_the_login(client):
    response = client.get(
        "/applications/", headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/applications/?q=api"}
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/login/?next=%2Fapplications%2F%3Fq%3Dapi"


@pytest.mark.django_db
def test_a_stale_form_gets_a_portal_page_that_says_to_reload(alice):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post("/teams/", {"name": "x"})
    assert response.status_code == 403 and "Reload the page and try again" in response.content.decode()

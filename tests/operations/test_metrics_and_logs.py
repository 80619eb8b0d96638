"""Metrics and logs across processes: a sync through a real web server (gunicorn, two uvicorn workers) and a
real Celery worker, both writing Prometheus multiprocess files and JSON log lines.

One scrape of the web shows the view's latency, the Argo CD calls of the web and of the worker by instance and
endpoint, operations by state, the checkpoint's age and the token's expiry; one request id given by the caller
appears in the web's log, the worker's log and every audit event of the operation.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from apps.audit.models import AuditEvent
from apps.operations.models import Operation

from .conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "scrape-" + "0" * 20
REQUEST_ID = "abc123-sync-0001"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def shared_env(tmp_path):
    from django.db import connection

    db = connection.settings_dict
    prom = tmp_path / "prometheus"
    prom.mkdir()
    return {
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
        "PROMETHEUS_MULTIPROC_DIR": str(prom),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "METRICS_TOKEN": TOKEN,
        "AUDIT_CHECKPOINT_FILE": str(tmp_path / "checkpoints.jsonl"),
    }


@pytest.fixture
def web(shared_env):
    """gunicorn with two uvicorn workers, as docker-compose runs the web; its output kept in a file."""
    port = _free_port()
    out = tempfile.NamedTemporaryFile(prefix="metrics-web-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2",
            "--worker-class", "uvicorn_worker.UvicornWorker", "portal.asgi:application",
        ],
        env={**os.environ, **shared_env},
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, Path(out.name).read_text()[-3000:]
        try:
            return requests.get(f"{base}/healthz", timeout=5).status_code == 200
        except requests.RequestException:  # not listening yet, or still loading Django
            return False

    wait_for(up, timeout=60, what="the web server")
    yield base, lambda: Path(out.name).read_text(errors="replace")
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
    out.close()
    os.unlink(out.name)


def _json_lines(text: str) -> list[dict]:
    lines = []
    for line in text.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict):
            lines.append(doc)
    return lines


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_sync_shows_in_one_scrape_and_carries_one_request_id_through_web_worker_and_audit(
    workers, web, shared_env, make_sim, register, sim_app, admin_user, client, settings
):
    from apps.audit import checkpoints

    base, web_output = web
    worker = workers.start(env=shared_env)
    sim = make_sim(name="sim-metrics", sync_seconds=0.5)
    instance = register(sim)
    instance.token_expires_at = (timezone.now() + timedelta(days=20)).replace(microsecond=0)
    instance.save(update_fields=["token_expires_at"])
    name, _project = sim_app(sim)

    client.force_login(admin_user)  # a session in the test database, which the web server shares
    csrf = secrets.token_hex(16)
    browser = requests.Session()
    browser.cookies.set("sessionid", client.cookies["sessionid"].value)
    browser.cookies.set("csrftoken", csrf)
    answer = browser.post(
        f"{base}/applications/{instance.name}/{name}/sync/",
        data={"nonce": secrets.token_hex(16), "strategy": "hook", "backoff_duration": "5s", "backoff_factor": "2",
              "backoff_max_duration": "3m"},
        headers={"X-CSRFToken": csrf, "X-Request-ID": REQUEST_ID, "HX-Request": "true"},
        timeout=30,
    )  # fmt: skip
    assert answer.status_code == 200, answer.text[:2000]
    assert answer.headers["X-Request-ID"] == REQUEST_ID
    op = Operation.objects.get(kind="sync", instance=instance, target=name)
    wait_for(lambda: Operation.objects.get(pk=op.pk).state in Operation.FINAL_STATES, timeout=60, what="the sync")
    assert Operation.objects.get(pk=op.pk).state == Operation.State.SUCCEEDED
    settings.AUDIT_CHECKPOINT_FILE = Path(shared_env["AUDIT_CHECKPOINT_FILE"])  # the file the web reads
    checkpoints.write()

    # The request id: the web's lines, the worker's lines and the operation's audit events.
    web_lines = [d for d in _json_lines(web_output()) if d.get("request_id") == REQUEST_ID]
    assert any(f"operation {op.pk} queued" in d["message"] for d in web_lines), web_output()[-3000:]
    assert any(d.get("logger") == "portal.request" and d.get("view") == "applications:sync" for d in web_lines)
    worker_lines = [d for d in _json_lines(workers.output(worker)) if d.get("request_id") == REQUEST_ID]
    assert any(f"operation {op.pk} running" in d["message"] for d in worker_lines), workers.output(worker)[-3000:]
    events = list(AuditEvent.objects.filter(operation_id=op.pk).order_by("id"))
    assert {e.outcome for e in events} >= {"started", "succeeded"}
    assert [e.request.get("request_id") for e in events] == [REQUEST_ID] * len(events)

    # One scrape: without the token refused, with it the numbers of every process.
    assert requests.get(f"{base}/metrics", timeout=10).status_code == 403
    scrape = requests.get(f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert scrape.status_code == 200
    found = _samples(scrape.text)

    def value(metric: str, **labels) -> float | None:
        return found.get((metric, tuple(sorted(labels.items()))))

    assert value("portal_http_request_seconds_count", view="applications:sync", method="POST", status="200") == 1
    # The web read the application before starting; the worker asked Argo CD to sync (POST), then followed it.
    assert value("portal_argocd_request_seconds_count", instance=instance.name, method="GET",
                 endpoint="/api/v1/applications/{}") >= 1  # fmt: skip
    assert value("portal_argocd_request_seconds_count", instance=instance.name, method="POST",
                 endpoint="/api/v1/applications/{}/sync") == 1  # fmt: skip
    assert not [
        k for k in found if k[0].startswith("portal_argocd") and ("endpoint", f"/api/v1/applications/{name}") in k[1]
    ]
    assert value("portal_operations", kind="sync", state="succeeded") == 1
    assert value("portal_operation_duration_seconds_count", kind="sync", state="succeeded") == 1
    assert 0 <= value("portal_audit_checkpoint_age_seconds") < 600
    assert value("portal_instance_token_expiry_timestamp_seconds", instance=instance.name) == (
        instance.token_expires_at.timestamp()
    )
    assert value("portal_celery_queue_length", queue="celery") == 0

"""/metrics: who may scrape it, and what a scrape shows (events of this process, state from the database)."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

TOKEN = "scrape-token-0123456789"
AUTH = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: dict, name: str, **labels) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_CIDRS = []
    return TOKEN


@pytest.mark.django_db
def test_metrics_are_closed_when_neither_a_token_nor_networks_are_set(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_CIDRS = "", []
    response = client.get("/metrics")
    assert response.status_code == 403
    assert b"portal_" not in response.content


@pytest.mark.django_db
def test_a_scrape_without_the_token_or_with_a_wrong_one_is_refused_and_not_audited(client, token):
    from apps.audit.models import AuditEvent

    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token").status_code == 403
    # Not a portal user: a scraper is a monitoring system, and a misconfigured one would fill the log.
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_a_scrape_with_the_token_answers_prometheus_text(client, token):
    response = client.get("/metrics", **AUTH)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert "portal_metrics_part_failed" in {f.name for f in text_string_to_metric_families(response.content.decode())}


@pytest.mark.django_db
def test_a_scrape_from_an_allowed_network_needs_no_token_and_others_are_refused(client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_CIDRS = [ipaddress.ip_network("10.1.0.0/16")]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.2.0.1").status_code == 403


@pytest.mark.django_db
def test_with_token_and_networks_both_must_pass(client, token, settings):
    settings.METRICS_ALLOWED_CIDRS = [ipaddress.ip_network("10.1.0.0/16")]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3", **AUTH).status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.9.9.9", **AUTH).status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 403


@pytest.mark.django_db
def test_request_latency_is_counted_by_view_name_not_by_path(admin_client, token):
    before = value(samples(admin_client.get("/metrics", **AUTH).content.decode()), "portal_http_request_seconds_count",
                   view="audit:list", method="GET", status="200") or 0  # fmt: skip
    assert admin_client.get("/audit/").status_code == 200
    found = samples(admin_client.get("/metrics", **AUTH).content.decode())
    assert (
        value(found, "portal_http_request_seconds_count", view="audit:list", method="GET", status="200") == before + 1
    )
    assert not [k for k in found if k[0].startswith("portal_http_request") and ("view", "/audit/") in k[1]]


@pytest.mark.django_db
def test_state_gauges_show_operations_index_lag_checkpoint_age_and_token_expiry(client, token, settings, tmp_path):
    from apps.audit import checkpoints
    from apps.index.models import IndexState
    from apps.instances.models import Instance
    from apps.operations.models import Operation

    settings.AUDIT_CHECKPOINT_FILE = tmp_path / "checkpoints.jsonl"
    now = timezone.now()
    expires = (now + timedelta(days=30)).replace(microsecond=0)
    prod = Instance.objects.create(name="prod", url="https://argocd.example", token="t", token_expires_at=expires)
    IndexState.objects.create(instance=prod, last_event_at=now - timedelta(seconds=120), connected=True)
    for state, took in (("succeeded", 4), ("succeeded", 6), ("failed", 1), ("queued", None)):
        Operation.objects.create(
            kind="sync", instance=prod, state=state,
            started_at=now - timedelta(seconds=took) if took else None, finished_at=now if took else None,
        )  # fmt: skip
    checkpoints.write()

    found = samples(client.get("/metrics", **AUTH).content.decode())

    assert value(found, "portal_operations", kind="sync", state="succeeded") == 2
    assert value(found, "portal_operations", kind="sync", state="queued") == 1
    assert value(found, "portal_operation_duration_seconds_count", kind="sync", state="succeeded") == 2
    assert value(found, "portal_operation_duration_seconds_sum", kind="sync", state="succeeded") == pytest.approx(10)
    assert value(found, "portal_index_lag_seconds", instance="prod") >= 120
    assert value(found, "portal_index_connected", instance="prod") == 1
    assert value(found, "portal_index_last_event_timestamp_seconds", instance="prod") == pytest.approx(
        (now - timedelta(seconds=120)).timestamp()
    )
    assert 0 <= value(found, "portal_audit_checkpoint_age_seconds") < 600
    assert value(found, "portal_instance_token_expiry_timestamp_seconds", instance="prod") == expires.timestamp()
    assert value(found, "portal_celery_queue_length", queue="celery") is not None
    assert {k[1]: v for k, v in found.items() if k[0] == "portal_metrics_part_failed"} == {
        (("part", p),): 0 for p in ("operations", "queue", "index", "checkpoint", "instances")
    }


@pytest.mark.django_db
def test_a_checkpoint_file_that_does_not_verify_is_a_failed_part_not_a_500(client, token, settings, tmp_path):
    settings.AUDIT_CHECKPOINT_FILE = tmp_path / "checkpoints.jsonl"
    settings.AUDIT_CHECKPOINT_FILE.write_text('{"id": 1, "hash": "x", "at": "2026-01-01T00:00:00+00:00", "mac": "f"}\n')
    response = client.get("/metrics", **AUTH)
    assert response.status_code == 200
    assert value(samples(response.content.decode()), "portal_metrics_part_failed", part="checkpoint") == 1


def test_argocd_endpoints_are_labelled_by_route_template():
    from apps.argocd._metrics import endpoint

    assert endpoint("/api/v1/applications/guestbook/sync") == "/api/v1/applications/{}/sync"
    assert endpoint("/api/v1/repositories/https%3A%2F%2Fgit.example%2Fa.git/apps") == "/api/v1/repositories/{}/apps"
    assert endpoint("/api/v1/projects/p/roles/ci/token/1700000000") == "/api/v1/projects/{}/roles/{}/token/{}"
    assert endpoint("/api/version") == "/api/version"


def test_a_request_id_is_taken_when_well_formed_and_made_otherwise(client):
    given = client.get("/healthz", HTTP_X_REQUEST_ID="abc-123.def")
    assert given["X-Request-ID"] == "abc-123.def"
    for bad in ("has space", "x" * 200, "new\nline"):
        made = client.get("/healthz", HTTP_X_REQUEST_ID=bad)["X-Request-ID"]
        assert made != bad and len(made) == 32

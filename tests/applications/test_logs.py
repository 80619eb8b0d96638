"""The log viewer: several pods at once, prefixed and merged by time, Argo CD's filters, timestamps, the
download, and the same `logs` permission (refusals audited) for every way of reading."""

from __future__ import annotations

from unittest.mock import ANY

import pytest
from django.urls import reverse
from django.utils.html import escape

from apps.audit.models import AuditEvent

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}
APP = "payments-api-dev"


def shown(body: str) -> list[str]:
    """The lines of the logs pane."""
    return body.split('id="logs">', 1)[1].split("</pre>", 1)[0].splitlines()


def u(view, instance, name=APP):
    return reverse(f"applications:{view}", args=[instance.name, name])


@pytest.fixture(scope="module")
def pods(argocd):
    return [n["name"] for n in argocd.get_resource_tree(APP)["nodes"] if n["kind"] == "Pod"]


def test_two_pods_are_read_at_once_each_line_prefixed_by_its_pod(admin_client, instance, pods):
    assert len(pods) >= 2
    query = f"?tab=logs&pod={pods[0]}&pod={pods[1]}&tail=3"
    body = admin_client.get(u("detail", instance) + query, **HX).content.decode()
    assert "<html" not in body
    for pod in pods[:2]:
        assert f'<option value="{pod}" selected>' in body
        assert body.count(f'<span class="log-src">{pod}</span>') == 3
    assert "2 sources" in body


def test_filter_with_match_case_and_timestamps_go_to_argo_cd(admin_client, instance, pods):
    base = u("detail", instance) + f"?tab=logs&pod={pods[0]}&tail=500&timestamps=1"
    body = admin_client.get(base + "&filter=level%3Derror", **HX).content.decode()
    lines = shown(body)
    assert lines and all("level=error" in line for line in lines)
    assert all(line.startswith('<span class="log-ts">20') for line in lines)
    upper = admin_client.get(base + "&filter=LEVEL%3DERROR&match_case=1", **HX).content.decode()
    assert shown(upper) == ["(no log lines)"]
    excluded = shown(admin_client.get(base + "&filter=%21level%3Derror", **HX).content.decode())
    assert not [line for line in excluded if "level=error" in line] and [
        line for line in excluded if "level=info" in line
    ]


def test_wrap_and_follow_keep_the_selection_for_the_live_stream(admin_client, instance, pods):
    query = f"?tab=logs&pod={pods[0]}&pod={pods[1]}&tail=5&wrap=1&follow=1&since=300"
    body = admin_client.get(u("detail", instance) + query, **HX).content.decode()
    assert 'class="code logs wrap" id="logs-live"' in body and 'data-prefix="1"' in body
    src = escape(f"{u('log_stream', instance)}?pod={pods[0]}&pod={pods[1]}&tail=5&since=300")
    assert f'data-src="{src}"' in body


def test_download_is_a_text_attachment_of_the_chosen_pods(admin_client, instance, argocd, pods):
    response = admin_client.get(u("log_download", instance) + f"?pod={pods[0]}&pod={pods[1]}&tail=4&timestamps=1")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"].startswith(f'attachment; filename="sim-test-{APP}-logs-')
    lines = response.content.decode().splitlines()
    assert len(lines) == 8 and {line.split(" ", 1)[0] for line in lines} == set(pods[:2])
    times = [line.split(" ", 2)[1] for line in lines]
    assert times == sorted(times)  # merged by time
    newest = [e["content"] for e in argocd.application_logs(APP, kind="Pod", resource_name=pods[0], tail_lines=4)]
    assert any(line.endswith(newest[-1]) for line in lines)


def test_a_container_no_chosen_pod_has_is_said(admin_client, instance, pods):
    body = admin_client.get(u("detail", instance) + f"?tab=logs&pod={pods[0]}&container=nope", **HX).content.decode()
    assert "None of the chosen pods has the chosen containers" in body


def test_download_needs_the_logs_permission_and_a_refusal_is_audited(client, alice, grant, instance, pods):
    grant(alice, ["view"], project="payments")
    client.force_login(alice)
    response = client.get(u("log_download", instance) + f"?pod={pods[0]}")
    assert response.status_code == 403
    event = AuditEvent.objects.get(action="logs")
    assert (event.outcome, event.actor, event.name, event.error) == ("denied", "alice", APP, "not granted")
    assert event.request == {"request_id": ANY} or "request_id" in (event.request or {})

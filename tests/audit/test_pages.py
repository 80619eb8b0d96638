"""The audit pages: filtered list with keyset pages and HTMX partials, detail with diff, exports."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta
from unittest.mock import ANY

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.audit.service import Outcome
from tests.audit.personas import event

pytestmark = pytest.mark.django_db


def ids_in(response) -> list[int]:
    return [int(i) for i in re.findall(r'<td><a href="/audit/(\d+)/">', response.content.decode())]


def export_rows(response) -> list[dict]:
    body = b"".join(response.streaming_content).decode()
    if response["Content-Type"].startswith("text/csv"):
        return list(csv.DictReader(io.StringIO(body)))
    return [json.loads(line) for line in body.splitlines()]


def test_list_shows_newest_first_in_pages_of_fifty_continued_by_id(admin_client):
    for i in range(120):
        event(name=f"app-{i}")
    made = list(AuditEvent.objects.values_list("id", flat=True))  # with the admin's login event
    assert len(made) == 121
    first = admin_client.get("/audit/")
    assert first.status_code == 200
    assert ids_in(first) == sorted(made, reverse=True)[:50]
    older = re.search(r'href="/audit/\?before=(\d+)"', first.content.decode())
    assert older and int(older.group(1)) == ids_in(first)[-1]
    second = admin_client.get(f"/audit/?before={older.group(1)}")
    assert ids_in(second) == sorted(made, reverse=True)[50:100]
    third = admin_client.get(f"/audit/?before={ids_in(second)[-1]}")
    assert ids_in(third) == sorted(made, reverse=True)[100:]
    assert len(ids_in(third)) == 21
    assert "before=" not in third.content.decode().split('aria-label="Pages"')[1]
    assert "« Newest" in third.content.decode()


def test_filters_select_by_each_column(admin_client):
    a = event(actor="dora", instance="prod", kind="application", project="payments", name="pay-api", action="sync")
    b = event(actor="ed", instance="stage", kind="cluster", name="in-cluster", action="edit", outcome=Outcome.FAILED,
              error="cluster unreachable", team="platform,search")  # fmt: skip
    c = event(actor="dora", instance="stage", kind="application", project="web", name="web-ui", action="rollback",
              payload={"revision": "abc123", "note": "hotfix-77"})  # fmt: skip
    cases = {
        "actor=dora": {a.id, c.id},
        "instance=stage": {b.id, c.id},
        "kind=cluster": {b.id},
        "name=pay-api": {a.id},
        "action=rollback": {c.id},
        "outcome=failed": {b.id},
        "team=search": {b.id},
        "team=sear": set(),
        "q=unreachable": {b.id},
        "q=hotfix-77": {c.id},
        "q=DORA": {a.id, c.id},
        "q=100%25": set(),
        "actor=dora&instance=stage": {c.id},
    }
    for query, expected in cases.items():
        assert set(ids_in(admin_client.get(f"/audit/?{query}"))) == expected, query


def test_time_range_filters_by_date_or_minute(admin_client):
    e = event(name="now")
    today = timezone.now().date()
    assert ids_in(admin_client.get(f"/audit/?name=now&from={today}&to={today}")) == [e.id]
    assert ids_in(admin_client.get(f"/audit/?to={today - timedelta(days=1)}")) == []
    later = (timezone.now() + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")
    assert ids_in(admin_client.get(f"/audit/?from={later}")) == []
    assert ids_in(admin_client.get(f"/audit/?name=now&to={later}")) == [e.id]
    earlier = (e.at - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
    assert ids_in(admin_client.get(f"/audit/?name=now&to={earlier}")) == []


def test_a_bad_date_is_explained_and_ignored(admin_client):
    e = event(name="x")
    response = admin_client.get("/audit/?name=x&from=yesterday-ish")
    assert response.status_code == 200
    assert "is not a date or time" in response.content.decode()
    assert ids_in(response) == [e.id]


def test_filter_form_swaps_only_the_rows_and_pushes_the_url(admin_client):
    page = admin_client.get("/audit/").content.decode()
    assert 'hx-get="/audit/"' in page and 'hx-push-url="true"' in page and 'hx-target="#audit-rows"' in page
    assert '<form method="get" action="/audit/"' in page  # still works without JavaScript
    event(name="pay-api")
    partial = admin_client.get("/audit/?name=pay-api", headers={"HX-Request": "true"})
    body = partial.content.decode()
    assert partial.status_code == 200
    assert "<html" not in body and "<form" not in body
    assert body.lstrip().startswith('<section id="audit-rows">')
    assert "pay-api" in body
    assert 'href="/audit/export.csv?name=pay-api"' in body  # the export links follow the filters


def test_page_links_keep_the_filters_and_a_real_href(admin_client):
    for i in range(55):
        event(name="busy", actor=f"u{i % 2}")
    body = admin_client.get("/audit/?name=busy&actor=u1", headers={"HX-Request": "true"}).content.decode()
    assert len(ids_in_text(body)) == 27
    body = admin_client.get("/audit/?name=busy").content.decode()
    link = re.search(r'<a href="(/audit/\?[^"]*before=\d+)" rel="next"\s+hx-get="([^"]+)"', body)
    assert link and link.group(1) == link.group(2)
    assert "name=busy" in link.group(1)


def ids_in_text(body: str) -> list[str]:
    return re.findall(r'<td><a href="/audit/(\d+)/">', body)


def test_detail_shows_every_field_payload_diff_operation_and_hashes(admin_client):
    e = event(
        actor="dora", instance="prod", kind="application", project="payments", namespace="argocd", name="pay-api",
        action="edit", payload={"spec": {"replicas": 3}, "password": "hunter2"}, operation_id=42,
        before={"spec": {"replicas": 2, "image": "nginx:1.25"}}, after={"spec": {"replicas": 3, "image": "nginx:1.25"}},
    )  # fmt: skip
    response = admin_client.get(f"/audit/{e.id}/")
    body = response.content.decode()
    assert response.status_code == 200
    for text in ("dora", "prod", "payments", "argocd", "pay-api", "edit", e.hash, e.prev_hash):
        assert text in body
    assert '<a href="/operations/42/">' in body
    assert "<td>-    &quot;replicas&quot;: 2</td>" in body
    assert "<td>+    &quot;replicas&quot;: 3</td>" in body
    assert "hunter2" not in body and "&quot;password&quot;: &quot;***&quot;" in body


def test_detail_escapes_what_it_shows(admin_client):
    e = event(name="<script>alert(1)</script>", before={"x": "<b>"}, after={"x": "<i>"}, error="<img src=x>")
    body = admin_client.get(f"/audit/{e.id}/").content.decode()
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;" in body
    assert "<img src=x>" not in body and "<b>" not in body


def test_detail_of_a_missing_event_is_404(admin_client):
    assert admin_client.get("/audit/999999999/").status_code == 404


def test_exports_stream_the_filtered_set_as_csv_and_json_lines(admin_client):
    keep = [event(instance="prod", name=f"a{i}", payload={"token": "t0ps3cret", "n": i}) for i in range(3)]
    event(instance="stage", name="other")
    for url in ("/audit/export.csv?instance=prod", "/audit/export.jsonl?instance=prod"):
        response = admin_client.get(url)
        assert response.status_code == 200
        assert response.streaming
        assert "attachment;" in response["Content-Disposition"]
        rows = export_rows(response)
        assert [int(r["id"]) for r in rows] == [e.id for e in reversed(keep)]
        assert {r["instance"] for r in rows} == {"prod"}
        assert rows[0]["hash"] == keep[-1].hash
        request = rows[0]["request"] if isinstance(rows[0]["request"], dict) else json.loads(rows[0]["request"])
        assert request == {"n": 2, "token": "***"}


def test_export_walks_in_keyset_batches_across_many_events(admin_client):
    from apps.audit import queries

    for i in range(25):
        event(name=f"e{i}")
    rows = list(queries.iterate(AuditEvent.objects.exclude(kind="session"), ("id", "name"), batch=10))
    assert [r["name"] for r in rows] == [f"e{i}" for i in reversed(range(25))]


def test_csv_export_defuses_spreadsheet_formulas(admin_client):
    event(actor='=HYPERLINK("http://evil")', action="login", outcome=Outcome.FAILED)
    rows = export_rows(admin_client.get("/audit/export.csv"))
    assert rows[0]["actor"].startswith("'=")


def test_a_non_ascii_digit_cursor_is_ignored_not_a_server_error(admin_client):
    assert admin_client.get("/audit/?before=²").status_code == 200


def test_an_export_is_audited_with_its_filters_and_leaves_itself_out(admin_client):
    kept = event(instance="prod", name="pay-api")
    rows = export_rows(admin_client.get("/audit/export.jsonl?instance=prod"))
    assert [int(r["id"]) for r in rows] == [kept.id]
    audit = AuditEvent.objects.get(action="export")
    assert audit.actor == "root" and audit.kind == "audit" and audit.outcome == Outcome.SUCCEEDED
    assert audit.request == {"format": "jsonl", "filters": "instance=prod", "through_id": kept.id, "request_id": ANY}
    everything = export_rows(admin_client.get("/audit/export.csv"))
    assert int(everything[0]["id"]) == audit.id  # the first export shows in the next one, not in itself


def test_the_name_column_names_an_app_the_same_way_with_or_without_its_namespace(admin_client):
    event(actor="dora", instance="prod", kind="application", namespace="argocd", name="pay-api")
    event(actor="dora", instance="prod", kind="application", name="pay-api", action="refresh")
    body = admin_client.get("/audit/").content.decode()
    assert "argocd/pay-api" not in body
    assert '<td title="namespace argocd">pay-api</td>' in body and "<td>pay-api</td>" in body

"""A filter holding a character the database cannot take (NUL) gets a message in the page, never a 500."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.index.models import ApplicationSummary
from apps.instances.models import Instance
from tests.audit.personas import event

NOTE = "holds a NUL character, which the database cannot store"

PAGES = [
    ("/applications/", "q"),
    ("/applications/", "project"),
    ("/applications/", "sync"),
    ("/applications/", "health"),
    ("/audit/", "q"),
    ("/audit/", "actor"),
    ("/audit/", "team"),
    ("/audit/", "name"),
    ("/operations/", "user"),
    ("/operations/", "instance"),
    ("/operations/", "state"),
]


@pytest.mark.parametrize(("url", "param"), PAGES)
@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
def test_a_nul_in_a_filter_is_explained_in_the_page_not_a_500(admin_client, url, param, htmx):
    headers = {"HX-Request": "true"} if htmx else {}
    response = admin_client.get(url, {param: "pay\x00ments"}, headers=headers)
    assert response.status_code == 200
    body = response.content.decode()
    assert f"The “{param}” filter {NOTE}; it was searched for as “pay\\u0000ments”." in body
    assert ("<html" in body) is not htmx


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_an_audit_export_with_a_nul_filter_streams_instead_of_failing(admin_client, fmt):
    event(actor="dave", instance="prod", kind="application", project="p", name="odd\\u0000name")
    event(actor="dave", instance="prod", kind="application", project="p", name="plain")
    response = admin_client.get(f"/audit/export.{fmt}", {"q": "odd\x00name"})
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    assert "odd\\\\u0000name" in body or "odd\\u0000name" in body
    assert "plain" not in body


def test_the_audit_log_finds_an_event_stored_with_an_escaped_nul_by_the_raw_character(admin_client):
    event(actor="dave", instance="prod", kind="application", project="p", name="odd\\u0000name")
    event(actor="dave", instance="prod", kind="application", project="p", name="plain")
    response = admin_client.get("/audit/", {"q": "odd\x00name"})
    assert [e.name for e in response.context["rows"]] == ["odd\\u0000name"]


def test_the_application_list_finds_an_app_indexed_with_an_escaped_nul(admin_client, sim):
    instance = Instance.objects.create(name="nul-list", url=sim.url, token=sim.portal_token())
    ApplicationSummary.objects.create(
        instance=instance, name="odd", path="a\\u0000b", project="default", seen_at="2026-01-01T00:00Z"
    )
    ApplicationSummary.objects.create(
        instance=instance, name="plain", path="ab", project="default", seen_at="2026-01-01T00:00Z"
    )
    response = admin_client.get("/applications/", {"q": "a\x00b"})
    assert [r["name"] for r in response.context["result"].rows] == ["odd"]


@pytest.mark.parametrize(("kind", "param"), [("certificates", "hostNamePattern"), ("gpgkeys", "keyID")])
def test_kind_lists_take_a_nul_in_their_filters_without_a_500(admin_client, sim, kind, param):
    Instance.objects.create(name="nul-kinds", url=sim.url, token=sim.portal_token())
    response = admin_client.get(f"/kinds/{kind}/", {param: "x\x00y", "instance": "nul\x00kinds"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "url", ["/instances/x%00/", "/instances/x%00/edit/", "/applications/x%00/y/", "/kinds/projects/x%00/y/"]
)
def test_an_address_naming_an_object_with_a_nul_is_not_found_not_a_500(admin_client, url):
    response = admin_client.get(url)
    assert response.status_code == 404
    assert "<html" in response.content.decode()


def test_a_bulk_sync_naming_an_app_with_a_nul_is_refused_and_audited_not_a_500(admin_client, sim):
    Instance.objects.create(name="nul-bulk", url=sim.url, token=sim.portal_token())
    response = admin_client.post("/operations/bulk-sync/", {"app": ["nul-bulk/a\x00b"]})
    assert response.status_code == 403  # refused: no such application
    assert "nul-bulk/a\\u0000b" in response.content.decode()
    assert AuditEvent.objects.filter(action="sync", outcome="denied", instance="nul-bulk", name="a\\u0000b").exists()

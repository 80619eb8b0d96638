"""A member of team payments cannot read the audit events of team search's applications."""

from __future__ import annotations

import pytest

from tests.audit.test_pages import export_rows, ids_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_client(client, alice, teams):
    client.force_login(alice)
    return client


@pytest.mark.parametrize(
    "query",
    [
        "",
        "instance=prod",
        "name=search-web",
        "kind=application&name=search-web",
        "team=search",
        "q=search-web",
        "actor=system",
        "outcome=succeeded&action=sync",
    ],
)
def test_filters_never_reveal_other_teams_events(alice_client, events, query):
    shown = set(ids_in(alice_client.get(f"/audit/?{query}")))
    hidden = {events[k].id for k in ("search_app", "search_other", "prod_cluster", "stage_repo", "team_change")}
    assert not shown & hidden


def test_guessing_the_id_of_another_teams_event_is_404(alice_client, events):
    for label in ("search_app", "search_other", "prod_cluster", "stage_app", "team_change"):
        assert alice_client.get(f"/audit/{events[label].id}/").status_code == 404, label
    assert alice_client.get(f"/audit/{events['pay_app'].id}/").status_code == 200


def test_the_htmx_partial_applies_the_same_rule(alice_client, events):
    body = alice_client.get("/audit/?name=search-web", headers={"HX-Request": "true"})
    assert ids_in(body) == []
    rows = body.content.decode().split("<tbody>")[1]
    assert "search-web" not in rows and "No audit events match" in rows


def test_exports_never_contain_other_teams_events(alice_client, events):
    for url in ("/audit/export.csv?q=search", "/audit/export.jsonl?instance=prod"):
        names = {r["name"] for r in export_rows(alice_client.get(url))}
        assert not names & {"search-web", "in-cluster"}, url


def test_anonymous_visitors_are_sent_to_log_in(client, events):
    for url in ("/audit/", f"/audit/{events['pay_app'].id}/", "/audit/export.csv", "/audit/export.jsonl"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), url

"""The list at scale: counts tables kept by triggers, grants applied to them, facets, keyset pages, approximate
counts above the cap, favourites, per-row actions, tiles and summary views."""

from __future__ import annotations

import re
from collections import Counter
from unittest import mock

import pytest
from django.db.models import Q, Sum

from apps.audit.models import AuditEvent
from apps.index import query, summary
from apps.index.models import AppCount, AppFacetCount, ApplicationSummary, Favourite

from .conftest import grant, index_now, register

URL = "/applications/"


def keys(response) -> list[str]:
    return re.findall(r'name="app" value="([^"]+)"', response.content.decode())


@pytest.fixture
def big(db, make_sim):
    """Two instances of 80 apps each (three projects): several pages, every status."""
    instances = [register(make_sim(apps=80, projects=3, seed=s), name) for s, name in ((5, "east"), (6, "west"))]
    for instance in instances:
        index_now(instance)
    return instances


def table_counts() -> tuple[Counter, Counter]:
    rows = Counter()
    facets = Counter()
    for r in ApplicationSummary.objects.all():
        rows[(r.instance_id, r.project, r.health_status, r.sync_status, r.auto_sync)] += 1
        for dim, value in (("cluster", r.cluster), ("namespace", r.dest_namespace), ("repo", r.repo)):
            facets[(r.instance_id, r.project, dim, value)] += 1
        for k, v in r.labels.items():
            facets[(r.instance_id, r.project, "label", f"{k}={v}")] += 1
    return rows, facets


def kept_counts() -> tuple[Counter, Counter]:
    rows = Counter(
        {
            (c.instance_id, c.project, c.health_status, c.sync_status, c.auto_sync): c.n
            for c in AppCount.objects.filter(n__gt=0)
        }
    )
    facets = Counter({(c.instance_id, c.project, c.dim, c.value): c.n for c in AppFacetCount.objects.filter(n__gt=0)})
    return rows, facets


def test_the_counts_tables_follow_every_insert_update_and_delete(big):
    assert kept_counts() == table_counts() and AppCount.objects.aggregate(n=Sum("n"))["n"] == 160
    ApplicationSummary.objects.filter(name__contains="api").update(health_status="Degraded", auto_sync=True)
    ApplicationSummary.objects.filter(name__contains="web").update(labels={"team": "x"}, cluster="elsewhere")
    ApplicationSummary.objects.filter(name__contains="worker").delete()
    assert kept_counts() == table_counts()
    index_now(big[0])  # a resync writes the changed rows back from Argo CD and re-adds the deleted ones
    assert kept_counts() == table_counts()
    big[1].delete()  # the instance's rows go with it, and so do their counts
    assert kept_counts() == table_counts() and AppCount.objects.aggregate(n=Sum("n"))["n"] == 80


def expected_facet(rows, column: str) -> dict[str, int]:
    out: Counter = Counter()
    for r in rows:
        value = getattr(r, column)
        out[value or "Unknown" if column in ("health_status", "sync_status") else value] += 1
    return dict(out)


def test_facets_count_exactly_and_ignore_their_own_selection(admin_client, big):
    response = admin_client.get(URL + "?health=Degraded&health=Missing&project=payments")
    result = response.context["result"]
    assert result.exact_counts and not result.approximate
    chosen = ApplicationSummary.objects.filter(health_status__in=["Degraded", "Missing"], project="payments")
    assert result.total == chosen.count() > 0
    assert {k.split("/")[1] for k in keys(response)} == set(chosen.values_list("name", flat=True)[:50]) or len(
        keys(response)
    ) == 50
    # health counts ignore the health selection (so another status can be added), project counts ignore project
    payments = ApplicationSummary.objects.filter(project="payments")
    assert dict(result.facets["health"]) == expected_facet(payments, "health_status")
    failing = ApplicationSummary.objects.filter(health_status__in=["Degraded", "Missing"])
    assert dict(result.facets["project"]) == expected_facet(failing, "project")
    assert dict(result.facets["instance"]) == {
        name: chosen.filter(instance__name=name).count()
        for name in ("east", "west")
        if chosen.filter(instance__name=name)
    }
    labels = Counter(f"{k}={v}" for r in chosen for k, v in r.labels.items())
    assert (
        dict(result.facets["label"]) == dict(labels.most_common(query.FACET_LIMIT)) or len(labels) > query.FACET_LIMIT
    )
    body = response.content.decode()
    assert 'role="checkbox" aria-checked="true"' in body and "health=Degraded" in body


def test_secondary_facets_filter_and_count_like_the_rows(admin_client, big):
    cluster = ApplicationSummary.objects.values_list("cluster", flat=True).first()
    response = admin_client.get(URL, {"cluster": cluster, "label": "env=prod", "auto": "on"})
    result = response.context["result"]
    chosen = ApplicationSummary.objects.filter(cluster=cluster, labels__contains={"env": "prod"}, auto_sync=True)
    assert result.total == chosen.count()
    assert sorted(keys(response)) == sorted(f"{r.instance.name}/{r.name}" for r in chosen)[:50] or result.total > 50
    others = ApplicationSummary.objects.filter(labels__contains={"env": "prod"}, auto_sync=True)
    assert dict(result.facets["cluster"]) == Counter(others.values_list("cluster", flat=True))


def test_grants_on_instances_and_projects_are_applied_to_the_counts_tables(client, alice, big):
    grant(alice, "payments", instance="east", project="payments")
    client.force_login(alice)
    result = client.get(URL).context["result"]
    mine = ApplicationSummary.objects.filter(instance__name="east", project="payments")
    assert result.exact_counts and result.total == mine.count() > 0
    assert dict(result.facets["project"]) == {"payments": mine.count()}
    assert dict(result.facets["instance"]) == {"east": mine.count()}
    assert dict(result.health_counts) == expected_facet(mine, "health_status")
    assert summary.counts_by_instance(alice) == {
        "east": {
            "total": mine.count(),
            "health": expected_facet(mine, "health_status"),
            "sync": expected_facet(mine, "sync_status"),
        }
    }


def test_an_application_glob_grant_counts_from_the_rows_exactly(client, alice, big):
    grant(alice, "payments", app="*api*")
    client.force_login(alice)
    response = client.get(URL + "?sync=OutOfSync")
    result = response.context["result"]
    mine = ApplicationSummary.objects.filter(name__contains="api", sync_status="OutOfSync")
    assert not result.exact_counts and not result.approximate
    assert result.total == mine.count() > 0
    assert dict(result.facets["sync"]) == expected_facet(
        ApplicationSummary.objects.filter(name__contains="api"), "sync_status"
    )
    assert all("api" in k.split("/")[1] for k in keys(response))


def test_counts_above_the_cap_are_marked_approximate_and_the_rows_stay_exact(admin_client, big):
    with mock.patch.object(query, "COUNT_CAP", 20):
        response = admin_client.get(URL + "?q=a")
    result = response.context["result"]
    body = response.content.decode()
    assert result.approximate and "More than 20 applications" in body and "Counts are approximate" in body
    text = Q(name__icontains="a") | Q(repo__icontains="a") | Q(path__icontains="a")
    matching = ApplicationSummary.objects.filter(text).order_by("name", "namespace", "instance_id")
    assert [k.split("/")[1] for k in keys(response)] == list(matching.values_list("name", flat=True)[:50])
    assert "≥" in body  # facets say their counts are lower bounds


def walk(client, url: str) -> tuple[list[list[str]], str]:
    pages, last = [], url
    while url:
        response = client.get(url, headers={"HX-Request": "true"})
        pages.append(keys(response))
        last = url
        found = re.search(r'href="([^"]+)" rel="next"', response.content.decode())
        url = found[1].replace("&amp;", "&") if found else ""
    return pages, last


@pytest.mark.parametrize("sort", ["name", "-name", "instance", "-instance", "health", "-sync", "repo", "-synced"])
def test_keyset_pages_cover_every_row_once_both_ways(admin_client, big, sort):
    pages, last = walk(admin_client, f"{URL}?sort={sort}")
    flat = [k for p in pages for k in p]
    assert [len(p) for p in pages] == [50, 50, 50, 10]
    assert len(flat) == len(set(flat)) == 160
    assert "after=" in last and "page=4" in last
    # Back from the last page by the prev links: the same pages in reverse.
    back, url = [], last
    while url:
        response = admin_client.get(url)
        back.append(keys(response))
        found = re.search(r'href="([^"]+)" rel="prev"', response.content.decode())
        url = found[1].replace("&amp;", "&") if found else ""
    assert back == pages[::-1]
    if sort.lstrip("-") == "name":  # in the database's collation, ties broken by namespace and instance
        order = [f"{'-' if sort.startswith('-') else ''}{c}" for c in ("name", "namespace", "instance_id")]
        expected = ApplicationSummary.objects.order_by(*order).values_list("instance__name", "name")
        assert flat == [f"{i}/{n}" for i, n in expected]
    if sort == "instance":
        assert [k.split("/")[0] for k in flat] == ["east"] * 80 + ["west"] * 80


def test_a_bad_cursor_starts_at_the_first_page(admin_client, big):
    first = keys(admin_client.get(URL))
    for cursor in ("garbage", "W10", "WyJhIiwiYiIsImMiLCJkIl0"):  # not base64 json, [], ["a","b","c","d"]
        response = admin_client.get(URL, {"after": cursor})
        assert response.status_code == 200 and keys(response) == first


def test_a_member_pins_a_favourite_it_is_listed_first_and_unpins_it(client, alice, big):
    grant(alice, "payments", project="payments")
    client.force_login(alice)
    app = ApplicationSummary.objects.filter(project="payments").order_by("-name").first()
    value = f"{app.instance.name}/{app.namespace}/{app.name}"
    response = client.post("/applications/pin/", {"pin": value, "next": "/applications/?view=tiles"})
    assert response.status_code == 302 and response["Location"] == "/applications/?view=tiles"
    assert Favourite.objects.filter(user=alice, name=app.name).exists()
    page = client.get(URL)
    assert [r["name"] for r in page.context["result"].pinned] == [app.name]
    assert f'aria-label="Unpin {app.instance.name}/{app.name}"' in page.content.decode()
    client.post("/applications/pin/", {"pin": value})
    assert not Favourite.objects.filter(user=alice).exists()
    assert client.get(URL).context["result"].pinned == []


def test_pinning_an_application_outside_the_grants_is_refused_and_audited(client, alice, big):
    grant(alice, "payments", project="payments")
    client.force_login(alice)
    other = ApplicationSummary.objects.exclude(project="payments").first()
    for value in (f"{other.instance.name}/{other.namespace}/{other.name}", "nowhere/argocd/x", "garbage"):
        assert client.post("/applications/pin/", {"pin": value}).status_code == 404
    assert not Favourite.objects.exists()
    assert AuditEvent.objects.filter(outcome="denied", name="/applications/pin/").count() == 3
    assert client.get("/applications/pin/").status_code == 405


def test_per_row_sync_and_refresh_show_where_granted(client, alice, big):
    grant(alice, "viewers")
    grant(alice, "payments", project="payments", actions=["sync", "refresh"])
    client.force_login(alice)
    response = client.get(URL + "?sort=project&instance=east")
    rows = response.context["result"].rows
    assert {r["project"] for r in rows} > {"payments"}
    assert all(r["can_sync"] == r["can_refresh"] == (r["project"] == "payments") for r in rows)
    body = response.content.decode()
    payments = next(r for r in rows if r["project"] == "payments")
    assert f'href="{payments["href"]}sync/"' in body and f'formaction="{payments["href"]}refresh/"' in body
    other = next(r for r in rows if r["project"] != "payments")
    assert f'formaction="{other["href"]}refresh/"' not in body


def test_tiles_and_summary_views_keep_the_filters(admin_client, big):
    tiles = admin_client.get(URL + "?view=tiles&health=Healthy")
    body = tiles.content.decode()
    assert body.count('<article class="tile') == min(
        50, ApplicationSummary.objects.filter(health_status="Healthy").count()
    )
    assert 'data-view="summary"' in body and re.search(r'href="/applications/\?[^"]*view=summary[^"]*"', body)
    assert "Bulk actions…" in body  # tiles have checkboxes; the summary has nothing to select
    summary = admin_client.get(URL + "?view=summary&sync=OutOfSync")
    assert "Bulk actions…" not in summary.content.decode() and "Sync selected" not in summary.content.decode()
    result = summary.context["result"]
    out = ApplicationSummary.objects.filter(sync_status="OutOfSync")
    assert {name: e["total"] for name, e in result.summary["instances"].items()} == {
        name: out.filter(instance__name=name).count() for name in ("east", "west")
    }
    assert {name: e["health"] for name, e in result.summary["projects"].items()} == {
        p: expected_facet(out.filter(project=p), "health_status") for p in set(out.values_list("project", flat=True))
    }

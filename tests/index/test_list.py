"""The application list across instances: grants in the query, filters, selector, sort, pages, counts, staleness."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.utils import timezone

from apps.index.models import ApplicationSummary, IndexState
from apps.instances.models import Instance

from .conftest import grant, index_now, register

URL = "/applications/"


def names(response) -> list[str]:
    return re.findall(r'name="app" value="[^"/]+/([^"]+)"', response.content.decode())


def rows_of(response) -> list[tuple[str, str]]:
    return [tuple(v.split("/", 1)) for v in re.findall(r'name="app" value="([^"]+)"', response.content.decode())]


@pytest.fixture
def alice_client(client, alice, indexed):
    grant(alice, "payments", instance="sim-test", project="*", app="*payments*")
    client.force_login(alice)
    return client


def test_alice_sees_only_the_applications_her_grant_covers(alice_client, indexed):
    response = alice_client.get(URL)
    assert response.status_code == 200
    expected = set(
        ApplicationSummary.objects.filter(instance=indexed, name__contains="payments").values_list("name", flat=True)
    )
    assert expected and set(names(response)) == expected
    assert all(instance == "sim-test" for instance, _ in rows_of(response))


def test_bob_without_any_grant_gets_an_empty_list_not_an_error(client, bob, indexed):
    client.force_login(bob)
    response = client.get(URL)
    assert response.status_code == 200
    assert names(response) == []
    assert "you may not have been granted any yet" in response.content.decode()
    assert "Sync selected" not in response.content.decode()


def test_an_admin_sees_every_enabled_instance_and_not_a_disabled_one(admin_client, indexed, make_sim):
    other = register(make_sim(apps=4), "other")
    index_now(other)
    response = admin_client.get(URL + "?sort=instance")
    assert response.context["result"].total == ApplicationSummary.objects.count()
    assert {i for i, _ in rows_of(response)} == {"other", "sim-test"}
    Instance.objects.filter(pk=other.pk).update(enabled=False)
    response = admin_client.get(URL + "?instance=other")
    assert names(response) == [] and response.context["result"].total == 0


def test_rows_link_to_the_detail_page_and_carry_a_bulk_sync_checkbox(admin_client, indexed):
    body = admin_client.get(URL).content.decode()
    first = ApplicationSummary.objects.order_by("name").first()
    assert f'href="/applications/sim-test/{first.name}/"' in body
    assert f'value="sim-test/{first.name}"' in body
    assert 'action="/operations/bulk-sync/"' in body and "csrfmiddlewaretoken" in body
    assert "Sync selected" in body


def test_the_sync_button_shows_only_to_users_who_may_sync_something(client, alice, indexed):
    grant(alice, "payments", instance="sim-test", app="*payments*", actions=["view"])
    client.force_login(alice)
    assert "Sync selected" not in client.get(URL).content.decode()
    grant(alice, "payments", instance="sim-test", app="*payments*", actions=["sync"])
    assert "Sync selected" in client.get(URL).content.decode()


HS = ("Healthy", "Synced")


@pytest.mark.parametrize(
    ("params", "check"),
    [
        ("health=Healthy", lambda r: r.health_status == "Healthy"),
        ("sync=OutOfSync", lambda r: r.sync_status == "OutOfSync"),
        ("project=payments", lambda r: r.project == "payments"),
        ("q=checkout", lambda r: "checkout" in (r.name + r.repo + r.path).lower()),
        ("q=OVERLAYS/PROD", lambda r: "overlays/prod" in r.path.lower()),
        (
            "instance=sim-test&health=Healthy&sync=Synced",
            lambda r: (r.health_status, r.sync_status) == ("Healthy", "Synced"),
        ),
    ],
)
def test_filters_select_exactly_the_matching_rows(admin_client, indexed, params, check):
    response = admin_client.get(f"{URL}?{params}")
    expected = {r.name for r in ApplicationSummary.objects.filter(instance=indexed) if check(r)}
    assert expected, f"the seed has no row for {params}"
    assert set(names(response)) == expected
    assert response.context["result"].total == len(expected)


PAY_PROD_STAGING = {("payments", "prod"), ("payments", "staging")}


@pytest.mark.parametrize(
    ("selector", "check"),
    [
        ("team=payments", lambda lb: lb.get("team") == "payments"),
        (
            "team==payments,env in (prod,staging)",
            lambda lb: lb.get("team") == "payments" and lb.get("env") in ("prod", "staging"),
        ),
        ("team!=payments", lambda lb: lb.get("team") != "payments"),
        ("env notin (prod)", lambda lb: lb.get("env") != "prod"),
        ("sim/fail-sync", lambda lb: "sim/fail-sync" in lb),
        ("!sim/fail-sync", lambda lb: "sim/fail-sync" not in lb),
        ("app.kubernetes.io/part-of=search", lambda lb: lb.get("app.kubernetes.io/part-of") == "search"),
    ],
)
def test_the_label_selector_filters_on_labels(admin_client, indexed, selector, check):
    response = admin_client.get(URL, {"selector": selector})
    expected = {r.name for r in ApplicationSummary.objects.filter(instance=indexed) if check(r.labels)}
    assert set(names(response)) == expected
    assert response.context["result"].selector_error == ""


@pytest.mark.parametrize("selector", ["team==(", "team in ()", "bad key!=x", "team=pay ments", "a,,b", "env in (prod"])
def test_a_bad_label_selector_shows_a_message_not_a_500(admin_client, indexed, selector):
    response = admin_client.get(URL, {"selector": selector})
    assert response.status_code == 200
    assert "Label selector:" in response.content.decode()
    assert names(response) == []


def test_sorting_follows_whitelisted_columns_both_ways(admin_client, indexed):
    all_names = sorted(ApplicationSummary.objects.filter(instance=indexed).values_list("name", flat=True))
    assert names(admin_client.get(URL + "?sort=name")) == all_names[:50]
    assert names(admin_client.get(URL + "?sort=-name")) == sorted(all_names, reverse=True)[:50]
    health = [r for r in admin_client.get(URL + "?sort=-health").context["result"].rows]
    assert [r["health_status"] for r in health] == sorted((r["health_status"] for r in health), reverse=True)
    # Anything else falls back to name, never to an arbitrary column or a SQL error.
    assert names(admin_client.get(URL + "?sort=labels__x;drop")) == all_names[:50]


def test_pages_hold_fifty_rows_and_an_out_of_range_page_shows_the_last(admin_client, make_sim):
    big = register(make_sim(apps=120, projects=3), "big")
    index_now(big)
    first = admin_client.get(URL)
    second = admin_client.get(URL + "?page=2")
    last = admin_client.get(URL + "?page=99")
    assert len(names(first)) == 50 and len(names(second)) == 50 and len(names(last)) == 20
    assert not set(names(first)) & set(names(second))
    assert first.context["result"].pages == 3 and last.context["result"].page == 3
    assert 'rel="next"' in first.content.decode() and "page=2" in first.content.decode()
    assert admin_client.get(URL + "?page=abc").status_code == 200


def test_counts_per_health_and_sync_cover_the_filtered_set(admin_client, indexed):
    response = admin_client.get(URL + "?project=payments")
    result = response.context["result"]
    rows = ApplicationSummary.objects.filter(instance=indexed, project="payments")
    health: dict[str, int] = {}
    sync: dict[str, int] = {}
    for r in rows:
        health[r.health_status] = health.get(r.health_status, 0) + 1
        sync[r.sync_status] = sync.get(r.sync_status, 0) + 1
    assert dict(result.health_counts) == health
    assert dict(result.sync_counts) == sync
    assert result.total == rows.count() == sum(health.values())
    body = response.content.decode()
    for status, n in health.items():
        assert f"{status} {n}</a>" in body


def test_an_htmx_request_gets_only_the_rows_fragment(admin_client, indexed):
    response = admin_client.get(URL + "?health=Healthy", headers={"HX-Request": "true"})
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body and "<form" not in body
    assert body.lstrip().startswith('<section id="app-rows" hx-get="/applications/?health=Healthy"')  # re-polls itself
    assert 'hx-trigger="every 10s"' in body and "data-poll-unless-checked" in body  # paused by portal.js
    assert (
        set(names(response))
        == set(ApplicationSummary.objects.filter(health_status="Healthy").values_list("name", flat=True)[:50])
        or len(names(response)) == 50
    )


def test_the_full_page_has_a_filter_form_that_swaps_the_rows_and_pushes_the_url(admin_client, indexed):
    body = admin_client.get(URL).content.decode()
    assert 'hx-get="/applications/"' in body and 'hx-target="#app-rows"' in body and 'hx-push-url="true"' in body
    assert '<section id="app-rows" ' in body and "<html" in body


def test_a_down_instance_stays_listed_marked_stale_with_a_banner_naming_it(admin_client, indexed):
    IndexState.objects.filter(instance=indexed).update(
        connected=False,
        error="sim-test: connection refused (GET /api/v1/stream/applications)",
        last_event_at=timezone.now(),
    )
    response = admin_client.get(URL)
    body = response.content.decode()
    assert names(response), "rows of a down instance stay listed"
    assert "Instance <strong>sim-test</strong>: sim-test: connection refused" in body
    assert 'class="badge stale"' in body
    assert all(r["stale"] for r in response.context["result"].rows)


def test_an_instance_never_indexed_is_named_in_the_banner(admin_client, db, make_sim):
    register(make_sim(apps=1), "fresh")
    body = admin_client.get(URL).content.decode()
    assert "Instance <strong>fresh</strong>: not indexed yet" in body


def test_argo_cd_data_is_escaped(admin_client, indexed):
    ApplicationSummary.objects.filter(instance=indexed).update(repo="<script>alert(1)</script>")
    body = admin_client.get(URL).content.decode()
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;" in body


def test_an_empty_status_is_counted_and_filtered_as_unknown(admin_client, indexed):
    ApplicationSummary.objects.filter(instance=indexed, name__startswith="payments").update(health_status="")
    blank = set(ApplicationSummary.objects.filter(health_status="").values_list("name", flat=True))
    response = admin_client.get(URL + "?health=Unknown")
    assert blank and set(names(response)) == blank
    assert dict(response.context["result"].health_counts) == {"Unknown": len(blank)}


def test_the_list_page_stays_at_a_handful_of_queries(client, alice, indexed, django_assert_max_num_queries):
    # session, user, grants, instances with their index state, then one statement for counts, total and rows
    # (two on databases without the PostgreSQL form). The project choices and sync button are cached per user
    # and set of grants, which costs two more queries on the first full page. One more reads the change windows
    # (once per request, however many rows), and one counts the approval requests waiting for the user (the
    # navigation's badge).
    grant(alice, "payments", instance="sim-test", app="*payments*", actions=["sync"])
    grant(alice, "checkout", instance="sim-*", project="checkout")
    client.force_login(alice)
    per_page = 7 if connection.vendor == "postgresql" else 8
    with django_assert_max_num_queries(per_page + 2):
        first = client.get(URL)
    assert names(first) and "Sync selected" in first.content.decode()
    for params in ("", "?sort=-health", "?sort=instance", "?health=Healthy&sync=Synced&q=a", "?selector=team%3Dx"):
        with django_assert_max_num_queries(per_page):
            assert client.get(URL + params).status_code == 200
        with django_assert_max_num_queries(per_page):
            assert client.get(URL + params, headers={"HX-Request": "true"}).status_code == 200


def test_sorting_by_instance_follows_instance_names_both_ways(admin_client, make_sim):
    for name in ("zeta", "alpha"):  # registered out of name order so ids and names disagree
        index_now(register(make_sim(apps=4), name))
    ascending = [i for i, _ in rows_of(admin_client.get(URL + "?sort=instance"))]
    descending = [i for i, _ in rows_of(admin_client.get(URL + "?sort=-instance"))]
    assert ascending == ["alpha"] * 4 + ["zeta"] * 4 and descending == ["zeta"] * 4 + ["alpha"] * 4
    names_in_alpha = names(admin_client.get(URL + "?sort=instance"))[:4]
    assert names_in_alpha == sorted(names_in_alpha)  # then by name within an instance


def test_an_absurd_page_number_is_not_a_server_error(admin_client):
    assert admin_client.get("/applications/?page=100000000000000000000").status_code == 200

"""Application data the database cannot hold (a NUL in a label) or refuses never stops an instance's index."""

from __future__ import annotations

import uuid

from django.db import connection

from apps.index.models import ApplicationSummary, IndexState

from .conftest import index_now, register, wait_for


def _put_label(server, name: str, key: str, value: str) -> None:
    """Change one app's labels inside the simulated Argo CD, as an edit there would (a watch event follows)."""
    with server.state.lock:
        rec = server.state.app(name)
        rec.obj["metadata"].setdefault("labels", {})[key] = value
        server.state.touch(rec)


def _names(server) -> list[str]:
    return [key[1] for key in server.state.sorted_app_keys()]


def _indexed(instance) -> set[str]:
    return set(ApplicationSummary.objects.filter(instance=instance).values_list("name", flat=True))


def test_a_nul_in_one_label_of_one_app_does_not_stop_a_full_resync_of_the_others(db, make_sim):
    server = make_sim(apps=25)
    bad, *others = _names(server)
    _put_label(server, bad, "note", "before\x00after")
    instance = register(server)

    index_now(instance)

    assert _indexed(instance) == {bad, *others}
    row = ApplicationSummary.objects.get(instance=instance, name=bad)
    assert row.labels["note"] == "before\\u0000after"  # the six visible characters, not a lost value
    state = IndexState.objects.get(instance=instance)
    assert state.connected and state.error == "" and state.app_count == 25 and state.skipped == {}


def test_a_nul_arriving_in_a_watch_event_does_not_stop_the_events_of_other_apps(run_indexer, make_sim):
    server = make_sim(apps=20)
    bad, other, *_ = _names(server)
    instance = register(server, "nul-watch")
    run_indexer()
    wait_for(lambda: len(_indexed(instance)) == 20, timeout=10)
    wait_for(lambda: IndexState.objects.filter(instance=instance, connected=True).exists(), timeout=5)

    _put_label(server, bad, "note", "x\x00y")
    server.state.set_health(other, "Suspended")

    wait_for(lambda: ApplicationSummary.objects.get(instance=instance, name=other).health_status == "Suspended", 5)
    wait_for(lambda: ApplicationSummary.objects.get(instance=instance, name=bad).labels.get("note") == "x\\u0000y", 5)
    state = IndexState.objects.get(instance=instance)
    assert state.connected and state.error == ""


def test_a_nul_in_a_source_path_is_listed_and_found_by_searching_for_it(admin_client, make_sim):
    server = make_sim(apps=5)
    name = _names(server)[0]
    with server.state.lock:
        rec = server.state.app(name)
        rec.obj["spec"]["source"]["path"] = "apps/odd\x00dir"
        server.state.touch(rec)
    instance = register(server, "nul-path")
    index_now(instance)

    response = admin_client.get("/applications/", {"q": "odd\x00dir"})

    assert response.status_code == 200
    assert [r["name"] for r in response.context["result"].rows] == [name]
    assert "apps/odd\\u0000dir" in response.content.decode()


def _refuse_app(name: str) -> None:
    """A database that refuses one row for a reason of its own (a trigger raising), as a stand-in for any failure
    to store one application that escaping cannot foresee."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE OR REPLACE FUNCTION test_refuse_app() RETURNS trigger AS $$ BEGIN "
            f"IF NEW.name = '{name}' THEN RAISE EXCEPTION 'refused % for the test', NEW.name; END IF; "
            "RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        cursor.execute(
            "CREATE TRIGGER test_refuse_app BEFORE INSERT OR UPDATE ON index_applicationsummary "
            "FOR EACH ROW EXECUTE FUNCTION test_refuse_app()"
        )


def _allow_all() -> None:
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER IF EXISTS test_refuse_app ON index_applicationsummary")
        cursor.execute("DROP FUNCTION IF EXISTS test_refuse_app()")


def test_an_app_the_database_refuses_is_skipped_and_named_while_the_rest_is_indexed(admin_client, make_sim):
    server = make_sim(apps=30)
    bad, *others = _names(server)
    _refuse_app(bad)
    instance = register(server, "refusing")

    index_now(instance)

    assert _indexed(instance) == set(others)
    state = IndexState.objects.get(instance=instance)
    assert state.connected and state.app_count == 29
    assert list(state.skipped) == [f"argocd/{bad}"] and "refused" in state.skipped[f"argocd/{bad}"]
    body = admin_client.get("/instances/refusing/").content.decode()
    assert f"argocd/{bad}" in body and "refused" in body


def test_a_refused_watch_event_is_named_and_cleared_once_the_app_is_stored(run_indexer, make_sim):
    server = make_sim(apps=12)
    bad, other, *_ = _names(server)
    instance = register(server, f"refuse-{uuid.uuid4().hex[:4]}")
    try:
        run_indexer()
        wait_for(lambda: len(_indexed(instance)) == 12, timeout=10)
        _refuse_app(bad)
        server.state.set_health(bad, "Degraded")
        server.state.set_health(other, "Suspended")

        wait_for(lambda: ApplicationSummary.objects.get(instance=instance, name=other).health_status == "Suspended", 5)
        state = wait_for(lambda: IndexState.objects.filter(instance=instance).exclude(skipped={}).first(), 5)
        assert list(state.skipped) == [f"argocd/{bad}"] and state.connected
        assert ApplicationSummary.objects.get(instance=instance, name=bad).health_status != "Degraded"

        _allow_all()
        server.state.set_health(bad, "Missing")
        wait_for(lambda: ApplicationSummary.objects.get(instance=instance, name=bad).health_status == "Missing", 5)
        wait_for(lambda: IndexState.objects.get(instance=instance).skipped == {}, 5)
    finally:
        _allow_all()

"""The indexer keeps ApplicationSummary current from the simulator: resync, watch events, outages, the lease."""

from __future__ import annotations

import time
import uuid

import pytest

from apps.index import summary
from apps.index.models import ApplicationSummary, IndexState
from apps.instances.models import Instance

from .conftest import index_now, register, wait_for

REPO = "https://github.com/acme/payments-deploy.git"


def _row(instance: Instance, name: str) -> ApplicationSummary | None:
    return ApplicationSummary.objects.filter(instance=instance, name=name).first()


def _new_app(project: str = "default") -> dict:
    name = f"idx-{uuid.uuid4().hex[:8]}"
    return {
        "metadata": {"name": name, "labels": {"team": "payments", "env": "dev"}},
        "spec": {
            "project": project,
            "source": {
                "repoURL": "https://github.com/acme/payments-deploy.git",
                "path": "apps/api",
                "targetRevision": "HEAD",
            },
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "payments-dev"},
        },
    }


def test_resync_builds_the_index_with_one_row_per_application(db, make_sim):
    server = make_sim(apps=40, projects=4)
    instance = register(server)
    index_now(instance)
    with instance.client() as client:
        apps = client.list_applications()
    assert ApplicationSummary.objects.filter(instance=instance).count() == len(apps) == 40
    state = IndexState.objects.get(instance=instance)
    assert state.connected and state.app_count == 40 and state.last_resync_at and state.error == ""
    first = apps[0]
    row = _row(instance, first["metadata"]["name"])
    assert row.project == first["spec"]["project"]
    assert row.sync_status == first["status"]["sync"]["status"]
    assert row.health_status == first["status"]["health"]["status"]
    assert row.labels == first["metadata"]["labels"]
    assert row.repo == (first["spec"].get("source") or first["spec"]["sources"][0])["repoURL"]


def test_projected_list_and_watch_frames_give_the_same_summary_as_the_full_object(db, sim):
    instance = register(sim, "sim-test")
    with instance.client() as client:
        full = {a["metadata"]["name"]: a for a in client.list_applications()}
        projected = client.list_applications(fields=summary.LIST_FIELDS)
        with client.watch_applications(fields=summary.WATCH_FIELDS, read_timeout=5) as stream:
            frames = {}
            for event in stream:
                frames[event["application"]["metadata"]["name"]] = event["application"]
                if len(frames) == len(full):
                    break
    ignore = {"resource_version"}  # not on Argo CD's list whitelist
    for app in projected:
        name = app["metadata"]["name"]
        expected = {k: v for k, v in summary.summary_fields(full[name]).items() if k not in ignore}
        assert {k: v for k, v in summary.summary_fields(app).items() if k not in ignore} == expected, name
        assert {k: v for k, v in summary.summary_fields(frames[name]).items() if k not in ignore} == expected, name


def test_resync_deletes_rows_of_applications_the_instance_no_longer_has(db, make_sim):
    server = make_sim(apps=5)
    instance = register(server)
    index_now(instance)
    ApplicationSummary.objects.create(
        instance=instance, name="gone-long-ago", project="default", seen_at="2020-01-01T00:00:00Z"
    )
    index_now(instance)
    assert not _row(instance, "gone")
    assert ApplicationSummary.objects.filter(instance=instance).count() == 5


def test_create_sync_drift_and_delete_show_in_the_index_within_two_seconds(run_indexer, sim):
    instance = register(sim, "sim-test")
    run_indexer()
    wait_for(lambda: IndexState.objects.filter(instance=instance, connected=True).exists(), timeout=10)
    client = instance.client()
    app = _new_app()
    name = app["metadata"]["name"]

    client.create_application(app)
    row = wait_for(lambda: _row(instance, name), timeout=2)
    assert row.repo == REPO and row.labels["team"] == "payments"

    client.sync_application(name)
    wait_for(lambda: (r := _row(instance, name)) and r.operation_phase in ("Running", "Succeeded"), timeout=2)
    # The app reads Synced once its last wave is applied, while a PostSync hook may still run (as in Argo CD).
    row = wait_for(
        lambda: (r := _row(instance, name)) and r.sync_status == "Synced" and r.operation_phase == "Succeeded" and r,
        timeout=10,
    )
    assert row.last_synced_at is not None

    sim.state.drift(name)
    wait_for(lambda: _row(instance, name).sync_status == "OutOfSync", timeout=2)

    client.delete_application(name, cascade=False)
    wait_for(lambda: _row(instance, name) is None, timeout=2)
    state = IndexState.objects.get(instance=instance)
    assert state.last_event_at is not None
    assert state.app_count == ApplicationSummary.objects.filter(instance=instance).count()
    client.close()


def test_an_instance_going_down_keeps_its_rows_marks_it_disconnected_and_recovers(run_indexer, make_sim):
    server = make_sim(apps=12)
    port = server.port
    instance = register(server, "flaky")
    run_indexer()
    wait_for(lambda: ApplicationSummary.objects.filter(instance=instance).count() == 12, timeout=10)

    server.stop()
    state = wait_for(lambda: IndexState.objects.filter(instance=instance, connected=False).first(), timeout=10)
    assert "flaky" in state.error and state.error
    assert ApplicationSummary.objects.filter(instance=instance).count() == 12

    revived = make_sim(apps=14, port=port, name=server.name)
    instance.token = revived.portal_token()  # a new simulator signs with a new key
    instance.save()
    wait_for(lambda: IndexState.objects.filter(instance=instance, connected=True, error="").exists(), timeout=15)
    wait_for(lambda: ApplicationSummary.objects.filter(instance=instance).count() == 14, timeout=5)


def test_only_one_of_two_indexers_holds_an_instance_and_the_other_takes_over_when_it_stops(run_indexer, make_sim):
    server = make_sim(apps=6)
    instance = register(server, "shared")
    first = run_indexer(holder="first")
    second = run_indexer(holder="second")
    wait_for(lambda: ApplicationSummary.objects.filter(instance=instance).count() == 6, timeout=10)

    def holders() -> list[str]:
        return [
            name
            for name, ix in (("first", first), ("second", second))
            if instance.pk in ix.watchers and ix.watchers[instance.pk].holding.is_set()
        ]

    assert wait_for(lambda: len(holders()) == 1, timeout=5)
    held_by = holders()[0]
    assert IndexState.objects.get(instance=instance).holder.startswith(held_by + ":")
    for _ in range(10):  # it stays that way: never both (an invariant over time, hence the pauses)
        assert len(holders()) <= 1
        time.sleep(0.1)

    (first if held_by == "first" else second).stop()
    other = "second" if held_by == "first" else "first"
    wait_for(lambda: holders() == [other], timeout=10)
    wait_for(lambda: IndexState.objects.get(instance=instance).holder.startswith(other + ":"), timeout=10)


def test_an_instance_registered_later_is_picked_up_and_a_disabled_one_is_no_longer_watched(run_indexer, make_sim):
    server = make_sim(apps=3)
    instance = register(server, "retiring")
    indexer = run_indexer()
    wait_for(lambda: IndexState.objects.filter(instance=instance, connected=True).exists(), timeout=10)
    newcomer = register(make_sim(apps=2), "newcomer")
    wait_for(lambda: ApplicationSummary.objects.filter(instance=newcomer).count() == 2, timeout=5)
    Instance.objects.filter(pk=instance.pk).update(enabled=False)
    wait_for(lambda: instance.pk not in indexer.watchers, timeout=5)
    assert IndexState.objects.get(instance=instance).error == "instance disabled"


@pytest.mark.parametrize("bad", [{"metadata": {}}, {"metadata": {"name": "x" * 400}, "status": "garbage"}])
def test_malformed_applications_never_break_a_batch(db, make_sim, bad):
    server = make_sim(apps=2)
    instance = register(server)
    stored = summary.upsert(instance.pk, [bad, {"metadata": {"name": "fine"}}], seen_at="2026-01-01T00:00:00Z")
    assert stored.count == (1 if not bad["metadata"] else 2) and stored.skipped == {}
    assert _row(instance, "fine")


def test_a_periodic_resync_removes_rows_the_watch_missed(run_indexer, make_sim):
    server = make_sim(apps=4)
    instance = register(server, "periodic")
    run_indexer(resync_seconds=0.5)
    wait_for(lambda: ApplicationSummary.objects.filter(instance=instance).count() == 4, timeout=10)
    ApplicationSummary.objects.create(instance=instance, name="phantom", project="default", seen_at="2020-01-01T00:00Z")
    wait_for(lambda: _row(instance, "phantom") is None, timeout=5)
    assert ApplicationSummary.objects.filter(instance=instance).count() == 4


def test_a_burst_of_changes_on_many_apps_is_indexed_within_two_seconds(run_indexer, make_sim):
    server = make_sim(apps=300, projects=4)
    instance = register(server, "busy")
    run_indexer()
    wait_for(lambda: ApplicationSummary.objects.filter(instance=instance).count() == 300, timeout=10)
    wait_for(lambda: IndexState.objects.filter(instance=instance, connected=True).exists(), timeout=5)
    names = list(ApplicationSummary.objects.filter(instance=instance).values_list("name", flat=True))
    for name in names:
        server.state.set_health(name, "Suspended")
    wait_for(
        lambda: ApplicationSummary.objects.filter(instance=instance, health_status="Suspended").count() == 300,
        timeout=2,
    )


def test_editing_an_instance_label_does_not_restart_its_watcher_but_a_new_token_does(run_indexer, make_sim):
    server = make_sim(apps=2)
    instance = register(server, "steady")
    indexer = run_indexer()
    wait_for(lambda: IndexState.objects.filter(instance=instance, connected=True).exists(), timeout=10)
    first = indexer.watchers[instance.pk]
    instance.labels = {"env": "prod"}
    instance.save()
    time.sleep(1.2)  # two refresh periods: the watcher must still be the same object
    assert indexer.watchers[instance.pk] is first
    instance.token = server.portal_token()
    instance.password = "changed"
    instance.save()
    wait_for(lambda: indexer.watchers.get(instance.pk) not in (None, first), timeout=5)


def test_watch_streams_are_closed_at_each_resync_and_on_stop(run_indexer, make_sim):
    server = make_sim(apps=3)
    instance = register(server, "closing")
    indexer = run_indexer(resync_seconds=0.3)
    wait_for(lambda: IndexState.objects.filter(instance=instance, connected=True).exists(), timeout=10)
    # Each resync replaces the watch. The replaced one is closed, not left blocked until its read timeout (30 s),
    # so streams do not pile up: at most the new one and one the server has not yet seen go.
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        assert server.state.subscriber_count() <= 2
        time.sleep(0.05)
    indexer.stop()
    wait_for(lambda: server.state.subscriber_count() == 0, timeout=2)

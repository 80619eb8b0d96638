"""Scheduled syncs and rollbacks: due times across daylight saving, exactly one run per due time however many
beats ask, the checks of a click at run time (a removed grant is refused and audited), and the pages."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.access.models import Grant
from apps.audit.models import AuditEvent
from apps.governance import schedules
from apps.governance.models import Schedule, ScheduleRun
from apps.index.models import ApplicationSummary
from apps.instances.models import Instance
from apps.operations.models import Operation
from apps.teams.models import Membership, Team

BERLIN = "Europe/Berlin"


@pytest.fixture
def redis_db():
    """The test Redis database (REDIS_URL), emptied: started operations are enqueued there, never run."""
    import redis
    from django.conf import settings

    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    r = redis.Redis.from_url(settings.REDIS_URL)
    r.flushdb()
    yield r
    r.close()


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def app_on_prod(db):
    inst = Instance.objects.create(name="prod-eu", url="https://prod-eu.example.com")
    ApplicationSummary.objects.create(instance=inst, name="payments-api", project="payments", seen_at=timezone.now())
    return inst


@pytest.fixture
def grant(alice, app_on_prod) -> Grant:
    team = Team.objects.create(name="payments", slug="payments")
    Membership.objects.create(team=team, user=alice)
    return Grant.objects.create(team=team, instance_glob="prod-*", project_glob="payments", app_glob="payments-*",
                                actions=["view", "sync", "rollback"])  # fmt: skip


def make(owner, now: datetime | None = None, **kw) -> Schedule:
    fields = {"owner": owner, "instance_name": "prod-eu", "project": "payments", "app": "payments-api",
              "kind": "sync", "params": {"prune": False, "dryRun": False}, "timezone": BERLIN, **kw}  # fmt: skip
    s = Schedule(**fields)
    s.next_run_at = schedules.first_due(s, now or at(2026, 3, 1))
    s.save()
    return s


# ---------------------------------------------------------------- due times


@pytest.mark.django_db
def test_a_daily_0200_berlin_recurrence_stays_0200_wall_clock_across_the_spring_change(alice):
    s = make(alice, rrule="DTSTART:20260326T020000\nRRULE:FREQ=DAILY", now=at(2026, 3, 27, 12))
    runs = schedules.upcoming(s, 4)
    # 28 March is CET (UTC+1); 29 March 02:00 falls in the gap (read with the offset before it); then CEST.
    assert runs == [at(2026, 3, 28, 1), at(2026, 3, 29, 1), at(2026, 3, 30, 0), at(2026, 3, 31, 0)]


@pytest.mark.django_db
def test_a_weekly_recurrence_keeps_its_wall_clock_time_across_the_autumn_change(alice):
    s = make(alice, rrule="DTSTART:20261016T180000\nRRULE:FREQ=WEEKLY;BYDAY=FR", now=at(2026, 10, 20))
    assert schedules.upcoming(s, 2) == [at(2026, 10, 23, 16), at(2026, 10, 30, 17)]


@pytest.mark.django_db
def test_a_one_off_schedule_has_one_due_time_and_none_after(alice):
    s = make(alice, once_at=at(2026, 3, 29, 0, 30), now=at(2026, 3, 1))
    assert schedules.upcoming(s) == [at(2026, 3, 29, 0, 30)]
    assert schedules.first_due(s, at(2026, 3, 30)) is None


# ---------------------------------------------------------------- exactly once


@pytest.mark.django_db
def test_two_beats_asking_in_turn_run_a_due_time_once_and_the_schedule_is_done(alice, grant, redis_db):
    s = make(alice, once_at=at(2026, 3, 29, 0, 30))
    now = at(2026, 3, 29, 0, 31)
    assert len(schedules.run_due(now)) == 1
    assert schedules.run_due(now) == []  # a second beat (or the first one restarted) finds nothing due
    run = ScheduleRun.objects.get()
    op = Operation.objects.get()
    assert (run.schedule, run.due_at, run.outcome, run.operation) == (s, at(2026, 3, 29, 0, 30), "started", op)
    assert (op.kind, op.target, op.project, op.requested_by) == ("sync", "payments-api", "payments", alice)
    assert AuditEvent.objects.get(operation_id=op.pk, outcome="started").actor == "alice"
    s.refresh_from_db()
    assert s.next_run_at is None


@pytest.mark.django_db
def test_a_beat_restarted_with_a_stale_schedule_row_cannot_claim_the_due_time_again(alice, grant, redis_db):
    s = make(alice, rrule="DTSTART:20260326T020000\nRRULE:FREQ=DAILY", now=at(2026, 3, 27, 12))
    due = s.next_run_at
    assert len(schedules.run_due(due + timedelta(seconds=5))) == 1
    # A beat that read the schedule before the first committed still holds the old next_run_at.
    Schedule.objects.filter(pk=s.pk).update(next_run_at=due)
    assert schedules.run_due(due + timedelta(seconds=30)) == []
    assert (ScheduleRun.objects.count(), Operation.objects.count()) == (1, 1)


@pytest.mark.django_db(transaction=True)
def test_two_beats_at_once_make_one_run_and_one_operation_per_due_time(alice, grant, redis_db):
    make(alice, rrule="DTSTART:20260326T020000\nRRULE:FREQ=DAILY", now=at(2026, 3, 27, 12))
    now = at(2026, 3, 28, 1, 0, 10)
    barrier, claimed, errors = threading.Barrier(2), [], []

    def beat():
        try:
            barrier.wait()
            claimed.extend(schedules.run_due(now))
        except Exception as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=beat) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(claimed) == 1
    assert (ScheduleRun.objects.count(), Operation.objects.count()) == (1, 1)


# ---------------------------------------------------------------- the checks of a click


@pytest.mark.django_db
def test_a_schedule_whose_owner_lost_the_grant_is_refused_audited_and_explained(alice, grant, redis_db):
    s = make(alice, once_at=at(2026, 3, 29, 0, 30))
    grant.delete()
    assert len(schedules.run_due(at(2026, 3, 29, 0, 31))) == 1
    assert not Operation.objects.exists()
    run = ScheduleRun.objects.get()
    assert run.outcome == "refused" and f"Schedule #{s.pk}" in run.error and "not granted" in run.error
    denied = AuditEvent.objects.get(outcome="denied")
    assert (denied.actor, denied.action, denied.name, denied.error) == ("alice", "sync", "payments-api", run.error)
    assert denied.request["schedule"] == s.pk


@pytest.mark.django_db
def test_a_constraint_of_the_grant_refuses_the_scheduled_options(alice, grant, redis_db):
    grant.constraints = {"prune": False}
    grant.save()
    make(alice, once_at=at(2026, 3, 29, 0, 30), params={"prune": True, "dryRun": False})
    schedules.run_due(at(2026, 3, 29, 0, 31))
    assert ScheduleRun.objects.get().outcome == "refused" and not Operation.objects.exists()


@pytest.mark.django_db
def test_a_change_window_refuses_a_scheduled_sync(alice, grant, redis_db):
    from apps.governance.models import ChangeWindow

    ChangeWindow.objects.create(name="freeze", kind="deny", rrule="DTSTART:20260101T000000\nRRULE:FREQ=DAILY",
                                duration=timedelta(days=1), actions=["sync"])  # fmt: skip
    make(alice, once_at=at(2026, 3, 29, 0, 30))
    schedules.run_due(at(2026, 3, 29, 0, 31))
    assert "blocked by window freeze" in ScheduleRun.objects.get().error and not Operation.objects.exists()


@pytest.mark.django_db
def test_a_paused_schedule_does_not_run(alice, grant, redis_db):
    make(alice, once_at=at(2026, 3, 29, 0, 30), paused=True)
    assert schedules.run_due(at(2026, 3, 29, 0, 31)) == []
    assert not ScheduleRun.objects.exists() and not Operation.objects.exists()


# ---------------------------------------------------------------- pages


@pytest.mark.django_db
def test_the_owner_creates_pauses_resumes_and_deletes_a_schedule_each_audited(client, alice, grant):
    client.force_login(alice)
    url = "/governance/schedules/new/?instance=prod-eu&app=payments-api"
    assert client.get(url).status_code == 200
    data = {"instance": "prod-eu", "app": "payments-api", "kind": "sync", "timezone": BERLIN,
            "rrule": "DTSTART:20260326T020000\r\nRRULE:FREQ=DAILY", "prune": "on"}  # fmt: skip
    assert client.post("/governance/schedules/new/", data).status_code == 302
    s = Schedule.objects.get()
    assert (s.owner, s.project, s.params, s.rrule) == (alice, "payments", {"prune": True, "dryRun": False},
                                                      "DTSTART:20260326T020000\nRRULE:FREQ=DAILY")  # fmt: skip
    assert AuditEvent.objects.get(action="create", outcome="succeeded").after["app"] == "payments-api"
    page = client.get("/governance/schedules/").content.decode()
    assert "payments-api" in page and page.count(" UTC</li>") == 5
    client.post(f"/governance/schedules/{s.pk}/", {"pause": "1"})
    assert Schedule.objects.get().paused
    client.post(f"/governance/schedules/{s.pk}/", {"resume": "1"})
    assert not Schedule.objects.get().paused
    client.post(f"/governance/schedules/{s.pk}/", {"delete": "1"})
    assert not Schedule.objects.exists()
    actions = list(AuditEvent.objects.filter(kind="application").values_list("action", flat=True).order_by("id"))
    assert actions == ["create", "pause_schedule", "resume_schedule", "delete_schedule"]


@pytest.mark.django_db
def test_others_get_404_for_a_schedule_and_do_not_see_it(client, alice, bob, grant):
    s = make(alice, once_at=at(2030, 1, 1))
    client.force_login(bob)
    assert client.post(f"/governance/schedules/{s.pk}/", {"delete": "1"}).status_code == 404
    assert Schedule.objects.filter(pk=s.pk).exists()
    assert "payments-api" not in client.get("/governance/schedules/").content.decode()
    assert client.get("/governance/schedules/new/?instance=prod-eu&app=payments-api").status_code == 404


@pytest.mark.django_db
def test_bad_schedule_input_is_explained_and_saves_nothing(client, alice, grant):
    client.force_login(alice)
    data = {"instance": "prod-eu", "app": "payments-api", "kind": "sync", "timezone": "Europe/Atlantis",
            "rrule": "RRULE:FREQ=DAILY"}  # fmt: skip
    response = client.post("/governance/schedules/new/", data)
    assert response.status_code == 200 and "not a known time zone" in response.content.decode()
    assert not Schedule.objects.exists()
    assert AuditEvent.objects.get(action="create").outcome == "failed"


@pytest.mark.django_db
def test_a_member_without_the_action_cannot_schedule_it(client, alice, grant):
    grant.actions = ["view"]
    grant.save()
    client.force_login(alice)
    data = {"instance": "prod-eu", "app": "payments-api", "kind": "sync", "timezone": BERLIN,
            "once_at": "2030-01-01T02:00"}  # fmt: skip
    response = client.post("/governance/schedules/new/", data)
    assert "Not scheduled" in response.content.decode() and not Schedule.objects.exists()
    assert AuditEvent.objects.get(action="create").outcome == "denied"


@pytest.mark.django_db
def test_the_page_shows_the_owner_why_a_run_was_refused_and_links_started_runs_to_their_operation(
    client, alice, grant, admin_client, redis_db
):
    s = make(alice, rrule="DTSTART:20260326T020000\nRRULE:FREQ=DAILY", now=at(2026, 3, 27, 12))
    schedules.run_due(at(2026, 3, 28, 1, 0, 5))
    op = Operation.objects.get()
    grant.delete()
    schedules.run_due(at(2026, 3, 29, 1, 0, 5))
    client.force_login(alice)
    page = client.get("/governance/schedules/").content.decode()
    assert f'href="/operations/{op.pk}/"' in page
    assert f"Schedule #{s.pk} (sync of payments-api on prod-eu) refused: not granted" in page
    assert f'id="schedule-{s.pk}"' in admin_client.get("/governance/schedules/").content.decode()


@pytest.mark.django_db
def test_the_application_page_offers_schedule_next_to_sync(admin_client, sim):
    inst = Instance.objects.create(name=sim.name, url=sim.url, token=sim.portal_token(), verify_tls=False)
    body = admin_client.get(f"/applications/{inst.name}/payments-api-dev/").content.decode()
    assert f'href="/governance/schedules/new/?instance={inst.name}&amp;app=payments-api-dev"' in body

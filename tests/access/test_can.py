"""The one permission decision, as a table: who may do what where."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone

from apps.access.guards import require
from apps.access.models import Grant
from apps.access.rules import ALL_ACTIONS, applications_q, can
from apps.audit.models import AuditEvent
from apps.index.models import ApplicationSummary
from apps.instances.models import Instance
from apps.teams.models import Membership, Team

pytestmark = pytest.mark.django_db


def _team(slug: str, *grants: tuple[str, str, str, list[str]]) -> Team:
    team = Team.objects.create(name=slug, slug=slug)
    for instance_glob, project_glob, app_glob, actions in grants:
        Grant.objects.create(
            team=team, instance_glob=instance_glob, project_glob=project_glob, app_glob=app_glob, actions=actions
        )
    return team


@pytest.fixture
def world(django_user_model):
    """Instances, teams with grants, and the people in them. Built before any check (grants are cached)."""
    for name in ["prod-eu", "dev-us", "staging-us", "prod-us"]:
        Instance.objects.create(name=name, url=f"https://{name}.example.com")
    Instance.objects.create(name="off", url="https://off.example.com", enabled=False)
    teams = {
        "payments": _team("payments", ("prod-*", "payments", "payments-*", ["sync"])),
        "search": _team("search", ("{dev,staging}-us", "*", "search-api-[a-c]", ["logs"])),
        "exact": _team("exact", ("dev-us", "default", "guestbook", ["delete"])),
        "web": _team("web", ("dev-us", "*", "web-?", ["view"])),
        "ops": _team("ops", ("dev-us", "ops", "*", ["admin"])),
        "everything": _team("everything", ("*", "*", "*", ["sync"])),
    }
    people = {}
    for username, member_of in {
        "alice": ["payments"],
        "bob": ["payments", "search"],
        "carol": [],
        "dave": ["exact", "web"],
        "erin": ["ops"],
        "frank": ["everything"],
        "ghost": ["everything"],
    }.items():
        user = django_user_model.objects.create_user(username, password=f"{username}-password-123")
        for slug in member_of:
            Membership.objects.create(team=teams[slug], user=user)
        people[username] = user
    people["ghost"].is_active = False
    people["ghost"].save()
    people["root"] = django_user_model.objects.create_superuser("root", "root@example.com", "root-password-123")
    people["anonymous"] = AnonymousUser()
    return SimpleNamespace(people=people, teams=teams)


# (who, action, instance, project, app, allowed, why)
CASES = [
    ("alice", "sync", "prod-eu", "payments", "payments-api", True, "glob on instance and app"),
    ("alice", "sync", "prod-us", "payments", "payments-web-prod", True, "* matches any run"),
    ("alice", "sync", "prod-eu", "payments", "payments-a/b", True, "* crosses /"),
    ("alice", "view", "prod-eu", "payments", "payments-api", True, "any grant implies view"),
    ("alice", "rollback", "prod-eu", "payments", "payments-api", False, "action not granted"),
    ("alice", "sync", "dev-us", "payments", "payments-api", False, "instance glob does not match"),
    ("alice", "sync", "prod-eu", "checkout", "payments-api", False, "project does not match"),
    ("alice", "sync", "prod-eu", "payments", "checkout-api", False, "app does not match"),
    ("alice", "logs", "dev-us", "search", "search-api-a", False, "another team's grant"),
    ("bob", "sync", "prod-eu", "payments", "payments-api", True, "union of teams: payments"),
    ("bob", "logs", "dev-us", "anything", "search-api-a", True, "union of teams: search"),
    ("bob", "logs", "staging-us", "x", "search-api-c", True, "{a,b} alternative"),
    ("bob", "logs", "prod-us", "x", "search-api-c", False, "{a,b} excludes others"),
    ("bob", "logs", "dev-us", "x", "search-api-b", True, "[a-c] range"),
    ("bob", "logs", "dev-us", "x", "search-api-d", False, "[a-c] excludes d"),
    ("bob", "sync", "dev-us", "x", "search-api-a", False, "logs grant does not allow sync"),
    ("carol", "view", "prod-eu", "payments", "payments-api", False, "no grant at all"),
    ("carol", "view", "prod-eu", "*", "*", False, "no grant: not even the instance"),
    ("dave", "delete", "dev-us", "default", "guestbook", True, "exact names"),
    ("dave", "delete", "dev-us", "default", "guestbook-2", False, "exact name only"),
    ("dave", "delete", "dev-us", "default2", "guestbook", False, "exact project only"),
    ("dave", "view", "dev-us", "any", "web-1", True, "? matches one character"),
    ("dave", "view", "dev-us", "any", "web-10", False, "? matches exactly one"),
    ("dave", "sync", "dev-us", "any", "web-1", False, "view grant allows only view"),
    ("erin", "delete", "dev-us", "ops", "anything", True, "admin implies delete"),
    ("erin", "rotate", "dev-us", "ops", "anything", True, "admin implies rotate"),
    ("erin", "sync", "dev-us", "ops", "*", True, "admin on * covers instance-wide kinds"),
    ("erin", "sync", "dev-us", "other", "anything", False, "admin only where granted"),
    ("frank", "sync", "prod-eu", "*", "*", True, "* grant covers instance-wide kinds"),
    ("frank", "sync", "off", "payments", "payments-api", False, "disabled instance: nobody"),
    ("frank", "view", "off", "payments", "payments-api", False, "disabled instance: not even view"),
    ("alice", "sync", "prod-eu", "*", "*", False, "instance-wide needs * globs"),
    ("root", "delete", "prod-eu", "anything", "anything", True, "superuser may do all"),
    ("root", "view", "off", "*", "*", False, "disabled instance: superuser included"),
    ("root", "sync", "unknown", "*", "*", False, "unknown instance"),
    ("ghost", "view", "prod-eu", "payments", "payments-api", False, "inactive user"),
    ("anonymous", "view", "prod-eu", "payments", "payments-api", False, "anonymous"),
]


@pytest.mark.parametrize(
    ("who", "action", "instance", "project", "app", "allowed"),
    [case[:6] for case in CASES],
    ids=[f"{c[0]}-{c[1]}-{c[6].replace(' ', '_')}" for c in CASES],
)
def test_can_decides_by_grants(world, who, action, instance, project, app, allowed):
    user = world.people[who]
    assert can(user, action, instance, project, app) is allowed
    obj = Instance.objects.filter(name=instance).first()
    if obj is not None:  # an Instance object decides the same as its name
        assert can(user, action, obj, project, app) is allowed


def test_can_rejects_an_unknown_action(world):
    with pytest.raises(ValueError, match="unknown action"):
        can(world.people["root"], "dance", "prod-eu")


def test_applications_q_makes_the_same_decisions_as_can(world):
    names = [
        ("payments", "payments-api"),
        ("payments", "payments-a/b"),
        ("checkout", "payments-api"),
        ("default", "guestbook"),
        ("default", "guestbook-2"),
        ("x", "search-api-a"),
        ("x", "search-api-d"),
        ("any", "web-1"),
        ("any", "web-10"),
        ("ops", "ops-tools"),
    ]
    now = timezone.now()
    for instance in Instance.objects.all():
        for i, (project, name) in enumerate(names):
            ApplicationSummary.objects.create(
                instance=instance, namespace=f"ns-{i}", project=project, name=name, seen_at=now
            )
    rows = list(ApplicationSummary.objects.select_related("instance"))
    assert len(rows) == 50
    for who, user in world.people.items():
        for action in ALL_ACTIONS:
            expected = {r.pk for r in rows if can(user, action, r.instance, r.project, r.name)}
            got = set(ApplicationSummary.objects.filter(applications_q(user, action)).values_list("pk", flat=True))
            assert got == expected, (who, action)
    # The table is not trivially empty or full for members.
    alice_rows = ApplicationSummary.objects.filter(applications_q(world.people["alice"], "sync"))
    assert sorted({(r.instance.name, r.name) for r in alice_rows}) == [
        ("prod-eu", "payments-a/b"),
        ("prod-eu", "payments-api"),
        ("prod-us", "payments-a/b"),
        ("prod-us", "payments-api"),
    ]


@pytest.fixture
def rf_request(rf):
    def make(user):
        request = rf.post("/applications/x/sync/", REMOTE_ADDR="10.1.2.3")
        request.user = user
        return request

    return make


def test_require_passes_silently_when_allowed(world, rf_request):
    before = AuditEvent.objects.count()
    require(rf_request(world.people["alice"]), "sync", Instance.objects.get(name="prod-eu"), "payments", "payments-api")
    assert AuditEvent.objects.count() == before


def test_require_answers_403_and_audits_when_the_user_may_view_but_not_act(world, rf_request):
    instance = Instance.objects.get(name="prod-eu")
    with pytest.raises(PermissionDenied, match="may not roll back"):
        require(rf_request(world.people["alice"]), "rollback", instance, "payments", "payments-api")
    event = AuditEvent.objects.latest("at")
    assert (event.actor, event.action, event.outcome) == ("alice", "rollback", "denied")
    assert (event.instance, event.project, event.name, event.kind) == (
        "prod-eu",
        "payments",
        "payments-api",
        "application",
    )
    assert event.ip == "10.1.2.3"


def test_require_answers_404_and_audits_when_the_user_may_not_even_view(world, rf_request):
    instance = Instance.objects.get(name="prod-eu")
    with pytest.raises(Http404):
        require(rf_request(world.people["carol"]), "sync", instance, "payments", "payments-api")
    event = AuditEvent.objects.latest("at")
    assert (event.actor, event.action, event.outcome, event.error) == ("carol", "sync", "denied", "not granted")


def test_require_on_a_view_denial_is_404_not_403(world, rf_request):
    instance = Instance.objects.get(name="prod-eu")
    with pytest.raises(Http404):
        require(rf_request(world.people["alice"]), "view", instance, "checkout", "checkout-api")
    assert AuditEvent.objects.filter(actor="alice", action="view", outcome="denied").count() == 1

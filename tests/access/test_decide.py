"""decide(): constraints on grants, each refusing and allowing, and the reason naming the constraint."""

from __future__ import annotations

import pytest

from apps.access.decide import Decision, Target, decide, describe, sync_limits
from apps.access.models import Grant
from apps.access.rules import can
from apps.instances.models import Instance
from apps.teams.models import Membership, Team

pytestmark = pytest.mark.django_db

APP = ("prod-eu", "payments", "payments-api")


@pytest.fixture
def prod(db):
    return Instance.objects.create(name="prod-eu", url="https://prod-eu.example.com")


@pytest.fixture
def give(alice, prod):
    """Give alice's team `payments` a grant on prod/payments-* with these constraints (fresh user each call)."""

    def make(constraints: dict, actions=("sync",), team: str = "payments") -> Grant:
        t, _ = Team.objects.get_or_create(slug=team, defaults={"name": team})
        Membership.objects.get_or_create(team=t, user=alice)
        return Grant.objects.create(
            team=t, instance_glob="prod-*", project_glob="payments", app_glob="payments-*",
            actions=list(actions), constraints=constraints,
        )  # fmt: skip

    return make


def ask(user, params: dict, action: str = "sync", revision: str = "main") -> Decision:
    user._portal_grants = None  # a fresh request: grants are re-read
    return decide(user, action, Target(*APP, revision=revision), params)


# Each constraint: (constraints, params it refuses, params it allows)
CASES = {
    "revision": ({"revision": "own"}, {"revision": "feature-x"}, {"revision": "main"}),
    "dry_run_only": ({"dry_run_only": True}, {"dryRun": False}, {"dryRun": True}),
    "prune": ({"prune": False}, {"prune": True}, {"prune": False}),
    "force": ({"force": False}, {"force": True, "strategy": "apply"}, {"strategy": "apply"}),
    "replace": ({"replace": False}, {"syncOptions": ["Replace=true"]}, {"syncOptions": ["CreateNamespace=true"]}),
    "server_side_apply": (
        {"server_side_apply": False},
        {"syncOptions": ["ServerSideApply=true"]},
        {"syncOptions": ["PruneLast=true"]},
    ),
    "partial": ({"partial": False}, {"resources": [{"kind": "Service", "name": "api"}]}, {"resources": []}),
    "bulk_limit": ({"bulk_limit": 3}, {"bulk_size": 4}, {"bulk_size": 3}),
}


@pytest.mark.parametrize("constraint", list(CASES))
def test_each_constraint_refuses_what_it_forbids_and_names_itself(alice, give, constraint):
    constraints, refused, allowed = CASES[constraint]
    give(constraints)

    no = ask(alice, refused)
    assert not no.allowed and no.constraint == constraint
    assert "payments" in no.reason  # which team's grant refused

    yes = ask(alice, allowed)
    assert yes.allowed and yes.teams == ["payments"] and yes.constraint == ""


def test_revision_globs_allow_matching_branches_and_tags_and_the_apps_own(alice, give):
    give({"revision": "globs", "revision_globs": ["release-*", "v1.*"]})
    assert ask(alice, {"revision": "release-2026.12"}).allowed
    assert ask(alice, {"revision": "v1.4.2"}).allowed
    assert ask(alice, {"revision": "main"}, revision="main").allowed  # the app's own
    assert ask(alice, {}).allowed  # no revision given: the app's own
    refused = ask(alice, {"revision": "feature/try"})
    assert refused.constraint == "revision" and "release-*" in refused.reason


def test_a_grant_without_constraints_narrows_nothing(alice, give):
    give({})
    params = {"prune": True, "force": True, "revision": "x", "syncOptions": ["Replace=true"], "bulk_size": 500}
    assert ask(alice, params).allowed


def test_any_single_grant_allowing_with_all_its_constraints_allows(alice, give):
    give({"prune": False}, team="payments")
    give({"dry_run_only": True}, team="payments-oncall")
    # A real sync without prune: the first grant allows it.
    assert ask(alice, {"prune": False, "dryRun": False}).teams == ["payments"]
    # A dry run with prune: the second allows it.
    assert ask(alice, {"prune": True, "dryRun": True}).teams == ["payments-oncall"]
    # A real sync with prune: neither grant alone allows it, and the two are not mixed.
    assert not ask(alice, {"prune": True, "dryRun": False}).allowed


def test_without_a_grant_the_refusal_is_not_granted_and_names_no_constraint(alice, give, prod):
    give({}, actions=["view"])
    d = ask(alice, {"prune": False})
    assert (d.allowed, d.reason, d.constraint) == (False, "not granted", "")


def test_superusers_are_not_narrowed(admin_user, prod):
    assert ask(admin_user, {"prune": True, "dryRun": False}).allowed


def test_can_is_the_yes_no_shortcut_and_ignores_request_parameters(alice, give, prod):
    give({"dry_run_only": True, "prune": False})
    assert can(alice, "sync", prod, "payments", "payments-api")
    assert not can(alice, "sync", prod, "search", "search-api")


def test_autosync_and_refresh_are_their_own_actions_and_edit_keeps_both(alice, give, prod):
    give({}, actions=["sync"])
    alice._portal_grants = None
    assert not can(alice, "autosync", prod, "payments", "payments-api")
    assert not can(alice, "refresh", prod, "payments", "payments-api")
    give({}, actions=["autosync", "refresh"], team="payments-ops")
    alice._portal_grants = None
    assert can(alice, "autosync", prod, "payments", "payments-api")
    assert can(alice, "refresh", prod, "payments", "payments-api")


def test_a_grant_of_edit_still_allows_autosync_and_refresh(alice, give, prod):
    give({}, actions=["edit"])
    assert can(alice, "autosync", prod, "payments", "payments-api")
    assert can(alice, "refresh", prod, "payments", "payments-api")


def test_autosync_with_prune_or_turned_on_under_dry_run_only_is_refused(alice, give):
    give({"prune": False}, actions=["autosync"])
    assert ask(alice, {"automated": True, "prune": True, "selfHeal": False}, "autosync").constraint == "prune"
    assert ask(alice, {"automated": True, "prune": False, "selfHeal": True}, "autosync").allowed
    give({"dry_run_only": True}, actions=["autosync"], team="dry")
    Grant.objects.filter(team__slug="payments").delete()
    refused = ask(alice, {"automated": True, "prune": False, "selfHeal": False}, "autosync")
    assert refused.constraint == "dry_run_only"
    assert ask(alice, {"automated": False, "prune": False, "selfHeal": False}, "autosync").allowed


def test_sync_limits_say_which_options_are_closed_and_why(alice, give):
    give({"prune": False, "replace": False, "revision": "own"})
    limits = sync_limits(alice, Target(*APP, revision="main"))
    assert set(limits) == {"prune", "replace", "revision"}
    assert "prune is not allowed" in limits["prune"]
    assert "main" in limits["revision"]


def test_describe_puts_constraints_in_words():
    words = describe({"revision": "globs", "revision_globs": ["v*"], "prune": False, "bulk_limit": 5})
    assert words == ["revisions: own or v*", "no prune", "bulk ≤ 5"]
    assert describe({}) == []

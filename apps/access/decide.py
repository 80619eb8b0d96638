"""The one permission decision with its reasons: `decide(user, action, target, params)`.

`can()` is the yes/no shortcut built on it. `decide()` is a plain sequence of checks, each of which may end
the decision; a new kind of check (a change window, an approval policy) is one more step in that sequence:

1. the action is known, the user signed in and active (and, for an API call, within its token's scope), the
   instance enabled;
2. a superuser may do everything;
3. the grants of the user's teams that cover the target and list the action (or `admin`; `edit` also
   covers `autosync` and `refresh`, which it allowed before they had their own name);
4. when the request's `params` are given, each such grant's constraints (CONSTRAINTS below);
5. when the request's `params` are given, the approval policies (APPROVALS below): a matching policy answers
   needs-approval (`Decision.approval`), unless `params` carry an approved request whose plan they are.

Several grants: the request is allowed when ANY single grant allows it with all of its own constraints.
Constraints of different grants are never mixed (a grant that allows prune but only dry runs, and one that
allows real syncs but no prune, together do not allow a real sync with prune). A refusal names the constraint
of the first grant that refused, in the order the grants are listed.

Without `params` (`can()`, menus, list filters) constraints are not looked at: the question there is whether
the action is open at all, and the request itself is decided again with its parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import glob
from .models import Action, Grant
from .rules import ALL_ACTIONS, _allows, _grants, _instance_name_and_enabled, _token_allows, _usable


@dataclass(frozen=True)
class Target:
    """What an action is about. `revision` is the app's own `spec.source.targetRevision` (for the revision rule).

    `namespace` is the namespace the Application object lives in (Argo CD's `project/namespace/name`); "*" when it
    is not known, which only a grant on every namespace covers."""

    instance: Any  # an Instance, or an instance name
    project: str = "*"
    app: str = "*"
    revision: str = ""
    namespace: str = "*"


@dataclass
class Decision:
    allowed: bool
    reason: str
    constraint: str = ""  # the constraint that refused (empty when allowed, or refused for want of a grant)
    teams: list[str] = field(default_factory=list)  # slugs of the teams whose grants allowed it
    # Needs approval: {"policy", "policy_id", "required", "teams", "other_team"} of the policy that asks for it.
    approval: dict | None = None
    approved_by: list[str] = field(default_factory=list)  # who approved the request these params carry

    @property
    def needs_approval(self) -> bool:
        return self.approval is not None

    def __bool__(self) -> bool:
        return self.allowed


# ---------------------------------------------------------------- constraints on grants

# Grant.constraints keys, with what an absent key means (nothing narrowed):
#   revision: "any" | "own" | "globs"   (absent: any); revision_globs: ["release-*", "v*"] for "globs"
#   prune, force, replace, server_side_apply, partial: false to forbid (absent: allowed)
#   dry_run_only: true to allow dry runs only
#   bulk_limit: at most this many applications in one bulk sync (absent or 0: no limit)
CONSTRAINT_LABELS = {
    "revision": "target revision",
    "prune": "prune",
    "force": "force",
    "replace": "replace",
    "server_side_apply": "server-side apply",
    "dry_run_only": "dry run only",
    "partial": "partial sync",
    "bulk_limit": "bulk size",
}
REPLACE_OPTION, SSA_OPTION = "Replace=true", "ServerSideApply=true"


def _revision(c: dict, action: str, params: dict, target: Target) -> str:
    mode = c.get("revision") or "any"
    wanted = str(params.get("revision") or "")
    if action != Action.SYNC or mode == "any" or wanted in ("", target.revision):
        return ""  # no revision given means the app's own targetRevision: always allowed
    globs = c.get("revision_globs") or []
    if mode == "globs" and any(glob.match(g, wanted) for g in globs):
        return ""
    allowed = f"the app's own ({target.revision or 'HEAD'})" + (f" or {', '.join(globs)}" if mode == "globs" else "")
    return f"revision {wanted!r} is not allowed: only {allowed}"


def _flag(key: str, label: str, asked: Callable[[dict], bool]) -> Callable[[dict, str, dict, Target], str]:
    def check(c: dict, action: str, params: dict, target: Target) -> str:
        if c.get(key, True) is False and asked(params):
            return f"{label} is not allowed"
        return ""

    return check


def _options(params: dict) -> list[str]:
    return [str(o) for o in params.get("syncOptions") or []]


def _dry_run_only(c: dict, action: str, params: dict, target: Target) -> str:
    if not c.get("dry_run_only"):
        return ""
    if action == Action.AUTOSYNC and params.get("automated"):
        return "only dry runs are allowed, so automated sync may not be turned on"
    if action in (Action.SYNC, Action.ROLLBACK) and not params.get("dryRun"):
        return "only dry runs are allowed"
    return ""


def _bulk_limit(c: dict, action: str, params: dict, target: Target) -> str:
    limit = int(c.get("bulk_limit") or 0)
    size = int(params.get("bulk_size") or 0)
    if limit and size > limit:
        return f"a bulk sync of {size} applications is over the limit of {limit}"
    return ""


# In the order they are checked; each returns why it refuses, or "".
CONSTRAINTS: list[tuple[str, Callable[[dict, str, dict, Target], str]]] = [
    ("revision", _revision),
    ("dry_run_only", _dry_run_only),
    ("prune", _flag("prune", "prune", lambda p: bool(p.get("prune")))),
    ("force", _flag("force", "force", lambda p: bool(p.get("force")))),
    ("replace", _flag("replace", "replace", lambda p: REPLACE_OPTION in _options(p))),
    ("server_side_apply", _flag("server_side_apply", "server-side apply", lambda p: SSA_OPTION in _options(p))),
    ("partial", _flag("partial", "a partial sync (only some resources)", lambda p: bool(p.get("resources")))),
    ("bulk_limit", _bulk_limit),
]
CONSTRAINED_ACTIONS = (Action.SYNC, Action.ROLLBACK, Action.AUTOSYNC)


def grant_problem(grant: Grant, action: str, params: dict, target: Target) -> tuple[str, str]:
    """(constraint, why) for the first constraint of `grant` that refuses the request, or ("", "")."""
    c = grant.constraints or {}
    if not c or action not in CONSTRAINED_ACTIONS:
        return "", ""
    for name, check in CONSTRAINTS:
        why = check(c, action, params, target)
        if why:
            return name, why
    return "", ""


def describe(constraints: dict) -> list[str]:
    """The constraints of a grant in words, for the grant list and the sync form."""
    c = constraints or {}
    words = []
    if c.get("revision") == "own":
        words.append("own target revision only")
    elif c.get("revision") == "globs":
        words.append(f"revisions: own or {', '.join(c.get('revision_globs') or [])}")
    flags = ("prune", "force", "replace", "server_side_apply")
    words += [f"no {CONSTRAINT_LABELS[k]}" for k in flags if c.get(k) is False]
    if c.get("dry_run_only"):
        words.append("dry run only")
    if c.get("partial") is False:
        words.append("no partial syncs")
    if c.get("bulk_limit"):
        words.append(f"bulk ≤ {c['bulk_limit']}")
    return words


# ---------------------------------------------------------------- the decision


def _covers(grant: Grant, name: str, target: Target) -> bool:
    return (
        glob.match(grant.instance_glob, name)
        and glob.match(grant.project_glob, target.project)
        and glob.match(grant.app_glob, target.app)
        and glob.match(grant.namespace_glob, target.namespace or "*")
    )


def decide(user, action: str, target: Target, params: dict | None = None) -> Decision:
    if action not in ALL_ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if not _usable(user):
        return Decision(False, "not signed in, or the account is disabled")
    if not _token_allows(user, action, target.instance, target.project, target.app):
        return Decision(False, "outside the scope of the API token this call came through")
    name, enabled = _instance_name_and_enabled(target.instance)
    if not enabled:
        return Decision(False, f"instance {name} is not registered or is disabled")
    approved = None
    if params is not None and params.get(APPROVAL_PARAM):
        approved, asked = _approved_plan(user, action, name, target, params)
        if approved is None:
            return Decision(False, asked, constraint="approval")
        params = asked  # the constraints judge what was asked, not the commit SHA it was pinned to
    decision = _granted(user, action, name, target, params)
    if not decision.allowed or params is None:
        return decision
    if approved is not None:
        decision.approved_by = [a.approver_name for a in approved.approvals.all()]
        decision.reason = f"{decision.reason}; approved by {', '.join(decision.approved_by)}"
        return decision
    need = approval_needed(action, name, target, params)
    if need is None:
        return decision
    teams = ", ".join(need["teams"]) or "(no team named)"
    why = f"needs {need['required']} approval{'s' if need['required'] != 1 else ''} from team {teams}"
    if need["other_team"]:
        why += " (approvers from another team than the requester's)"
    return Decision(False, f"{why}: policy {need['policy']}", constraint="approval", teams=decision.teams,
                    approval=need)  # fmt: skip


def _granted(user, action: str, name: str, target: Target, params: dict | None) -> Decision:
    """Steps 2–4: a superuser, or a grant of the action allowing the request with all of its own constraints."""
    if user.is_superuser:
        return Decision(True, "platform admin")
    grants = [g for g in _grants(user) if _allows(g, action) and _covers(g, name, target)]
    if not grants:
        return Decision(False, "not granted")
    if params is None:
        return Decision(True, "granted", teams=sorted({g.team.slug for g in grants}))
    allowing, first_refusal = [], None
    for g in grants:
        constraint, why = grant_problem(g, action, params, target)
        if not constraint:
            allowing.append(g.team.slug)
        elif first_refusal is None:
            label = CONSTRAINT_LABELS[constraint]
            first_refusal = (constraint, f"{why} (constraint “{label}” of team {g.team.slug}'s grant)")
    if allowing:
        return Decision(True, "granted", teams=sorted(set(allowing)))
    constraint, reason = first_refusal
    return Decision(False, reason, constraint=constraint)


# ---------------------------------------------------------------- approvals

# Actions an approval policy may govern; a dry run changes nothing and never needs approval.
APPROVAL_ACTIONS = ("sync", "rollback")
APPROVAL_PARAM = "approval"  # the id of the approved request an operation's params carry


def approval_needed(action: str, instance: str, target: Target, params: dict) -> dict | None:
    """The strictest enabled policy governing `action` on the target (most approvals needed), or None."""
    from apps.governance.models import ApprovalPolicy

    if action not in APPROVAL_ACTIONS or params.get("dryRun"):
        return None
    best = None
    for p in ApprovalPolicy.objects.filter(enabled=True).prefetch_related("approver_teams"):
        covers = (
            action in (p.actions or [])
            and glob.match(p.instance_glob, instance)
            and glob.match(p.project_glob, target.project)
            and glob.match(p.app_glob, target.app)
        )
        if covers and (best is None or p.required > best.required):
            best = p
    if best is None:
        return None
    teams = sorted(t.slug for t in best.approver_teams.all())
    return {"policy": best.name, "policy_id": best.pk, "required": best.required, "teams": teams,
            "other_team": best.other_team}  # fmt: skip


def _approved_plan(user, action: str, instance: str, target: Target, params: dict):
    """(the approved request, the params its requester asked) when `params` are exactly an approved plan for this
    user, action and application; (None, why) otherwise."""
    from apps.governance.approvals import run_params
    from apps.governance.models import ApprovalRequest

    req = ApprovalRequest.objects.filter(pk=_int(params.get(APPROVAL_PARAM))).first()
    if req is None or req.requester_id != user.pk:
        return None, "the approval these parameters name is not this user's"
    if req.state not in (ApprovalRequest.State.APPROVED, ApprovalRequest.State.EXECUTED):
        return None, f"approval request #{req.pk} is {req.state}, not approved"
    if req.kind != action and not (req.kind == "bulk_sync" and action == "sync"):
        return None, f"approval request #{req.pk} approved a {req.kind}, not a {action}"
    for t in req.targets:
        same = t["instance"] == instance and t["app"] == target.app
        if same and target.project in ("*", t["project"]) and run_params(req, t) == params:
            return req, {**req.params, **({"bulk_size": len(req.targets)} if req.kind == "bulk_sync" else {})}
    return None, f"these parameters are not the plan approved in request #{req.pk}"


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


# ---------------------------------------------------------------- for the sync form

# What each option of the sync form asks; every probe is a dry run so that `dry_run_only` refuses only its own.
_PROBES: dict[str, dict] = {
    "prune": {"prune": True, "dryRun": True},
    "force": {"force": True, "dryRun": True},
    "replace": {"syncOptions": [REPLACE_OPTION], "dryRun": True},
    "server_side_apply": {"syncOptions": [SSA_OPTION], "dryRun": True},
    "partial": {"resources": [{"kind": "x", "name": "x"}], "dryRun": True},
    "dry_run_only": {"dryRun": False},
    "revision": {"revision": "\u0000another revision", "dryRun": True},
}


def sync_limits(user, target: Target) -> dict[str, str]:
    """The sync form's options this user may not use on `target`, each with the reason (to disable them)."""
    limits = {}
    for option, params in _PROBES.items():
        decision = decide(user, Action.SYNC, target, params)
        if not decision.allowed and decision.constraint == option:
            limits[option] = decision.reason
    if "revision" in limits:
        globs = allowed_revision_globs(user, target) or []
        own = f"the app's own target revision ({target.revision or 'HEAD'})"
        limits["revision"] = f"Your grant allows only {own}" + (f" or one matching {', '.join(globs)}" if globs else "")
    return limits


def allowed_revision_globs(user, target: Target) -> list[str] | None:
    """The revision globs the user's sync grants on `target` allow besides the app's own; None when any is."""
    if decide(user, Action.SYNC, target, _PROBES["revision"]).allowed:
        return None
    name, _ = _instance_name_and_enabled(target.instance)
    globs: list[str] = []
    for g in _grants(user):
        if _allows(g, Action.SYNC) and _covers(g, name, target) and (g.constraints or {}).get("revision") == "globs":
            globs += [x for x in g.constraints.get("revision_globs") or [] if x not in globs]
    return globs

"""The one permission decision with its reasons: `decide(user, action, target, params)`.

`can()` is the yes/no shortcut built on it. `decide()` is a plain sequence of checks, each of which may end
the decision; a new kind of check (a change window, an approval policy) is one more step in that sequence:

1. the action is known, the user signed in and active (and, for an API call, within its token's scope), the
   instance enabled;
2. a superuser may do everything;
3. the grants of the user's teams that cover the target and list the action (or `admin`; `edit` also
   covers `autosync` and `refresh`, which it allowed before they had their own name);
4. when the request's `params` are given, each such grant's constraints (CONSTRAINTS below).

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

"""The permission rules: `can(user, action, instance, project, app)`, the yes/no shortcut of `decide.decide()`.

A user may act when they are a superuser, or when a grant of one of their teams matches the
instance, project and application globs and lists the action (or `admin`). Any grant lets its
holder view what it covers. A disabled instance allows nothing to anyone.
"""

from __future__ import annotations

from django.db.models import Q

from . import glob
from .models import EDIT_IMPLIES, Action, Grant

ALL_ACTIONS = [a.value for a in Action]


def is_platform_admin(user) -> bool:
    """Superusers are the portal's platform admins: they manage instances, teams and grants."""
    return bool(user is not None and user.is_authenticated and user.is_active and user.is_superuser)


def _usable(user) -> bool:
    return user is not None and user.is_authenticated and user.is_active


def _grants(user) -> list[Grant]:
    # Cached on the user object: one query per request however many checks a page makes.
    cached = getattr(user, "_portal_grants", None)
    if cached is None:
        cached = list(Grant.objects.filter(team__memberships__user=user).select_related("team"))
        user._portal_grants = cached
    return cached


def _allows(grant: Grant, action: str) -> bool:
    if action == Action.VIEW or action in grant.actions or Action.ADMIN in grant.actions:
        return True
    return action in EDIT_IMPLIES and Action.EDIT in grant.actions


def _instance_name_and_enabled(instance) -> tuple[str, bool]:
    if isinstance(instance, str):
        from apps.instances.models import Instance

        enabled = Instance.objects.filter(name=instance, enabled=True).exists()
        return instance, enabled
    return instance.name, instance.enabled


def _token(user):
    """The API token a request acts through (set by apps.api's authentication), or None for a session."""
    return getattr(user, "api_token", None)


def _token_allows(user, action: str, instance, project: str = "*", app: str = "*") -> bool:
    # A token call may do what its owner may do *and* what its scope names: the owner's grants are read
    # fresh at every call, so a grant taken from the owner is gone from the token at once.
    token = _token(user)
    if token is None:
        return True
    name = instance if isinstance(instance, str) else instance.name
    return token.allows(action, name, project, app)


def can(user, action: str, instance, project: str = "*", app: str = "*", namespace: str = "*") -> bool:
    """The yes/no shortcut of `apps.access.decide.decide()` (without request parameters)."""
    from .decide import Target, decide

    return decide(user, action, Target(instance, project, app, namespace=namespace or "*")).allowed


def can_somewhere(user, action: str, instance, project: str | None = None) -> bool:
    """Whether some application (of `project`, when given) on `instance` is one the user may `action`.

    For offering a form, not for acting: the action itself still goes through `can()` with its real names.
    """
    if not _token_allows(user, action, instance, project or "*"):
        return False
    return _decide(user, action, instance, lambda g: project is None or glob.match(g.project_glob, project))


def _decide(user, action: str, instance, covers) -> bool:
    """The rule both share: an enabled instance, then a superuser, or a grant of the action on the instance that
    `covers(grant)` the rest."""
    if action not in ALL_ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if not _usable(user):
        return False
    name, enabled = _instance_name_and_enabled(instance)
    if not enabled:
        return False
    if user.is_superuser:
        return True
    return any(_allows(g, action) and glob.match(g.instance_glob, name) and covers(g) for g in _grants(user))


def teams_allowing(
    user, action: str, instance: str, project: str = "*", app: str = "*", namespace: str = "*"
) -> list[str]:
    """Slugs of the user's teams whose grants allow this (for the audit log's team column)."""
    if not _usable(user):
        return []
    return sorted(
        {
            g.team.slug
            for g in _grants(user)
            if _allows(g, action)
            and glob.match(g.instance_glob, instance)
            and glob.match(g.project_glob, project)
            and glob.match(g.app_glob, app)
            and glob.match(g.namespace_glob, namespace or "*")
        }
    )


def applications_q(user, action: str = Action.VIEW, prefix: str = "", namespace_field: str | None = "namespace") -> Q:
    """A filter on ApplicationSummary-like rows (instance__name, project, name) for what `user` may do.

    Superusers see every enabled instance; nobody sees a disabled one. Rows without the app's namespace
    (`namespace_field=None`) are matched on the other globs only.
    """
    enabled = Q(**{f"{prefix}instance__enabled": True})
    nothing = Q(pk__in=[])
    if not _usable(user):
        return nothing
    token = _token(user)
    if token is not None:
        if action != Action.VIEW and action not in token.actions:
            return nothing
        enabled &= Q(
            **{
                f"{prefix}instance__name__regex": glob.to_regex(token.instance_glob),
                f"{prefix}project__regex": glob.to_regex(token.project_glob),
                f"{prefix}name__regex": glob.to_regex(token.app_glob),
            }
        )
    if user.is_superuser:
        return enabled
    q = nothing
    for g in _grants(user):
        if not _allows(g, action):
            continue
        match = {
            f"{prefix}instance__name__regex": glob.to_regex(g.instance_glob),
            f"{prefix}project__regex": glob.to_regex(g.project_glob),
            f"{prefix}name__regex": glob.to_regex(g.app_glob),
        }
        if namespace_field and g.namespace_glob != "*":
            match[f"{prefix}{namespace_field}__regex"] = glob.to_regex(g.namespace_glob)
        q |= Q(**match)
    return enabled & q


def instances_visible(user):
    """Enabled instances where the user holds any grant (all enabled ones for superusers)."""
    from apps.instances.models import Instance

    instances = Instance.objects.filter(enabled=True)
    if not _usable(user):
        return []
    token = _token(user)
    if token is not None:
        instances = [i for i in instances if glob.match(token.instance_glob, i.name)]
    if user.is_superuser:
        return list(instances)
    grants = _grants(user)
    return [i for i in instances if any(glob.match(g.instance_glob, i.name) for g in grants)]

"""API tokens: a person's (or a team's) key to the portal's REST API, narrowed to a scope.

A token is `acp_` + 32 random bytes (URL-safe base64), shown once. Only its SHA-256 digest is stored: the secret
is 256 bits of randomness, so a fast hash cannot be brute-forced and needs no salt or slow KDF (those protect
low-entropy passwords), and the digest doubles as the lookup key, one indexed equality per call.

A token never grants more than its owner holds *at the time of each call*: `apps.access.rules.can()` checks the
owner's grants and, for a token call, the token's scope as well (see `TokenScope`), so shrinking the owner's
grants shrinks every token they made at the next call.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.access import glob
from apps.access.models import Action

PREFIX = "acp_"
# What a token may be scoped to: the application actions the API offers (view is implied by any of them).
TOKEN_ACTIONS = ("view", "sync", "rollback", "terminate")


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


class ApiToken(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    # A team token acts with the team's grants only, not its maker's; team maintainers manage it.
    team = models.ForeignKey("teams.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    digest = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=12, help_text="The first characters of the token, to tell tokens apart.")
    actions = models.JSONField(default=list)
    instance_glob = models.CharField(max_length=253, default="*")
    project_glob = models.CharField(max_length=253, default="*")
    app_glob = models.CharField(max_length=253, default="*")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "identity"
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @property
    def status(self) -> str:
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "active"

    def allows(self, action: str, instance: str, project: str = "*", app: str = "*") -> bool:
        """The token's own scope (the owner's grants are checked separately by `can()`)."""
        if action != Action.VIEW and action not in self.actions:
            return False
        return (
            glob.match(self.instance_glob, instance)
            and glob.match(self.project_glob, project)
            and glob.match(self.app_glob, app)
        )


def max_days() -> int:
    return int(getattr(settings, "API_TOKEN_MAX_DAYS", 365))


def default_expiry() -> timezone.datetime:
    return timezone.now() + timedelta(days=min(90, max_days()))


def create(request, *, name: str, actions: list[str], expires_at, instance_glob: str = "*",
           project_glob: str = "*", app_glob: str = "*", team=None) -> tuple[ApiToken, str]:  # fmt: skip
    """Make a token of the request's user (or of `team`, which the caller has checked they may manage); returns
    it and its secret (shown once, never stored)."""
    from apps.audit.service import Outcome, record

    secret = new_secret()
    token = ApiToken.objects.create(
        user=request.user,
        team=team,
        name=name,
        digest=digest(secret),
        hint=secret[:10],
        actions=sorted(set(actions)),
        instance_glob=instance_glob or "*",
        project_glob=project_glob or "*",
        app_glob=app_glob or "*",
        expires_at=expires_at,
    )
    record(request, action="create", outcome=Outcome.SUCCEEDED, kind="api_token", name=name,
           after=_described(token))  # fmt: skip
    return token, secret


def revoke(request, token: ApiToken) -> None:
    from apps.audit.service import Outcome, record

    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    record(request, action="revoke", outcome=Outcome.SUCCEEDED, kind="api_token", name=token.name,
           after=_described(token))  # fmt: skip


def _described(token: ApiToken) -> dict:
    return {"id": token.pk, "hint": token.hint, "owner": token.user.get_username(),
            "team": token.team.slug if token.team else "", "actions": token.actions,
            "instance": token.instance_glob, "project": token.project_glob, "application": token.app_glob,
            "expires_at": token.expires_at.isoformat(), "revoked": bool(token.revoked_at)}  # fmt: skip


def manageable_teams(user):
    """Teams whose tokens `user` may make and revoke: those they maintain; every team for platform admins."""
    from apps.access.rules import is_platform_admin
    from apps.teams.models import Membership, Team

    if is_platform_admin(user):
        return Team.objects.order_by("name")
    return Team.objects.filter(memberships__user=user, memberships__role=Membership.Role.MAINTAINER).order_by("name")


def manageable_tokens(user):
    """The user's own tokens and the tokens of the teams they manage."""
    return ApiToken.objects.filter(
        models.Q(user=user, team__isnull=True) | models.Q(team__in=manageable_teams(user))
    ).select_related("team", "user")

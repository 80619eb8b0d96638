"""Single sign-on with an OpenID Connect provider, through authlib's Django client.

authlib reads the provider's discovery document, sends PKCE (S256) and a nonce with the authorization request,
checks the state on return and the ID token's signature (JWKS), issuer, audience, expiry and nonce. What is
left here is the portal's part: find or create the user, and keep the memberships the group mapping manages
in step with the groups claim, auditing each change.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from authlib.integrations.django_client import OAuth
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from apps.audit.service import Outcome, record
from apps.teams.models import Membership, Team

from .oidc_models import GroupMapping, SsoIdentity


class SignInRefused(Exception):
    """The provider's answer cannot sign anyone in; the message says why (it is audited and shown)."""


def enabled() -> bool:
    return bool(settings.OIDC_ISSUER)


def client():
    """The registered OAuth client for the configured provider (one per configuration, discovery cached)."""
    return _client(settings.OIDC_ISSUER, settings.OIDC_CLIENT_ID, settings.OIDC_CLIENT_SECRET, settings.OIDC_SCOPES)


@lru_cache(maxsize=4)
def _client(issuer: str, client_id: str, client_secret: str, scopes: str):
    oauth = OAuth()
    return oauth.register(
        name="portal",
        client_id=client_id,
        client_secret=client_secret,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": scopes, "code_challenge_method": "S256", "default_timeout": 10},
    )


@dataclass
class Claims:
    issuer: str
    subject: str
    username: str
    email: str
    groups: list[str]


def read_claims(userinfo: dict) -> Claims:
    """The claims the portal needs from the ID token (completed by the userinfo endpoint); refuse if one is missing."""
    username = userinfo.get(settings.OIDC_USERNAME_CLAIM)
    subject = userinfo.get("sub")
    if not subject or not isinstance(username, str) or not username.strip():
        raise SignInRefused(f"the provider sent no {settings.OIDC_USERNAME_CLAIM!r} claim")
    groups = userinfo.get(settings.OIDC_GROUPS_CLAIM) or []
    if isinstance(groups, str):
        groups = [groups]
    if not isinstance(groups, list):
        raise SignInRefused(f"the {settings.OIDC_GROUPS_CLAIM!r} claim is not a list of group names")
    return Claims(
        issuer=str(userinfo.get("iss") or settings.OIDC_ISSUER),
        subject=str(subject),
        username=username.strip()[:150],
        email=str(userinfo.get("email") or "")[:254],
        groups=sorted({str(g) for g in groups}),
    )


def user_for(claims: Claims):
    """The portal user bound to this provider subject, created on first sign-in."""
    User = get_user_model()
    identity = SsoIdentity.objects.select_related("user").filter(issuer=claims.issuer, subject=claims.subject).first()
    if identity is not None:
        user = identity.user
        if not user.is_active:
            raise SignInRefused(f"the portal account {user.username} is deactivated")
    else:
        if User.objects.filter(username=claims.username).exists():
            # Binding an existing local account to a provider subject would let whoever controls that name at
            # the provider take it over: an admin must settle it (rename or delete the local account).
            raise SignInRefused(f"a local account named {claims.username} already exists and is not linked to SSO")
        user = User(username=claims.username, email=claims.email)
        user.set_unusable_password()
        user.save()
        identity = SsoIdentity.objects.create(user=user, issuer=claims.issuer, subject=claims.subject)
    if claims.email and user.email != claims.email:
        user.email = claims.email
        user.save(update_fields=["email"])
    identity.last_login = timezone.now()
    identity.save(update_fields=["last_login"])
    return user


def wanted_teams(groups: list[str]) -> dict[int, str]:
    """Team id → role the mapping rules give these groups (maintainer wins when rules disagree)."""
    wanted: dict[int, str] = {}
    for rule in GroupMapping.objects.all():
        if rule.matches(groups) and wanted.get(rule.team_id) != Membership.Role.MAINTAINER:
            wanted[rule.team_id] = rule.role
    return wanted


def sync_memberships(request: HttpRequest, user, groups: list[str]) -> None:
    """Add, change and remove the memberships the mapping manages; manual memberships are left as they are."""
    wanted = wanted_teams(groups)
    current = {m.team_id: m for m in Membership.objects.select_related("team").filter(user=user)}
    with transaction.atomic():
        for team_id, role in wanted.items():
            existing = current.get(team_id)
            if existing is None:
                team = Team.objects.get(pk=team_id)
                Membership.objects.create(team=team, user=user, role=role, managed_by_sso=True)
                _audit(request, user, "add_member", team, {"username": user.username, "role": role})
            elif existing.managed_by_sso and existing.role != role:
                before = existing.role
                existing.role = role
                existing.save(update_fields=["role"])
                _audit(request, user, "add_member", existing.team, {"username": user.username, "role": role},
                       before={"role": before})  # fmt: skip
        for team_id, membership in current.items():
            if membership.managed_by_sso and team_id not in wanted:
                membership.delete()
                _audit(request, user, "remove_member", membership.team, {"username": user.username})


def _audit(request: HttpRequest, user, action: str, team: Team, payload: dict, before: dict | None = None) -> None:
    record(request, user=user, action=action, outcome=Outcome.SUCCEEDED, kind="team", name=team.slug,
           team=team.slug, payload={**payload, "via": "SSO"}, before=before)  # fmt: skip


def refuse(request: HttpRequest, why: str, actor: str = "") -> None:
    record(request, action="login", outcome=Outcome.DENIED, kind="session", actor=actor or "sso",
           error=f"SSO sign-in refused: {why}", payload={"via": "SSO"})  # fmt: skip

"""`Authorization: Bearer <token>` for /api/: the caller acts as the token's owner, narrowed to its scope."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer

from apps.access.models import Grant
from apps.audit.service import Outcome, record
from apps.identity.tokens import PREFIX, ApiToken, digest

from .errors import ApiError


class TokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> ApiToken:
        found = None
        if token.startswith(PREFIX):
            found = ApiToken.objects.select_related("user", "team").filter(digest=digest(token)).first()
        if found is None:
            record(request, action="api", outcome=Outcome.DENIED, kind="api_token", actor="anonymous",
                   error="unknown API token", payload={"path": request.path[:500]})  # fmt: skip
            raise ApiError(401, "unauthenticated", "The API token is not valid. Create one under API tokens.")
        why = _unusable(found)
        if why:
            payload = {"path": request.path[:500], "api_key_id": found.pk}
            record(request, action="api", outcome=Outcome.DENIED, user=found.user, kind="api_token",
                   name=found.name, error=why, payload=payload)  # fmt: skip
            raise ApiError(401, "unauthenticated", f"The API token {found.hint}… is {why}.")
        user = found.user
        user.api_token = found  # apps.access.rules narrows every decision to the token's scope
        if found.team_id:
            # A team token holds the team's grants, read now, and nothing of its maker's (not even platform admin):
            # the access layer reads grants from this per-request cache. Nothing here is saved.
            user.is_superuser = False
            user._portal_grants = list(Grant.objects.filter(team_id=found.team_id).select_related("team"))
        request.user = user
        request.api_token_id = found.pk  # apps.audit.service names the token in every event of this call
        ApiToken.objects.filter(pk=found.pk).update(last_used_at=timezone.now())
        return found


def _unusable(token: ApiToken) -> str:
    if token.revoked_at:
        return "revoked"
    if token.expires_at <= timezone.now():
        return "expired"
    if not token.user.is_active:
        return "owned by a deactivated user"
    return ""

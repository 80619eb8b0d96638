"""Sign-in with the OpenID Connect provider, the local login form's SSO and LOCAL_LOGIN rules, and the group
mapping rules page."""

from __future__ import annotations

import logging

from authlib.common.errors import AuthlibBaseError
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from joserfc.errors import JoseError
from requests import RequestException

from apps.access.guards import admin_required
from apps.access.rules import is_platform_admin
from apps.audit.service import Outcome, record

from . import oidc
from .oidc_models import GroupMapping

log = logging.getLogger(__name__)
NEXT_KEY = "oidc_next"


@login_not_required
def sso_login(request: HttpRequest) -> HttpResponse:
    if not oidc.enabled():
        return redirect("login")
    next_url = request.GET.get("next", "")
    if url_has_allowed_host_and_scheme(next_url, {request.get_host()}, require_https=request.is_secure()):
        request.session[NEXT_KEY] = next_url
    callback = request.build_absolute_uri(reverse("identity:oidc_callback"))
    try:
        return oidc.client().authorize_redirect(request, callback)
    except (RequestException, AuthlibBaseError, ValueError) as exc:
        return _refused(request, f"the provider's discovery document could not be read ({exc})")


@login_not_required
def sso_callback(request: HttpRequest) -> HttpResponse:
    if not oidc.enabled():
        return redirect("login")
    try:
        token = oidc.client().authorize_access_token(request)
        userinfo = dict(token.get("userinfo") or {})
        if not userinfo:
            raise oidc.SignInRefused("the provider returned no ID token")
        if settings.OIDC_GROUPS_CLAIM not in userinfo or settings.OIDC_USERNAME_CLAIM not in userinfo:
            # Many providers put groups (or the user name) only in the userinfo answer, not in the ID token.
            extra = oidc.client().userinfo(token=token)
            userinfo.update({k: v for k, v in extra.items() if k not in {"sub", "iss", "aud"}})
        claims = oidc.read_claims(userinfo)
        with transaction.atomic():
            user = oidc.user_for(claims)
            request.login_payload = {"via": "SSO", "issuer": claims.issuer, "groups": claims.groups}
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            oidc.sync_memberships(request, user, claims.groups)
    except oidc.SignInRefused as exc:
        return _refused(request, str(exc))
    except IntegrityError:  # the same new user signing in twice at once: the other sign-in created the account
        return _refused(request, "another sign-in of this user was in progress; try again")
    except AuthlibBaseError as exc:  # mismatching state, provider error (?error=...), bad token answer
        return _refused(request, f"{exc.error}: {exc.description}" if exc.description else str(exc.error))
    except JoseError as exc:  # ID token signature, issuer, audience, expiry or nonce did not check out
        return _refused(request, f"the ID token was rejected ({exc.error}: {exc.description or ''})")
    except RequestException as exc:
        return _refused(request, f"the provider could not be reached ({exc.__class__.__name__})")
    next_url = request.session.pop(NEXT_KEY, "") or settings.LOGIN_REDIRECT_URL
    return redirect(next_url)


def _refused(request: HttpRequest, why: str) -> HttpResponse:
    log.warning("SSO sign-in refused: %s", why)
    oidc.refuse(request, why)
    messages.error(request, f"Single sign-on failed: {why}. Try again, or ask a platform admin.")
    return redirect("login")


class PortalAuthenticationForm(AuthenticationForm):
    """The local login form; with LOCAL_LOGIN=admins-only it admits platform admins only (break-glass)."""

    def confirm_login_allowed(self, user) -> None:
        super().confirm_login_allowed(user)
        if settings.LOCAL_LOGIN == "admins-only" and not is_platform_admin(user):
            record(self.request, action="login", outcome=Outcome.DENIED, kind="session", actor=user.get_username(),
                   error="local login is for platform admins only (LOCAL_LOGIN=admins-only)")  # fmt: skip
            self.local_login_refused = True
            raise forms.ValidationError(
                "Local login is reserved for platform admins. Sign in with single sign-on.", code="local_login_off"
            )


class PortalLoginView(LoginView):
    form_class = PortalAuthenticationForm
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["sso_enabled"] = oidc.enabled()
        context["sso_name"] = settings.OIDC_PROVIDER_NAME
        context["local_login"] = settings.LOCAL_LOGIN
        return context


class MappingForm(forms.ModelForm):
    class Meta:
        model = GroupMapping
        fields = ["group", "team", "role"]


@admin_required
def group_mappings(request: HttpRequest) -> HttpResponse:
    form = MappingForm()
    if request.method == "POST":
        if "delete" in request.POST:
            rule = GroupMapping.objects.select_related("team").filter(pk=_int(request.POST["delete"])).first()
            if rule:
                before = _snapshot(rule)
                with transaction.atomic():
                    rule.delete()
                    record(request, action="delete", outcome=Outcome.SUCCEEDED, kind="group_mapping",
                           name=before["group"], team=before["team"], before=before)  # fmt: skip
                messages.success(request, f"Deleted the rule {before['group']} → {before['team']}.")
            return redirect("identity:group_mappings")
        form = MappingForm(request.POST)
        if form.is_valid():
            with transaction.atomic():
                rule = form.save()
                record(request, action="create", outcome=Outcome.SUCCEEDED, kind="group_mapping", name=rule.group,
                       team=rule.team.slug, after=_snapshot(rule))  # fmt: skip
            messages.success(request, f"Members of {rule.group} now join {rule.team.name} at sign-in.")
            return redirect("identity:group_mappings")
    rules = GroupMapping.objects.select_related("team")
    return render(request, "identity/group_mappings.html", {"form": form, "rules": rules})


def _snapshot(rule: GroupMapping) -> dict:
    return {"group": rule.group, "team": rule.team.slug, "role": rule.role}


def _int(raw: str) -> int:
    try:
        return int(raw)
    except (TypeError, ValueError):
        return 0

"""The API tokens page: each person makes, lists and revokes their own tokens (the secret is shown once)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django import forms
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST

from . import tokens
from .tokens import TOKEN_ACTIONS


class TokenForm(forms.Form):
    team = forms.ModelChoiceField(
        queryset=None, required=False, empty_label="Personal (acts as you)",
        help_text="A team token acts with that team's grants only; the team's maintainers manage it.",
    )  # fmt: skip
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. “CI deploy of payments”.")
    actions = forms.MultipleChoiceField(
        choices=[(a, a) for a in TOKEN_ACTIONS], widget=forms.CheckboxSelectMultiple, initial=["view"],
        help_text="Never more than you hold yourself: the token is checked against your grants at every call.",
    )  # fmt: skip
    instance_glob = forms.CharField(max_length=253, initial="*", label="Instances (glob)")
    project_glob = forms.CharField(max_length=253, initial="*", label="Projects (glob)")
    app_glob = forms.CharField(max_length=253, initial="*", label="Applications (glob)")
    expires = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), label="Expires on")

    def __init__(self, *args, user=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = tokens.manageable_teams(user)

    def clean_expires(self):
        day = self.cleaned_data["expires"]
        today = timezone.localdate()
        if day <= today:
            raise forms.ValidationError("Pick a day after today.")
        if day > today + timedelta(days=tokens.max_days()):
            raise forms.ValidationError(f"A token lives at most {tokens.max_days()} days.")
        return day


@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    initial = {"expires": tokens.default_expiry().date()}
    form = TokenForm(request.POST or None, initial=initial, user=request.user)
    secret = ""
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        expires_at = timezone.make_aware(datetime.combine(d["expires"], time.max.replace(microsecond=0)))
        _token, secret = tokens.create(request, name=d["name"], actions=d["actions"], expires_at=expires_at,
                                       instance_glob=d["instance_glob"], project_glob=d["project_glob"],
                                       app_glob=d["app_glob"], team=d["team"])  # fmt: skip
        form = TokenForm(initial=initial, user=request.user)
    context = {"form": form, "secret": secret, "tokens": tokens.manageable_tokens(request.user)}
    response = render(request, "identity/tokens.html", context)
    add_never_cache_headers(response)  # the page that shows a secret once must not be kept by any cache
    return response


@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = tokens.manageable_tokens(request.user).filter(pk=pk).first()
    if token is None:
        raise Http404("No such token of yours or of a team you maintain.")
    tokens.revoke(request, token)
    return redirect("identity:tokens")

"""Teams, members and grants. Platform admins manage them; members read their own teams."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from apps.access.guards import check_admin
from apps.access.models import Grant
from apps.access.rules import is_platform_admin
from apps.audit.service import Outcome, record

from . import coverage
from .forms import GrantForm, MemberForm, TeamEditForm, TeamForm
from .models import Membership, Team


def team_list(request: HttpRequest) -> HttpResponse:
    admin = is_platform_admin(request.user)
    form = TeamForm(request.POST or None) if admin else None
    if request.method == "POST":
        check_admin(request)
        if form.is_valid():
            with transaction.atomic():
                team = form.save()
                record(request, action="create", outcome=Outcome.SUCCEEDED, kind="team", name=team.slug,
                       team=team.slug, after=_team_snapshot(team))  # fmt: skip
            messages.success(request, f"Created team {team.name}.")
            return redirect("teams:detail", slug=team.slug)
    teams = Team.objects.prefetch_related("grants", "memberships__user")
    if not admin:
        teams = teams.filter(memberships__user=request.user)
    teams = list(teams)
    _count_coverage([g for team in teams for g in team.grants.all()])
    return render(request, "teams/list.html", {"teams": teams, "form": form, "admin": admin})


def _count_coverage(grants: list[Grant]) -> None:
    """Set `covers` (indexed applications each grant covers) on the grants: one query for all of them."""
    covered = coverage.counts_per_grant(grants)
    for grant in grants:
        grant.covers = covered.get(grant.pk, 0)


def team_detail(request: HttpRequest, slug: str) -> HttpResponse:
    team = get_object_or_404(Team, slug=slug)
    admin = is_platform_admin(request.user)
    if not admin and not team.memberships.filter(user=request.user).exists():
        raise Http404("No such team, or you are not in it.")
    member_form, grant_form, edit_form = MemberForm(team=team), GrantForm(), TeamEditForm(instance=team)
    if request.method == "POST":
        check_admin(request)
        if "delete_team" in request.POST:
            return _delete_team(request, team)
        if "edit_team" in request.POST:
            edit_form = TeamEditForm(request.POST, instance=Team.objects.get(pk=team.pk))
            if edit_form.is_valid():
                return _edit_team(request, team, edit_form)
        elif "add_member" in request.POST:
            member_form = MemberForm(request.POST, team=team)
            if member_form.is_valid():
                return _add_member(request, team, member_form)
        elif "add_grant" in request.POST:
            grant_form = GrantForm(request.POST)
            if grant_form.is_valid():
                return _add_grant(request, team, grant_form)
        elif "edit_grant" in request.POST:
            return _edit_grant(request, team)
        elif "remove_member" in request.POST or "delete_grant" in request.POST:
            return _remove(request, team)
        else:
            messages.error(request, "Unknown action; nothing was changed.")
            return redirect("teams:detail", slug=team.slug)
    grants = _with_edit_forms(team.grants.all()) if admin else list(team.grants.all())
    _count_coverage(grants)
    context = {
        "team": team,
        "admin": admin,
        "memberships": team.memberships.select_related("user").order_by("user__username"),
        "grants": grants,
        "member_form": member_form,
        "grant_form": grant_form,
        "edit_form": edit_form,
    }
    return render(request, "teams/detail.html", context)


def grant_preview(request: HttpRequest, slug: str) -> HttpResponse:
    """The grant form's live preview: the applications the globs being typed cover, and globs matching nothing."""
    check_admin(request)
    get_object_or_404(Team, slug=slug)
    values = {k: request.GET.get(k, "").strip()[:253] for k in ("instance_glob", "project_glob", "app_glob")}
    values["namespace_glob"] = request.GET.get("namespace_glob", "").strip()[:253] or "*"
    found = coverage.coverage(**values, actions=request.GET.getlist("actions"))
    return render(request, "teams/_grant_preview.html", {"coverage": found, "size": coverage.PREVIEW_SIZE})


def _int(value: str) -> int | None:
    return int(value) if value.isdigit() else None


def _team_snapshot(team: Team) -> dict:
    return {"name": team.name, "slug": team.slug, "description": team.description}


def _grant_snapshot(grant: Grant) -> dict:
    return {
        "team": grant.team.slug,
        "instance_glob": grant.instance_glob,
        "project_glob": grant.project_glob,
        "app_glob": grant.app_glob,
        "namespace_glob": grant.namespace_glob,
        "actions": list(grant.actions),
        "constraints": dict(grant.constraints or {}),
    }


def _edit_team(request: HttpRequest, team: Team, form: TeamEditForm) -> HttpResponse:
    before = _team_snapshot(team)
    with transaction.atomic():
        team = form.save()
        record(request, action="edit", outcome=Outcome.SUCCEEDED, kind="team", name=team.slug, team=team.slug,
               before=before, after=_team_snapshot(team))  # fmt: skip
    messages.success(request, f"Saved team {team.name}.")
    return redirect("teams:detail", slug=team.slug)


def _add_member(request: HttpRequest, team: Team, form: MemberForm) -> HttpResponse:
    user, role = form.cleaned_data["username"], form.cleaned_data["role"]
    with transaction.atomic():
        Membership.objects.create(team=team, user=user, role=role)
        record(request, action="add_member", outcome=Outcome.SUCCEEDED, kind="team", name=team.slug, team=team.slug,
               payload={"username": user.username, "role": role})  # fmt: skip
    messages.success(request, f"Added {user.username} to {team.name}.")
    return redirect("teams:detail", slug=team.slug)


def _add_grant(request: HttpRequest, team: Team, form: GrantForm) -> HttpResponse:
    data = form.cleaned_data
    with transaction.atomic():
        grant = Grant.objects.create(
            team=team, instance_glob=data["instance_glob"], project_glob=data["project_glob"],
            app_glob=data["app_glob"], actions=sorted(data["actions"]), constraints=form.constraints(),
            namespace_glob=data["namespace_glob"],
        )  # fmt: skip
        record(request, action="create", outcome=Outcome.SUCCEEDED, kind="grant", name=team.slug, team=team.slug,
               after=_grant_snapshot(grant))  # fmt: skip
    messages.success(request, f"Granted {', '.join(grant.actions)} to {team.name}.")
    _warn_about_globs(request, grant)
    return redirect("teams:detail", slug=team.slug)


def _warn_about_globs(request: HttpRequest, grant: Grant) -> None:
    """A saved grant whose globs match nothing is kept (its instance may be registered later), and said so."""
    for warning in coverage.coverage(
        grant.instance_glob, grant.project_glob, grant.app_glob, namespace_glob=grant.namespace_glob
    ).warnings:
        messages.warning(request, f"Saved, but: {warning}")


def _with_edit_forms(grants) -> list[Grant]:
    grants = list(grants)
    for grant in grants:
        grant.edit_form = GrantForm.for_grant(grant)
    return grants


def _edit_grant(request: HttpRequest, team: Team) -> HttpResponse:
    """Change a grant in place (its globs, actions and constraints): one audit event with before and after."""
    grant = team.grants.filter(pk=_int(request.POST["edit_grant"])).first()
    if grant is None:
        raise Http404("No such grant in this team.")
    form = GrantForm(request.POST)
    if not form.is_valid():
        problems = "; ".join(
            f"{form[f].label if f in form.fields else 'Form'}: {' '.join(e)}" for f, e in form.errors.items()
        )
        messages.error(request, f"The grant was not changed — {problems}")
        return redirect("teams:detail", slug=team.slug)
    data, before = form.cleaned_data, _grant_snapshot(grant)
    with transaction.atomic():
        grant.instance_glob, grant.project_glob, grant.app_glob = (
            data["instance_glob"],
            data["project_glob"],
            data["app_glob"],
        )
        grant.namespace_glob = data["namespace_glob"]
        grant.actions, grant.constraints = sorted(data["actions"]), form.constraints()
        grant.save()
        record(request, action="edit", outcome=Outcome.SUCCEEDED, kind="grant", name=team.slug, team=team.slug,
               before=before, after=_grant_snapshot(grant))  # fmt: skip
    messages.success(request, f"Saved the grant of {', '.join(grant.actions)} to {team.name}.")
    _warn_about_globs(request, grant)
    return redirect("teams:detail", slug=team.slug)


def _remove(request: HttpRequest, team: Team) -> HttpResponse:
    with transaction.atomic():
        if "remove_member" in request.POST:
            membership = team.memberships.select_related("user").filter(pk=_int(request.POST["remove_member"])).first()
            if membership:
                membership.delete()
                record(request, action="remove_member", outcome=Outcome.SUCCEEDED, kind="team", name=team.slug,
                       team=team.slug, payload={"username": membership.user.username})  # fmt: skip
                messages.success(request, f"Removed {membership.user.username} from {team.name}.")
        else:
            grant = team.grants.filter(pk=_int(request.POST["delete_grant"])).first()
            if grant:
                before = _grant_snapshot(grant)
                grant.delete()
                record(request, action="delete", outcome=Outcome.SUCCEEDED, kind="grant", name=team.slug,
                       team=team.slug, before=before)  # fmt: skip
                messages.success(request, f"Deleted the grant of {', '.join(before['actions'])}.")
    return redirect("teams:detail", slug=team.slug)


def _delete_team(request: HttpRequest, team: Team) -> HttpResponse:
    if request.POST.get("confirm_name") != team.slug:
        messages.error(request, f"Type {team.slug} to confirm; nothing was deleted.")
        return redirect("teams:detail", slug=team.slug)
    with transaction.atomic():
        before = {
            **_team_snapshot(team),
            "members": list(team.memberships.values_list("user__username", flat=True)),
            "grants": [_grant_snapshot(g) for g in team.grants.all()],
        }
        team.delete()
        record(request, action="delete", outcome=Outcome.SUCCEEDED, kind="team", name=before["slug"],
               team=before["slug"], before=before)  # fmt: skip
    messages.success(request, f"Deleted team {before['name']}, its memberships and grants.")
    return redirect("teams:list")

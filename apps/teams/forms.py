"""Forms for teams, memberships and grants."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.utils.text import slugify

from apps.access import glob
from apps.access.models import Action

from .models import Membership, Team


class TeamForm(forms.ModelForm):
    class Meta:
        model = Team
        fields = ["name", "slug", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["slug"].required = False
        self.fields["slug"].help_text = "Leave blank to derive it from the name."

    def clean_slug(self) -> str:
        slug = self.cleaned_data.get("slug") or slugify(self.cleaned_data.get("name", ""))
        if not slug:
            raise forms.ValidationError("Give a name with at least one letter or digit.")
        if Team.objects.filter(slug=slug).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(f"A team with the slug {slug!r} exists already.")
        return slug


class TeamEditForm(forms.ModelForm):
    """Name and description; the slug stays, since grants' audit events and links name the team by it."""

    class Meta:
        model = Team
        fields = ["name", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.MEMBER)

    def __init__(self, *args, team: Team, **kwargs) -> None:
        self.team = team
        super().__init__(*args, **kwargs)

    def clean_username(self):
        username = self.cleaned_data["username"].strip()
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise forms.ValidationError(f"No portal user is called {username!r}.")
        if Membership.objects.filter(team=self.team, user=user).exists():
            raise forms.ValidationError(f"{username} is already a member of {self.team.name}.")
        return user


def validate_glob(pattern: str) -> None:
    if reason := glob.problem(pattern):
        raise forms.ValidationError(f"{pattern!r} is not a valid glob ({reason}).")


def _glob_field(label: str, example: str) -> forms.CharField:
    # No initial value: a new grant names what it covers; `*` (everything) has to be typed on purpose.
    return forms.CharField(
        max_length=200,
        validators=[validate_glob],
        label=label,
        widget=forms.TextInput(attrs={"placeholder": example, "autocomplete": "off"}),
    )


class GrantForm(forms.Form):
    instance_glob = _glob_field("Instances", "e.g. argocd-prod or argocd-*")
    project_glob = _glob_field("Projects", "e.g. payments")
    namespace_glob = forms.CharField(
        max_length=253,
        initial="*",
        required=False,  # empty: every namespace, as before grants named one
        validators=[validate_glob],
        label="App namespaces",
        help_text="Where the Application object lives (Argo CD's project/namespace/name).",
    )
    app_glob = _glob_field("Applications", "e.g. payments-* or *")
    # No action ticked at first: what a grant allows is chosen, never inherited from a default.
    actions = forms.MultipleChoiceField(choices=Action.choices, widget=forms.CheckboxSelectMultiple, label="Actions")
    # Constraints (apps.access.decide.CONSTRAINTS): each narrows what the grant's sync, rollback and autosync allow.
    revision = forms.ChoiceField(
        choices=[
            ("any", "any revision"),
            ("own", "only the app's own target revision"),
            ("globs", "the app's own, or one matching the globs below"),
        ],  # fmt: skip
        initial="any",
        required=False,
        label="Target revision",
    )
    revision_globs = forms.CharField(
        required=False, max_length=1000, label="Allowed revisions", help_text="Globs, comma separated: release-*, v1.*"
    )
    forbid_prune = forms.BooleanField(required=False, label="No prune")
    forbid_force = forms.BooleanField(required=False, label="No force")
    forbid_replace = forms.BooleanField(required=False, label="No replace")
    forbid_server_side_apply = forms.BooleanField(required=False, label="No server-side apply")
    forbid_partial = forms.BooleanField(required=False, label="No partial (resource subset) syncs")
    dry_run_only = forms.BooleanField(required=False, label="Dry runs only")
    bulk_limit = forms.IntegerField(
        required=False, min_value=1, max_value=10000, label="Bulk size limit", help_text="Empty: no limit."
    )

    def clean_namespace_glob(self) -> str:
        return self.cleaned_data.get("namespace_glob") or "*"

    @classmethod
    def for_grant(cls, grant, **kwargs) -> GrantForm:
        """The form filled with an existing grant, to edit it."""
        c = grant.constraints or {}
        initial = {
            "instance_glob": grant.instance_glob, "project_glob": grant.project_glob, "app_glob": grant.app_glob,
            "namespace_glob": grant.namespace_glob, "actions": list(grant.actions),
            "revision": c.get("revision", "any"),
            "revision_globs": ", ".join(c.get("revision_globs") or []), "dry_run_only": bool(c.get("dry_run_only")),
            "bulk_limit": c.get("bulk_limit"),
            **{f"forbid_{k}": c.get(k) is False for k in ("prune", "force", "replace", "server_side_apply", "partial")},
        }  # fmt: skip
        return cls(initial=initial, auto_id=f"grant{grant.pk}_%s", **kwargs)

    def clean_revision_globs(self) -> list[str]:
        globs = [g.strip() for g in self.cleaned_data["revision_globs"].split(",") if g.strip()]
        for g in globs:
            validate_glob(g)
        return globs

    def clean(self) -> dict:
        data = super().clean()
        if data.get("revision") == "globs" and not data.get("revision_globs"):
            self.add_error("revision_globs", "Give at least one glob, or choose another revision rule.")
        return data

    def constraints(self) -> dict:
        """Only what narrows: an empty dict is a grant without constraints."""
        d = self.cleaned_data
        c: dict = {}
        if d.get("revision") in ("own", "globs"):
            c["revision"] = d["revision"]
        if d.get("revision") == "globs":
            c["revision_globs"] = d["revision_globs"]
        for key in ("prune", "force", "replace", "server_side_apply", "partial"):
            if d.get(f"forbid_{key}"):
                c[key] = False
        if d.get("dry_run_only"):
            c["dry_run_only"] = True
        if d.get("bulk_limit"):
            c["bulk_limit"] = d["bulk_limit"]
        return c

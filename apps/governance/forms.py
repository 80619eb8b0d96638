"""The change-window form: recurrence, zone and globs are checked here, so a saved window always evaluates."""

from __future__ import annotations

from django import forms

from apps.access.models import Action
from apps.teams.forms import validate_glob
from apps.teams.models import Team

from . import windows
from .models import ApprovalPolicy, ChangeWindow

# Only the actions that start work in Argo CD are governed; viewing and admin work never are.
GOVERNED = [(a.value, a.label) for a in Action if a.value in ("sync", "rollback", "terminate")]


class ChangeWindowForm(forms.ModelForm):
    actions = forms.MultipleChoiceField(choices=GOVERNED, widget=forms.CheckboxSelectMultiple, initial=["sync"])
    exempt_teams = forms.ModelMultipleChoiceField(
        Team.objects.all(), required=False, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = ChangeWindow
        fields = [
            "name",
            "kind",
            "rrule",
            "duration",
            "timezone",
            "instance_glob",
            "project_glob",
            "app_glob",
            "actions",
            "exempt_teams",
            "enabled",
        ]
        widgets = {"rrule": forms.Textarea(attrs={"rows": 3})}
        help_texts = {"duration": "How long each occurrence lasts: HH:MM:SS, or days first (1 00:00:00)."}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name in ("instance_glob", "project_glob", "app_glob"):
            self.fields[name].validators.append(validate_glob)

    def clean_rrule(self) -> str:
        text = self.cleaned_data["rrule"].strip().replace("\r\n", "\n")
        try:
            windows.parse_rule(text)
        except windows.WindowError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return text

    def clean_timezone(self) -> str:
        name = self.cleaned_data["timezone"].strip()
        try:
            windows.zone(name)
        except windows.WindowError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return name

    def clean_duration(self):
        duration = self.cleaned_data["duration"]
        if duration is None or duration.total_seconds() <= 0:
            raise forms.ValidationError("A window lasts some time: give a positive duration.")
        return duration


class ScheduleForm(forms.Form):
    """When and what: a one-off wall-clock time or a recurrence, both read in the chosen time zone."""

    kind = forms.ChoiceField(choices=[("sync", "Sync"), ("rollback", "Rollback")], initial="sync")
    once_at = forms.DateTimeField(
        required=False, label="Once at", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="A wall-clock time in the time zone below. Leave empty to give a recurrence instead.",
    )  # fmt: skip
    rrule = forms.CharField(
        required=False, label="Recurrence", widget=forms.Textarea(attrs={"rows": 2}),
        help_text="RFC 5545, e.g. DTSTART:20261208T020000 then RRULE:FREQ=DAILY on the next line (wall-clock time).",
    )  # fmt: skip
    timezone = forms.CharField(max_length=64, initial="UTC", help_text="An IANA time zone, e.g. Europe/Berlin.")
    prune = forms.BooleanField(required=False)
    dry_run = forms.BooleanField(required=False, label="Dry run")
    history_id = forms.IntegerField(required=False, min_value=0, label="Rollback to history id")

    def clean_timezone(self) -> str:
        name = self.cleaned_data["timezone"].strip()
        try:
            windows.zone(name)
        except windows.WindowError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return name

    def clean_rrule(self) -> str:
        text = self.cleaned_data["rrule"].strip().replace("\r\n", "\n")
        if text:
            try:
                windows.parse_rule(text)
            except windows.WindowError as exc:
                raise forms.ValidationError(str(exc)) from exc
        return text

    def clean(self) -> dict:
        d = super().clean()
        if bool(d.get("once_at")) == bool(d.get("rrule")) and not self.errors:
            raise forms.ValidationError("Give either a one-off time or a recurrence (one of the two).")
        if d.get("kind") == "rollback" and d.get("history_id") is None and not self.errors:
            self.add_error("history_id", "A rollback needs the history id to roll back to.")
        return d

    def once_utc(self):
        """The one-off time read in the chosen zone (a time in a spring-forward gap takes the offset before it)."""
        at = self.cleaned_data.get("once_at")
        if not at:
            return None
        return at.replace(tzinfo=windows.zone(self.cleaned_data["timezone"])).astimezone(windows.UTC)

    def params(self) -> dict:
        d = self.cleaned_data
        params = {"prune": d["prune"], "dryRun": d["dry_run"]}
        if d["kind"] == "rollback":
            params = {"id": d["history_id"], **params}
        return params


APPROVAL_GOVERNED = [(a.value, a.label) for a in Action if a.value in ("sync", "rollback")]


class ApprovalPolicyForm(forms.ModelForm):
    actions = forms.MultipleChoiceField(
        choices=APPROVAL_GOVERNED, widget=forms.CheckboxSelectMultiple, initial=["sync"],
        help_text="Dry runs never need approval.",
    )  # fmt: skip
    approver_teams = forms.ModelMultipleChoiceField(Team.objects.all(), widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApprovalPolicy
        fields = ["name", "instance_glob", "project_glob", "app_glob", "actions", "required", "approver_teams",
                  "other_team", "enabled"]  # fmt: skip

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name in ("instance_glob", "project_glob", "app_glob"):
            self.fields[name].validators.append(validate_glob)
        self.fields["required"].min_value = 1
        self.fields["required"].widget.attrs["min"] = 1

    def clean_required(self) -> int:
        value = self.cleaned_data["required"]
        if value is None or value < 1 or value > 10:
            raise forms.ValidationError("Between 1 and 10 approvals.")
        return value


class ApprovalRequestForm(forms.Form):
    """The request for approval: what to run (as the sync dialog sent it) and why."""

    instance = forms.CharField(max_length=100, widget=forms.HiddenInput)
    app = forms.CharField(max_length=253, widget=forms.HiddenInput)
    kind = forms.ChoiceField(choices=APPROVAL_GOVERNED, widget=forms.HiddenInput)
    params = forms.JSONField(widget=forms.HiddenInput)
    reason = forms.CharField(
        max_length=2000, widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Why this should run: the approvers read it beside the diff.",
    )  # fmt: skip

    def clean_params(self) -> dict:
        value = self.cleaned_data["params"]
        if not isinstance(value, dict):
            raise forms.ValidationError("The options must be a JSON object.")
        value.pop("approval", None)  # an approval is granted, never asked for in the params
        return value

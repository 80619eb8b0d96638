"""The change-window form: recurrence, zone and globs are checked here, so a saved window always evaluates."""

from __future__ import annotations

from django import forms

from apps.access.models import Action
from apps.teams.forms import validate_glob
from apps.teams.models import Team

from . import windows
from .models import ChangeWindow

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

from __future__ import annotations

from django import forms
from django.core.validators import validate_email

from apps.access import glob
from apps.instances.models import validate_instance_url

from . import safeurl
from .models import Destination, EventType, Subscription


class DestinationForm(forms.ModelForm):
    url = forms.CharField(
        label="URL", max_length=500, required=False, validators=[validate_instance_url], help_text="Webhook and Slack."
    )
    recipients = forms.CharField(
        required=False,
        max_length=1000,
        help_text="Email: addresses separated by commas, sent through the portal's mail server.",
    )
    # Write-only: never rendered back; left blank on edit, the stored secret stays.
    secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Signs each webhook body (X-Portal-Signature). Leave blank to keep the current one.",
    )

    class Meta:
        model = Destination
        fields = ["name", "kind", "url", "recipients", "enabled", "team"]

    def __init__(self, *args, teams=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams
        self.fields["team"].required = False
        self.fields["team"].help_text = "The team this destination belongs to; none means yours (or platform-wide)."

    def clean_recipients(self) -> str:
        addresses = [a.strip() for a in self.cleaned_data.get("recipients", "").split(",") if a.strip()]
        for address in addresses:
            try:
                validate_email(address)
            except forms.ValidationError:
                raise forms.ValidationError(f"{address!r} is not an email address.") from None
        return ", ".join(addresses)

    def clean(self) -> dict:
        data = super().clean()
        if data.get("kind") == Destination.Kind.EMAIL:
            data["url"] = ""
            if not data.get("recipients") and "recipients" not in self.errors:
                self.add_error("recipients", "An email destination needs at least one address.")
        elif data.get("kind"):
            data["recipients"] = ""
            if not data.get("url") and "url" not in self.errors:
                self.add_error("url", "A webhook needs its URL, e.g. https://hooks.example.com/portal.")
            elif data.get("url"):
                try:
                    safeurl.check(data["url"])
                except safeurl.UnsafeURL as exc:
                    self.add_error("url", str(exc))
        return data

    def save(self, commit: bool = True) -> Destination:
        dest = super().save(commit=False)
        if self.cleaned_data.get("secret"):
            dest.secret = self.cleaned_data["secret"]
        if commit:
            dest.save()
        return dest


class SubscriptionForm(forms.ModelForm):
    events = forms.MultipleChoiceField(choices=EventType.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = Subscription
        fields = ["events", "instance_glob"]

    def clean_instance_glob(self) -> str:
        value = self.cleaned_data["instance_glob"].strip() or "*"
        problem = glob.problem(value)
        if problem:
            raise forms.ValidationError(problem)
        return value

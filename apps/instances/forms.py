"""Instance forms. Secret fields are write-only: never given an initial value, never rendered back."""

from __future__ import annotations

from django import forms

from apps.core import documents

from .models import Instance, name_validator, validate_instance_url

SECRET = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})


def parse_labels(text: str) -> dict[str, str]:
    """`key=value` lines (blank lines and `#` comments ignored) or a JSON object of strings."""
    text = (text or "").strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            data = documents.parse(text, "json")
        except documents.DocumentError as exc:
            raise forms.ValidationError(f"Labels are not valid JSON: {exc}") from None
        if not isinstance(data, dict) or not all(isinstance(v, str | int | float | bool) for v in data.values()):
            raise forms.ValidationError('JSON labels must be an object of plain values, e.g. {"env": "prod"}.')
        return {str(k).strip(): str(v) for k, v in data.items()}
    labels: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise forms.ValidationError(f"Line {number} is not key=value: {line[:60]!r}.")
        labels[key.strip()] = value.strip()
    return labels


def labels_text(labels: dict[str, str]) -> str:
    return "\n".join(f"{k}={v}" for k, v in (labels or {}).items())


class InstanceForm(forms.Form):
    name = forms.CharField(max_length=63, validators=[name_validator], help_text="Lower-case letters, digits, dashes.")
    url = forms.CharField(
        max_length=500, validators=[validate_instance_url], label="URL", help_text="e.g. https://argocd.example.com"
    )
    token = forms.CharField(required=False, widget=SECRET, label="API token", strip=True)
    username = forms.CharField(required=False, max_length=200)
    password = forms.CharField(required=False, widget=SECRET, strip=False)
    verify_tls = forms.BooleanField(required=False, initial=True, label="Verify the server's TLS certificate")
    ca_bundle = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), label="CA bundle (PEM)")
    labels = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One key=value per line, or a JSON object.",
    )
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, instance: Instance | None = None, **kwargs) -> None:
        self.instance = instance
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": instance.name,
                "url": instance.url,
                "username": instance.username,
                "verify_tls": instance.verify_tls,
                "ca_bundle": instance.ca_bundle,
                "labels": labels_text(instance.labels),
                "enabled": instance.enabled,
            }
        super().__init__(*args, **kwargs)
        if instance is not None:
            # The name is the instance's identity in grants and the audit log: it does not change.
            self.fields["name"].disabled = True
            self.fields["token"].help_text = "Leave blank to keep the stored token."
            self.fields["password"].help_text = "Leave blank to keep the stored credential."

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if self.instance is None and Instance.objects.filter(name=name).exists():
            raise forms.ValidationError(f"An instance called {name!r} is already registered.")
        return name

    def clean_labels(self) -> dict[str, str]:
        return parse_labels(self.cleaned_data.get("labels", ""))

    def clean_ca_bundle(self) -> str:
        pem = self.cleaned_data.get("ca_bundle", "").strip()
        if pem and "-----BEGIN CERTIFICATE-----" not in pem:
            raise forms.ValidationError("The CA bundle must be PEM text with at least one BEGIN CERTIFICATE block.")
        return pem

    def clean(self) -> dict:
        data = super().clean()
        token, username, password = data.get("token"), data.get("username"), data.get("password")
        if token and password:
            raise forms.ValidationError("Give either an API token or a username and password, not both.")
        if password and not username:
            self.add_error("username", "A password needs the account's username.")
        if self.instance is None:
            if not token and not (username and password):
                raise forms.ValidationError("Give an API token, or a username and a password.")
        elif not token and not password and username and username != self.instance.username:
            self.add_error("password", "Changing the account needs its password (or give a token instead).")
        return data

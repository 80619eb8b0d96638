"""Forms for the users pages. A password left blank is generated and shown once; one typed in must pass
Django's password validators (AUTH_PASSWORD_VALIDATORS)."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import AbstractBaseUser

STATUS_CHOICES = [("active", "Active"), ("inactive", "Inactive"), ("all", "All")]


class UserSearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=150, label="Search")
    status = forms.ChoiceField(required=False, choices=STATUS_CHOICES, initial="active", label="Status")


class OptionalPasswordMixin:
    """Two password fields that may both be left blank (generate one) or must match and validate."""

    password_help = "Leave both blank to generate a strong password, shown once."

    def _add_password_fields(self) -> None:
        self.fields["password1"] = forms.CharField(
            required=False, label="Password", strip=False, help_text=self.password_help,
            widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        )  # fmt: skip
        self.fields["password2"] = forms.CharField(
            required=False, label="Password again", strip=False,
            widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        )  # fmt: skip

    def _clean_password(self, user: AbstractBaseUser) -> str:
        first, second = self.cleaned_data.get("password1", ""), self.cleaned_data.get("password2", "")
        if not first and not second:
            return ""
        if first != second:
            self.add_error("password2", "The two passwords differ.")
            return ""
        try:
            password_validation.validate_password(first, user)
        except forms.ValidationError as error:
            self.add_error("password1", error)
            return ""
        return first


class UserCreateForm(OptionalPasswordMixin, forms.ModelForm):
    is_superuser = forms.BooleanField(required=False, label="Platform admin")

    class Meta:
        model = get_user_model()
        fields = ["username", "email", "first_name", "last_name"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._add_password_fields()

    def clean(self) -> dict:
        data = super().clean()
        # Validate against an unsaved user, so "too similar to the user name" works before it exists.
        names = ("username", "email", "first_name", "last_name")
        probe = get_user_model()(**{name: data.get(name, "") for name in names})
        data["password"] = self._clean_password(probe)
        return data


class PasswordResetForm(OptionalPasswordMixin, forms.Form):
    def __init__(self, *args, user: AbstractBaseUser, **kwargs) -> None:
        self.user = user
        super().__init__(*args, **kwargs)
        self._add_password_fields()

    def clean(self) -> dict:
        data = super().clean()
        data["password"] = self._clean_password(self.user)
        return data

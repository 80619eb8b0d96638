from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models

from apps.core.fields import EncryptedTextField

name_validator = RegexValidator(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", "Use lower-case letters, digits and dashes.")


def validate_instance_url(value: str) -> None:
    """http(s)://host[:port][/path]. Unlike URLValidator, single-label hosts (`https://argocd-server`,
    `http://sim-1:8081`) are fine: in-cluster and compose service names have no dot."""
    from urllib.parse import urlsplit

    from django.core.exceptions import ValidationError

    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValidationError("Enter a valid URL, e.g. https://argocd.example.com.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("Enter a valid URL starting with https:// or http://, e.g. https://argocd.example.com.")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValidationError("Give the URL without credentials, query or fragment; credentials go in their fields.")


class Instance(models.Model):
    """A registered Argo CD instance. Credentials are encrypted and write-only."""

    name = models.CharField(max_length=63, unique=True, validators=[name_validator])
    url = models.URLField(max_length=500)
    token = EncryptedTextField(blank=True, default="")
    username = models.CharField(max_length=200, blank=True, default="")
    password = EncryptedTextField(blank=True, default="")
    verify_tls = models.BooleanField(default=True)
    ca_bundle = models.TextField(blank=True, default="", help_text="PEM certificates to trust for this instance.")
    labels = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    # Health as last seen by the portal.
    last_seen = models.DateTimeField(null=True, blank=True)
    version = models.CharField(max_length=100, blank=True, default="")
    last_error = models.TextField(blank=True, default="")
    token_expires_at = models.DateTimeField(null=True, blank=True)
    token_id = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def token_expires_soon(self) -> bool:
        """True when the stored token expires within two weeks (or has expired): time to rotate it."""
        from datetime import timedelta

        from django.utils import timezone

        return bool(self.token_expires_at and self.token_expires_at < timezone.now() + timedelta(days=14))

    def client(self, **overrides):
        """An Argo CD client for this instance, authenticated with the stored credential."""
        from django.conf import settings

        from apps.argocd import ArgoCDClient

        connect, read = settings.ARGOCD_TIMEOUT
        options = {
            "name": self.name,
            "verify": self.verify_tls,
            "ca_bundle": self.ca_bundle or None,
            "connect_timeout": connect,
            "read_timeout": read,
        }
        if self.token:
            options["token"] = self.token
        if self.username and self.password:
            # A session token (account without apiKey) is renewed by logging in again on a 401.
            options["username"] = self.username
            options["password"] = self.password
        options.update(overrides)
        return ArgoCDClient(self.url, **options)

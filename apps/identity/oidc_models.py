"""What single sign-on stores: which provider subject a portal user is, and how groups map to teams."""

from __future__ import annotations

from fnmatch import fnmatchcase

from django.conf import settings
from django.db import models

from apps.teams.models import Membership, Team


class SsoIdentity(models.Model):
    """A provider's (issuer, subject) bound to one portal user: a later sign-in finds the user by this pair,
    never by the user name alone, so a provider user cannot take over a local account of the same name."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sso_identity")
    issuer = models.CharField(max_length=500)
    subject = models.CharField(max_length=255)
    created = models.DateTimeField(auto_now_add=True)
    last_login = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="unique_sso_subject")]

    def __str__(self) -> str:
        return f"{self.user} as {self.subject} at {self.issuer}"


class GroupMapping(models.Model):
    """A rule: a provider group named `group` (a glob such as "platform-*") makes its members `role` of `team`."""

    group = models.CharField(max_length=200, help_text='A group name or glob, e.g. "argocd-admins" or "dev-*".')
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="group_mappings")
    role = models.CharField(max_length=20, choices=Membership.Role.choices, default=Membership.Role.MEMBER)

    class Meta:
        ordering = ["group", "team__name"]
        constraints = [models.UniqueConstraint(fields=["group", "team"], name="unique_group_mapping")]

    def __str__(self) -> str:
        return f"{self.group} → {self.team} ({self.role})"

    def matches(self, groups: list[str]) -> bool:
        return any(fnmatchcase(g, self.group) for g in groups)

"""Portal change windows: when sync-like actions may (allow) or may not (deny) start, on which applications.

They stand beside Argo CD's own sync windows (which the application page keeps showing) and are decided by
`apps.governance.windows.check()`.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import models

from apps.teams.models import Team


class ChangeWindow(models.Model):
    class Kind(models.TextChoices):
        ALLOW = "allow", "Allow"
        DENY = "deny", "Deny"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.DENY)
    rrule = models.TextField(
        help_text="RFC 5545 recurrence with its start, e.g. DTSTART:20260105T180000 then RRULE:FREQ=WEEKLY;BYDAY=FR"
        " on the next line. DTSTART is a wall-clock time in the window's time zone."
    )
    duration = models.DurationField(default=timedelta(hours=1), help_text="How long each occurrence lasts.")
    timezone = models.CharField(max_length=64, default="UTC", help_text="An IANA time zone, e.g. Europe/Berlin.")
    instance_glob = models.CharField(max_length=200, default="*")
    project_glob = models.CharField(max_length=200, default="*")
    app_glob = models.CharField(max_length=200, default="*")
    actions = models.JSONField(default=list, help_text="The actions the window governs (sync, rollback, …).")
    exempt_teams = models.ManyToManyField(Team, blank=True, related_name="exempt_from_windows")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} window {self.name}"

    def snapshot(self) -> dict:
        """What the audit log keeps of a window (before/after an edit)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "rrule": self.rrule,
            "duration": str(self.duration),
            "timezone": self.timezone,
            "instance_glob": self.instance_glob,
            "project_glob": self.project_glob,
            "app_glob": self.app_glob,
            "actions": list(self.actions or []),
            "exempt_teams": sorted(t.slug for t in self.exempt_teams.all()) if self.pk else [],
            "enabled": self.enabled,
        }

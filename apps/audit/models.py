from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """One thing somebody did (or tried). Append-only and hash-chained; snapshots are strings so an
    event outlives the user, instance and resource it describes."""

    class Outcome(models.TextChoices):
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        DENIED = "denied", "Denied"
        STARTED = "started", "Started"

    at = models.DateTimeField(db_index=True)
    actor = models.CharField(max_length=150)
    actor_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    team = models.CharField(max_length=100, blank=True, default="")
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True, default="")
    instance = models.CharField(max_length=63, blank=True, default="")
    kind = models.CharField(max_length=50, blank=True, default="")
    project = models.CharField(max_length=253, blank=True, default="")
    namespace = models.CharField(max_length=253, blank=True, default="")
    name = models.CharField(max_length=253, blank=True, default="")
    action = models.CharField(max_length=50)
    request = models.JSONField(default=dict, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    error = models.TextField(blank=True, default="")
    operation_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    # An outcome event names the `started` event written before the call it reports on.
    intent_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["instance", "kind", "name", "-id"], name="audit_target"),
            models.Index(fields=["actor", "-id"], name="audit_actor"),
            models.Index(fields=["action", "outcome", "-id"], name="audit_action"),
            models.Index(fields=["team", "-id"], name="audit_team"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["hash"], name="audit_hash_unique"),
            # Each event has at most one successor, so the database itself refuses a forked chain.
            models.UniqueConstraint(fields=["prev_hash"], name="audit_prev_hash_unique"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.actor} {self.action} {self.kind}/{self.name} {self.outcome}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("audit events are append-only")

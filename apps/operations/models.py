from __future__ import annotations

from django.conf import settings
from django.db import models


class Operation(models.Model):
    """Long work done by a Celery worker for a person: the database row is the source of truth."""

    class Kind(models.TextChoices):
        SYNC = "sync", "Sync"
        ROLLBACK = "rollback", "Rollback"
        TERMINATE = "terminate", "Terminate"
        BULK_SYNC = "bulk_sync", "Bulk sync"
        ROTATE_INSTANCE_TOKEN = "rotate_instance_token", "Rotate portal token"
        ROTATE_PROJECT_TOKEN = "rotate_project_token", "Rotate project role token"
        ROTATE_CLUSTER_AUTH = "rotate_cluster_auth", "Rotate cluster auth"

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    FINAL_STATES = (State.SUCCEEDED, State.FAILED, State.CANCELLED)

    kind = models.CharField(max_length=40, choices=Kind.choices)
    instance = models.ForeignKey("instances.Instance", null=True, blank=True, on_delete=models.SET_NULL)
    instance_name = models.CharField(max_length=63, blank=True, default="")
    project = models.CharField(max_length=253, blank=True, default="")
    target = models.CharField(max_length=253, blank=True, default="", help_text="Application or object name.")
    params = models.JSONField(default=dict, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    idempotency_key = models.CharField(max_length=64, unique=True, null=True, blank=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.QUEUED, db_index=True)
    progress = models.PositiveSmallIntegerField(default=0)
    argocd_phase = models.CharField(max_length=20, blank=True, default="")
    message = models.TextField(blank=True, default="")
    resources = models.JSONField(default=list, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    override_reason = models.TextField(
        blank=True, default="", help_text="Why a change window was overridden (break glass) to run this; empty if not."
    )
    attempts = models.PositiveIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.instance_name}/{self.target} ({self.state})"

    @property
    def is_final(self) -> bool:
        return self.state in self.FINAL_STATES

    @property
    def on_application(self) -> bool:
        """Whether `target` names one application (its page can be linked)."""
        return self.kind in (self.Kind.SYNC, self.Kind.ROLLBACK, self.Kind.TERMINATE) and bool(self.target)

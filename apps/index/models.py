from __future__ import annotations

from django.db import models


class ApplicationSummary(models.Model):
    """One row per application per instance, kept current by the indexer from the watch stream."""

    # No separate index on instance: the unique constraint (instance, namespace, name) starts with it. Every
    # index here is paid for on each write of 10,000-row resyncs, so only those the list page uses are kept.
    instance = models.ForeignKey(
        "instances.Instance", on_delete=models.CASCADE, related_name="app_summaries", db_index=False
    )
    namespace = models.CharField(max_length=253, default="argocd")
    name = models.CharField(max_length=253)
    project = models.CharField(max_length=253, db_index=True)
    labels = models.JSONField(default=dict, blank=True)
    repo = models.CharField(max_length=500, blank=True, default="")
    path = models.CharField(max_length=500, blank=True, default="")
    revision = models.CharField(max_length=200, blank=True, default="")
    dest_server = models.CharField(max_length=500, blank=True, default="")
    dest_name = models.CharField(max_length=253, blank=True, default="")
    dest_namespace = models.CharField(max_length=253, blank=True, default="")
    sync_status = models.CharField(max_length=20, blank=True, default="")
    health_status = models.CharField(max_length=20, blank=True, default="")
    operation_phase = models.CharField(max_length=20, blank=True, default="")
    last_synced_at = models.DateTimeField(null=True, blank=True)
    resource_version = models.CharField(max_length=64, blank=True, default="")
    seen_at = models.DateTimeField()  # when the indexer last wrote this row

    class Meta:
        ordering = ["instance__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["instance", "namespace", "name"], name="unique_app_per_instance")
        ]
        indexes = [models.Index(fields=["name"], name="appsummary_name")]

    def __str__(self) -> str:
        return f"{self.instance_id}/{self.name}"


class IndexState(models.Model):
    """How fresh an instance's part of the index is."""

    instance = models.OneToOneField("instances.Instance", on_delete=models.CASCADE, related_name="index_state")
    last_resync_at = models.DateTimeField(null=True, blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    connected = models.BooleanField(default=False)
    error = models.TextField(blank=True, default="")
    app_count = models.PositiveIntegerField(default=0)
    holder = models.CharField(max_length=200, blank=True, default="")
    # Applications the database refused to store, "namespace/name" → why; the rest of the instance is indexed.
    skipped = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"index of {self.instance_id}"

from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings
from django.db import models
from django.db.models import Value
from django.db.models.functions import Coalesce

# Never-synced rows sort first ascending (last descending) under this stand-in; an expression index matches it.
NEVER = datetime(1970, 1, 1, tzinfo=UTC)
# The keyset tie-breakers after every sort key: with them, every sort is a total order an index can walk.
TIE = ("name", "namespace", "instance_id")


class ApplicationSummary(models.Model):
    """One row per application per instance, kept current by the indexer from the watch stream."""

    # No separate index on instance: the unique constraint (instance, namespace, name) starts with it. Every
    # index here is paid for on each write of 10,000-row resyncs, so only those the list page uses are kept.
    instance = models.ForeignKey(
        "instances.Instance", on_delete=models.CASCADE, related_name="app_summaries", db_index=False
    )
    namespace = models.CharField(max_length=253, default="argocd")
    name = models.CharField(max_length=253)
    project = models.CharField(max_length=253)
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
    auto_sync = models.BooleanField(default=False)  # spec.syncPolicy.automated is set
    cluster = models.CharField(max_length=500, blank=True, default="")  # destination name, else its server
    last_synced_at = models.DateTimeField(null=True, blank=True)
    resource_version = models.CharField(max_length=64, blank=True, default="")
    seen_at = models.DateTimeField()  # when the indexer last wrote this row

    class Meta:
        ordering = ["instance__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["instance", "namespace", "name"], name="unique_app_per_instance")
        ]
        # One index per sort, each ending in the keyset tie-breakers, so a page (either direction) is a walk of
        # PAGE_SIZE + 1 entries whatever the size of the index. (instance_id, name, namespace) also serves the
        # per-instance branches of the instance sort and the grants' `instance_id IN (…)`.
        indexes = [
            models.Index(fields=["name", "namespace", "instance_id"], name="appsummary_name"),
            models.Index(fields=["instance_id", "name", "namespace"], name="appsummary_instance_name"),
            models.Index(fields=["project", *TIE], name="appsummary_project_sort"),
            models.Index(fields=["sync_status", *TIE], name="appsummary_sync_sort"),
            models.Index(fields=["health_status", *TIE], name="appsummary_health_sort"),
            models.Index(fields=["repo", *TIE], name="appsummary_repo_sort"),
            models.Index(fields=["operation_phase", *TIE], name="appsummary_phase_sort"),
            models.Index(Coalesce("last_synced_at", Value(NEVER)), *TIE, name="appsummary_synced_sort"),
            # Facet filters that no sort index leads with: cluster and namespace equalities (and, on PostgreSQL,
            # a GIN index for label containment: migration 0005).
            models.Index(fields=["cluster"], name="appsummary_cluster"),
            models.Index(fields=["dest_namespace"], name="appsummary_dest_namespace"),
        ]

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


class AppCount(models.Model):
    """How many indexed apps share an (instance, project, health, sync, auto-sync) combination.

    Maintained inside the indexer's own statements by PostgreSQL triggers on ApplicationSummary (migration
    0004), so it is exact at every commit and a list page never counts the whole index: the total and the health,
    sync, instance, project and auto-sync counts of a user whose grants name instances and projects only are
    sums over a few hundred rows. Rows whose count dropped to zero are kept (and skipped when read).
    """

    # No foreign key: the triggers write here while an instance's rows are being deleted, and a deleted
    # instance's counts simply drop to zero (reads only look at the instances a user may view).
    instance_id = models.BigIntegerField()
    project = models.CharField(max_length=253)
    health_status = models.CharField(max_length=20, blank=True, default="")
    sync_status = models.CharField(max_length=20, blank=True, default="")
    auto_sync = models.BooleanField(default=False)
    n = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["instance_id", "project", "health_status", "sync_status", "auto_sync"], name="unique_app_count"
            )
        ]

    def __str__(self) -> str:
        return f"{self.instance_id}/{self.project}/{self.health_status}/{self.sync_status}: {self.n}"


class AppFacetCount(models.Model):
    """How many indexed apps of an (instance, project) have a cluster, namespace, repository or label value;
    maintained by the same triggers as AppCount."""

    # No foreign key: the triggers write here while an instance's rows are being deleted, and a deleted
    # instance's counts simply drop to zero (reads only look at the instances a user may view).
    instance_id = models.BigIntegerField()
    project = models.CharField(max_length=253)
    dim = models.CharField(max_length=20)  # cluster, namespace, repo or label
    value = models.TextField()  # a label is counted as "key=value"
    n = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instance_id", "project", "dim", "value"], name="unique_app_facet_count")
        ]

    def __str__(self) -> str:
        return f"{self.instance_id}/{self.project} {self.dim}={self.value}: {self.n}"


class Favourite(models.Model):
    """An application a user pinned to the top of their list."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="favourite_apps")
    instance = models.ForeignKey("instances.Instance", on_delete=models.CASCADE, related_name="+")
    namespace = models.CharField(max_length=253, default="argocd")
    name = models.CharField(max_length=253)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "instance", "namespace", "name"], name="unique_favourite_app")
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.instance_id}/{self.namespace}/{self.name}"

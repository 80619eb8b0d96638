"""Portal change windows: when sync-like actions may (allow) or may not (deny) start, on which applications.

They stand beside Argo CD's own sync windows (which the application page keeps showing) and are decided by
`apps.governance.windows.check()`.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
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


class Schedule(models.Model):
    """A sync or rollback its owner asked to start later: once (`once_at`) or on a recurrence (`rrule` in `timezone`).

    At each due time `apps.governance.schedules.run_due()` checks it as if the owner clicked then.
    """

    class Kind(models.TextChoices):
        SYNC = "sync", "Sync"
        ROLLBACK = "rollback", "Rollback"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="schedules")
    instance_name = models.CharField(max_length=100)
    project = models.CharField(max_length=253, blank=True)
    app = models.CharField(max_length=253)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.SYNC)
    params = models.JSONField(default=dict, blank=True)
    once_at = models.DateTimeField(null=True, blank=True)
    rrule = models.TextField(blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    paused = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["next_run_at", "pk"]

    def __str__(self) -> str:
        return f"scheduled {self.kind} of {self.app} on {self.instance_name}"

    def snapshot(self) -> dict:
        """What the audit log keeps of a schedule."""
        return {
            "id": self.pk,
            "owner": self.owner.get_username(),
            "instance": self.instance_name,
            "project": self.project,
            "app": self.app,
            "kind": self.kind,
            "params": self.params,
            "once_at": self.once_at.isoformat() if self.once_at else "",
            "rrule": self.rrule,
            "timezone": self.timezone,
            "paused": self.paused,
        }


class ScheduleRun(models.Model):
    """One due time of a schedule. Inserting it is the claim: the unique (schedule, due_at) lets one beat through."""

    class Outcome(models.TextChoices):
        STARTED = "started", "Started"
        REFUSED = "refused", "Refused"

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="runs")
    due_at = models.DateTimeField()
    operation = models.ForeignKey(
        "operations.Operation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.STARTED)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-due_at"]
        constraints = [models.UniqueConstraint(fields=["schedule", "due_at"], name="one_run_per_due_time")]

    def __str__(self) -> str:
        return f"run of schedule {self.schedule_id} due {self.due_at:%Y-%m-%d %H:%M} UTC: {self.outcome}"


class ApprovalPolicy(models.Model):
    """Matching actions need `required` approvals from members of `approver_teams` before they run.

    The requester never counts; with `other_team`, an approver must not share a team with the requester.
    Decided by `apps.access.decide.decide()` (needs-approval), enforced in `apps.governance.approvals`.
    """

    name = models.CharField(max_length=100, unique=True)
    instance_glob = models.CharField(max_length=200, default="*")
    project_glob = models.CharField(max_length=200, default="*")
    app_glob = models.CharField(max_length=200, default="*")
    actions = models.JSONField(default=list, help_text="The actions that need approval (sync, rollback).")
    required = models.PositiveSmallIntegerField(default=1, help_text="How many approvals a request needs.")
    approver_teams = models.ManyToManyField(Team, related_name="approves_for")
    other_team = models.BooleanField(default=False, help_text="Approvers must belong to none of the requester's teams.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "approval policies"

    def __str__(self) -> str:
        return f"approval policy {self.name}"

    def snapshot(self) -> dict:
        return {
            "name": self.name,
            "instance_glob": self.instance_glob,
            "project_glob": self.project_glob,
            "app_glob": self.app_glob,
            "actions": list(self.actions or []),
            "required": self.required,
            "approver_teams": sorted(t.slug for t in self.approver_teams.all()) if self.pk else [],
            "other_team": self.other_team,
            "enabled": self.enabled,
        }


class ApprovalRequest(models.Model):
    """A plan waiting for approval: what was seen (commit SHA, spec hash, options, diff) is what runs.

    `targets` holds one entry per application ({instance, project, app, namespace, revision, sha, spec_hash,
    diff}); a bulk sync's request holds several. The policy's terms are copied in, so editing the policy later
    does not change what a request needs.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        CANCELLED = "cancelled", "Cancelled"
        EXPIRED = "expired", "Expired"
        VOID = "void", "Void"
        EXECUTED = "executed", "Executed"

    OPEN_STATES = (State.PENDING,)

    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="approval_requests")
    requester_teams = models.JSONField(default=list, blank=True)
    kind = models.CharField(max_length=20, default="sync")  # sync, rollback, bulk_sync
    targets = models.JSONField(default=list)
    params = models.JSONField(default=dict, blank=True, help_text="The options as asked (revision unresolved).")
    reason = models.TextField()
    policy = models.ForeignKey(ApprovalPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    policy_name = models.CharField(max_length=100, blank=True)
    required = models.PositiveSmallIntegerField(default=1)
    approver_teams = models.JSONField(default=list)
    other_team = models.BooleanField(default=False)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING, db_index=True)
    decided_reason = models.TextField(blank=True)
    expires_at = models.DateTimeField()
    operation = models.ForeignKey(
        "operations.Operation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"approval request #{self.pk} ({self.kind} of {self.title})"

    @property
    def title(self) -> str:
        if len(self.targets) == 1:
            t = self.targets[0]
            return f"{t['instance']}/{t['app']}"
        return f"{len(self.targets)} applications"

    @property
    def first(self) -> dict:
        return self.targets[0] if self.targets else {}

    def snapshot(self) -> dict:
        """What the audit log keeps (the diff is left out: it is on the request)."""
        return {
            "id": self.pk,
            "kind": self.kind,
            "state": self.state,
            "requester": self.requester.get_username(),
            "targets": [
                {k: t.get(k, "") for k in ("instance", "project", "app", "revision", "sha", "spec_hash")}
                for t in self.targets
            ],  # fmt: skip
            "params": self.params,
            "policy": self.policy_name,
            "required": self.required,
            "approver_teams": self.approver_teams,
            "approvers": [a.approver_name for a in self.approvals.all()] if self.pk else [],
        }


class Approval(models.Model):
    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="approvals")
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    approver_name = models.CharField(max_length=150)
    team = models.CharField(max_length=100, blank=True)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [models.UniqueConstraint(fields=["request", "approver"], name="one_approval_per_approver")]

    def __str__(self) -> str:
        return f"{self.approver_name} approved request {self.request_id}"

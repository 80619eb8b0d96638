"""Where the portal tells people what happened: destinations, what each subscribes to, and every delivery."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.fields import EncryptedTextField


class EventType(models.TextChoices):
    OPERATION_SUCCEEDED = "operation.succeeded", "Operation succeeded"
    OPERATION_FAILED = "operation.failed", "Operation failed"
    ATTEMPT_DENIED = "attempt.denied", "Denied attempt"
    ROTATION_FAILED = "rotation.failed", "Token rotation failed"
    INSTANCE_UNREACHABLE = "instance.unreachable", "Instance unreachable"
    APPROVAL_REQUESTED = "approval.requested", "Approval requested"
    APPROVAL_DECIDED = "approval.decided", "Approval decided"


class Destination(models.Model):
    """A webhook or a list of email addresses. Owned by a team, a user, or nobody (platform-wide, managed by
    platform admins only)."""

    class Kind(models.TextChoices):
        WEBHOOK = "webhook", "Webhook (JSON signed with HMAC-SHA256)"
        SLACK = "slack", "Slack-compatible"
        EMAIL = "email", "Email"

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.WEBHOOK)
    url = models.URLField(max_length=500, blank=True, default="")
    recipients = models.CharField(max_length=1000, blank=True, default="")  # email: comma-separated addresses
    secret = EncryptedTextField(blank=True, default="")
    enabled = models.BooleanField(default=True)
    team = models.ForeignKey("teams.Team", null=True, blank=True, on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(team__isnull=True) | models.Q(user__isnull=True), name="destination_one_owner"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_email(self) -> bool:
        return self.kind == self.Kind.EMAIL

    @property
    def recipient_list(self) -> list[str]:
        return [address.strip() for address in self.recipients.split(",") if address.strip()]

    @property
    def address(self) -> str:
        """Where messages go, as the pages show it."""
        return ", ".join(self.recipient_list) if self.is_email else self.url

    @property
    def owner(self) -> str:
        if self.team_id:
            return f"team {self.team.slug}"
        if self.user_id:
            return f"user {self.user.get_username()}"
        return "platform"


class Subscription(models.Model):
    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="subscriptions")
    events = models.JSONField(default=list)
    instance_glob = models.CharField(max_length=200, default="*")

    def __str__(self) -> str:
        return f"{self.destination} {','.join(self.events)} on {self.instance_glob}"


class Delivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RETRYING = "retrying", "Retrying"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.BigIntegerField(null=True, blank=True)  # null for a "send test" delivery
    event_type = models.CharField(max_length=50)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["destination", "event_id"], condition=models.Q(event_id__isnull=False), name="delivery_once"
            )
        ]

    def __str__(self) -> str:
        return f"delivery #{self.pk} {self.event_type} {self.status}"

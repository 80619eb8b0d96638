import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

from django.conf import settings  # noqa: E402  (after DJANGO_SETTINGS_MODULE is set)

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The reaper re-enqueues operations whose message was lost and re-attaches those whose worker died;
# instances are health-checked every minute; the portal's own Argo CD tokens are rotated before they expire;
# the audit chain's head is checkpointed outside the database.
app.conf.beat_schedule = {
    "audit-checkpoint": {"task": "audit.checkpoint", "schedule": float(settings.AUDIT_CHECKPOINT_SECONDS)},
    "reap-operations": {"task": "apps.operations.tasks.reap_operations", "schedule": 15.0},
    "check-instances": {"task": "apps.instances.tasks.check_instances", "schedule": 60.0},
    "rotate-expiring-instance-tokens": {"task": "kinds.rotate_expiring_instance_tokens", "schedule": 3600.0},
}

# Each consuming worker refreshes a heartbeat key, so /readyz and queued operations can tell that none is.
app.steps["consumer"].add("apps.operations.workers:Heartbeat")

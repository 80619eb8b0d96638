import logging.config
import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

from django.conf import settings  # noqa: E402  (after DJANGO_SETTINGS_MODULE is set)

app = Celery("portal")


def _logging_from_settings(**_: object) -> None:
    """The worker logs through settings.LOGGING (JSON lines with the request id) instead of Celery's own format."""
    logging.config.dictConfig(settings.LOGGING)


if settings.LOG_FORMAT == "json":
    signals.setup_logging.connect(_logging_from_settings, weak=False)
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
    "run-schedules": {"task": "governance.run_schedules", "schedule": settings.SCHEDULES_BEAT_SECONDS},
}
app.conf.beat_schedule["expire-approvals"] = {"task": "governance.expire_approvals", "schedule": 60.0}

# Each consuming worker refreshes a heartbeat key, so /readyz and queued operations can tell that none is.
app.steps["consumer"].add("apps.operations.workers:Heartbeat")

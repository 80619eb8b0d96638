import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The reaper re-enqueues operations whose message was lost and re-attaches those whose worker died;
# instances are health-checked every minute; the portal's own Argo CD tokens are rotated before they expire.
app.conf.beat_schedule = {
    "reap-operations": {"task": "apps.operations.tasks.reap_operations", "schedule": 15.0},
    "check-instances": {"task": "apps.instances.tasks.check_instances", "schedule": 60.0},
    "rotate-expiring-instance-tokens": {"task": "kinds.rotate_expiring_instance_tokens", "schedule": 3600.0},
}

# Each consuming worker refreshes a heartbeat key, so /readyz and queued operations can tell that none is.
app.steps["consumer"].add("apps.operations.workers:Heartbeat")

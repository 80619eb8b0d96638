import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The reaper: re-enqueues operations whose message was lost and re-attaches those whose worker died.
app.conf.beat_schedule = {
    "reap-operations": {"task": "apps.operations.tasks.reap_operations", "schedule": 15.0},
}

"""Periodic health check of every enabled instance, so the instance pages show a recent "last seen"."""

from __future__ import annotations

from celery import shared_task

from apps.argocd import fan_out

from .models import Instance
from .services import probe_instance, save_health


@shared_task(ignore_result=True, time_limit=120, soft_time_limit=100)
def check_instances() -> int:
    """Probe every enabled instance in parallel, then record each one's health. Returns how many answered."""
    instances = {i.pk: i for i in Instance.objects.filter(enabled=True)}
    outcomes = fan_out(instances, probe_instance, deadline=60.0)
    healthy = 0
    for pk, outcome in outcomes.items():
        # probe_instance never raises; a missing value means the fan-out deadline passed first.
        result = outcome.value if outcome.ok else {"ok": False, "version": "", "error": str(outcome.error)}
        save_health(instances[pk], result)
        healthy += int(result["ok"])
    return healthy

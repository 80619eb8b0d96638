"""The app page shows the last sync's per-resource results by phase and wave, read from Argo CD."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_the_summary_box_shows_the_last_sync_by_phase_and_wave(admin_client, instance, argocd):
    name = "payments-api-dev"
    state = argocd.get_application(name)["status"]["operationState"]
    body = admin_client.get(reverse("applications:detail", args=[instance.name, name])).content.decode()
    assert "data-sync-progress" in body
    sections = re.findall(r'<section class="sync-step[^"]*" data-phase="(\w+)"(?: data-wave="(-?\d+)")?>', body)
    kinds = {r["kind"] for r in state["syncResult"]["resources"] if not r.get("hookType")}
    assert ("Sync", "-1") in sections and ("Sync", "1") in sections
    assert len(sections) >= len({"ConfigMap", "Service", "Deployment"} & kinds)
    phases = [p for p, _w in sections]
    assert phases == sorted(phases, key=["PreSync", "Sync", "PostSync", "SyncFail"].index)

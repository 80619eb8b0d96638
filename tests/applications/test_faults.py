"""A broken or slow instance: the page says what is wrong, never a 500."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.urls import reverse

from apps.instances.models import Instance
from apps.simulator.server import SimServer

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def faulty():
    server = SimServer(port=0, name="sim-faulty", apps=3, projects=2, seed=3, sync_seconds=0.2).start()
    yield server
    server.stop()


@pytest.fixture
def faulty_instance(faulty):
    faulty.faults.garbage = False
    faulty.faults.latency_ms = 0
    yield Instance.objects.create(name=faulty.name, url=faulty.url, token=faulty.portal_token(), verify_tls=False)
    faulty.faults.garbage = False
    faulty.faults.latency_ms = 0


def detail(instance, name):
    return reverse("applications:detail", args=[instance.name, name])


def test_garbage_from_the_instance_is_reported_in_the_page(admin_client, faulty, faulty_instance):
    name = faulty.state.sorted_app_keys()[0][1]
    faulty.faults.garbage = True
    response = admin_client.get(detail(faulty_instance, name))
    assert response.status_code in (502, 503)
    assert b"not Argo CD" in response.content or b"unavailable" in response.content


@override_settings(ARGOCD_TIMEOUT=(1.0, 0.3))
def test_a_slow_instance_answers_an_htmx_tab_with_the_error_as_a_fragment(admin_client, faulty, faulty_instance):
    name = faulty.state.sorted_app_keys()[0][1]
    faulty.faults.latency_ms = 2000
    response = admin_client.get(detail(faulty_instance, name) + "?tab=events", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and b"<html" not in response.content
    assert b"sim-faulty is unavailable" in response.content and b"try again" in response.content

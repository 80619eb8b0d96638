"""The open detail page follows its app: the poll partial (`live`) answers with the summary box and an open
resource tree out of band when what they show changed, and with an empty 204 when nothing did."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from apps.argocd import ArgoCDClient
from apps.instances.models import Instance

from .conftest import wait_for

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def slow_sim():
    """A simulator of this module's own whose syncs last until the test shortens them."""
    from apps.simulator.server import SimServer

    server = SimServer(port=0, name="sim-live", apps=8, projects=2, seed=5, sync_seconds=120.0).start()
    yield server
    server.stop()


@pytest.fixture
def live_instance(db, slow_sim):
    token = slow_sim.portal_token()
    return Instance.objects.create(name=slow_sim.name, url=slow_sim.url, token=token, verify_tls=False)


@pytest.fixture
def argo(slow_sim):
    with ArgoCDClient(slow_sim.url, token=slow_sim.portal_token(), name=slow_sim.name) as client:
        yield client


def manual_app(argo) -> str:
    """A seed app that only a person syncs, and whose sync succeeds."""
    return next(
        a["metadata"]["name"]
        for a in argo.list_applications()
        if not (a["spec"].get("syncPolicy") or {}).get("automated")
        and "sim/fail-sync" not in (a["metadata"].get("labels") or {})
    )


def live(client, instance, name, **params):
    return client.get(reverse("applications:live", args=[instance.name, name]), params, **HX)


def version(body: str, element: str) -> str:
    return re.search(rf'<div[^>]* id="{element}"[^>]* data-live-version="([0-9a-f]+)"', body).group(1)


def phase(argo, name) -> str:
    return ((argo.get_application(name)["status"].get("operationState") or {}).get("phase")) or ""


def test_the_poll_shows_a_sync_running_with_terminate_and_then_its_end_without_a_reload(
    admin_client, live_instance, argo, slow_sim
):
    name = manual_app(argo)
    page = admin_client.get(reverse("applications:detail", args=[live_instance.name, name])).content.decode()
    shown = version(page, "app-summary")
    assert "every 5s" in page and "Terminate operation" not in page
    assert live(admin_client, live_instance, name, v=shown).status_code == 204  # nothing changed: nothing sent
    # After a failed read the poller asks to recover: the page's parts are sent again even if unchanged.
    assert 'id="app-summary"' in live(admin_client, live_instance, name, v=shown, recover="1").content.decode()

    argo.sync_application(name)  # started by someone else, straight through Argo CD
    wait_for(lambda: phase(argo, name) == "Running")
    running = live(admin_client, live_instance, name, v=shown)
    body = running.content.decode()
    assert running.status_code == 200 and "<html" not in body
    assert re.search(r'<div id="app-summary"[^>]*hx-swap-oob="true"', body)
    assert re.search(r'Last operation: <span class="badge Running">Running</span>', body)
    assert "Terminate operation" in body and 'id="terminate-nonce"' in body
    assert re.search(r'<div id="app-live"[^>]*hx-trigger="every 2s, ', body)  # faster while the sync runs
    shown = version(body, "app-summary")
    assert live(admin_client, live_instance, name, v=shown).status_code == 204

    slow_sim.faults.sync_seconds = 0.0  # let the sync end now
    wait_for(lambda: phase(argo, name) == "Succeeded")
    done = live(admin_client, live_instance, name, v=shown).content.decode()
    assert re.search(r'Last operation: <span class="badge Succeeded">Succeeded</span>', done)
    assert "Terminate operation" not in done and "every 5s" in done


def test_the_poll_re_renders_an_open_tree_only_when_it_changed(admin_client, live_instance, argo, slow_sim):
    name = manual_app(argo)
    tab = admin_client.get(reverse("applications:detail", args=[live_instance.name, name]), {"tab": "tree"}, **HX)
    tree = version(tab.content.decode(), "app-tree")
    page = admin_client.get(reverse("applications:detail", args=[live_instance.name, name])).content.decode()
    shown = version(page, "app-summary")
    assert live(admin_client, live_instance, name, v=shown, tree=tree).status_code == 204

    slow_sim.faults.sync_seconds = 0.0
    argo.sync_application(name)
    wait_for(lambda: phase(argo, name) == "Succeeded" and argo.get_application(name)["status"]["health"])
    body = live(admin_client, live_instance, name, v=shown, tree=tree).content.decode()
    assert re.search(r'<div class="tree" id="app-tree"[^>]*hx-swap-oob="true"', body)
    assert live(admin_client, live_instance, name, v=shown).status_code == 200  # the summary changed too
    without_tree = live(admin_client, live_instance, name, v=shown).content.decode()
    assert 'id="app-tree"' not in without_tree  # a closed tree tab is not read


def test_an_app_deleted_while_its_page_is_open_says_so_and_stops_polling(admin_client, live_instance, argo):
    name = manual_app(argo)
    argo.delete_application(name, cascade=False)
    wait_for(lambda: name not in [a["metadata"]["name"] for a in argo.list_applications()])
    r = live(admin_client, live_instance, name, v="x")
    body = r.content.decode()
    assert r.status_code == 200 and f"{name} is no longer on {live_instance.name}" in body
    poller = re.search(r'<div id="app-live"[^>]*>', body).group(0)
    assert "hx-get" not in poller and 'hx-swap-oob="true"' in poller


def test_an_unreachable_instance_keeps_the_page_and_the_poll_retries(admin_client, db):
    down = Instance.objects.create(name="down", url="http://127.0.0.1:9", token="t", verify_tls=False)
    r = live(admin_client, down, "anything", v="x")
    body = r.content.decode()
    assert r.status_code == 200 and "Could not re-read anything" in body and 'id="app-summary"' not in body
    poller = re.search(r'<div id="app-live"[^>]*>', body).group(0)
    assert "hx-get" in poller and """hx-vals='{"recover": "1"}'""" in poller


def test_a_user_who_may_not_see_the_app_learns_nothing_from_the_poll(client, alice, grant, live_instance, argo):
    from apps.audit.models import AuditEvent

    grant(alice, ["view"], project="no-such-project")  # sees the instance, not this app
    client.force_login(alice)
    name = manual_app(argo)
    body = live(client, live_instance, name, v="x").content.decode()
    assert "Last operation" not in body and 'id="app-summary"' not in body and "no longer" in body
    assert AuditEvent.objects.filter(actor="alice", outcome="denied", name=name).exists()

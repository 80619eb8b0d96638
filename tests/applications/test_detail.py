"""The detail page and its tabs, read live from the simulator."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils.html import escape

from apps.instances.models import Instance

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def url(instance, name, tab=""):
    u = reverse("applications:detail", args=[instance.name, name])
    return f"{u}?tab={tab}" if tab else u


def test_detail_page_shows_the_summary_of_the_live_app(admin_client, instance, seed_apps):
    app = seed_apps["payments-api-dev"]
    response = admin_client.get(url(instance, "payments-api-dev"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "payments-api-dev" in body
    assert app["spec"]["source"]["repoURL"] in body
    assert f"badge {app['status']['sync']['status']}" in body
    assert app["status"]["summary"]["images"][0] in body
    assert 'hx-get="?tab=tree"' in body and 'href="?tab=history"' in body


def test_refresh_is_a_post_that_asks_argocd_to_reconcile(admin_client, instance, argocd):
    before = argocd.get_application("payments-api-dev")["metadata"]["resourceVersion"]
    assert admin_client.get(url(instance, "payments-api-dev") + "?refresh=hard").status_code == 200
    assert argocd.get_application("payments-api-dev")["metadata"]["resourceVersion"] == before  # a GET changes nothing
    refresh = reverse("applications:refresh", args=[instance.name, "payments-api-dev"])
    assert admin_client.get(refresh).status_code == 405
    response = admin_client.post(refresh, {"mode": "hard"}, follow=True)
    assert response.redirect_chain[-1][0] == url(instance, "payments-api-dev")
    assert "Argo CD has hard-refreshed payments-api-dev." in response.content.decode()
    assert argocd.get_application("payments-api-dev")["metadata"]["resourceVersion"] != before


def test_tree_tab_over_htmx_is_a_fragment_nesting_pods_under_their_deployment(admin_client, instance):
    response = admin_client.get(url(instance, "payments-api-dev", "tree"), **HX)
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body
    # Deployment > ReplicaSet > Pod: drawn depth first, each a column further right.
    deployment = body.index('data-kind="Deployment"')
    assert body.index('data-kind="ReplicaSet"', deployment) < body.index('data-kind="Pod"', deployment)
    assert 'class="badge Healthy"' in body


def test_each_tab_is_also_a_full_page(admin_client, instance):
    for tab in ("tree", "diff", "history", "events", "actions", "windows", "logs"):
        response = admin_client.get(url(instance, "payments-api-dev", tab))
        assert response.status_code == 200, tab
        assert b"<html" in response.content and b'id="tab"' in response.content


def test_diff_tab_shows_the_changed_line_of_an_out_of_sync_app(admin_client, instance, sim, synced_app, argocd):
    name = synced_app()
    sim.state.drift(name)
    assert argocd.get_application(name)["status"]["sync"]["status"] == "OutOfSync"
    response = admin_client.get(url(instance, name, "diff"), **HX)
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert re.search(r'<tr class="del"><td class="ln">\d+</td><td class="ln"></td><td>-  replicas:', body)
    assert re.search(r'<tr class="add"><td class="ln"></td><td class="ln">\d+</td><td>\+  replicas:', body)
    assert 'hx-target="#tab"' in body and "tab=diff&amp;diff_view=split" in body


def test_history_tab_shows_revision_metadata_newest_first(admin_client, instance, seed_apps, argocd):
    app = seed_apps["checkout-api-dev"]
    history = app["status"]["history"]
    assert len(history) > 1
    newest = history[-1]
    meta = argocd.get_revision_metadata("checkout-api-dev", newest["revision"])
    body = admin_client.get(url(instance, "checkout-api-dev", "history"), **HX).content.decode()
    assert escape(meta["author"]) in body
    assert body.index(f"<td>{newest['id']}</td>") < body.index(f"<td>{history[0]['id']}</td>")
    assert f'href="?tab=history&amp;rollback={history[0]["id"]}"' in body


def test_events_tab_lists_the_apps_kubernetes_events(admin_client, instance, fresh_app, argocd):
    name = fresh_app()
    events = argocd.list_application_events(name)
    assert events
    body = admin_client.get(url(instance, name, "events"), **HX).content.decode()
    assert events[0]["reason"] in body
    assert "<html" not in body


def test_logs_tab_shows_the_last_lines_of_a_pod(admin_client, instance, argocd):
    pods = [n for n in argocd.get_resource_tree("payments-api-dev")["nodes"] if n["kind"] == "Pod"]
    pod = pods[-1]["name"]
    lines = [
        e["content"] for e in argocd.application_logs("payments-api-dev", kind="Pod", resource_name=pod, tail_lines=5)
    ]
    response = admin_client.get(url(instance, "payments-api-dev", "logs") + f"&pod={pod}&tail=5", **HX)
    body = response.content.decode()
    assert response.status_code == 200
    assert f'<option value="{pod}" selected>' in body
    assert escape(lines[-1]) in body and escape(lines[0]) in body


def test_following_logs_puts_a_live_pane_on_the_logs_tab(admin_client, instance, argocd):
    """The stream itself is an async view, exercised over a real server in test_streams.py."""
    pod = next(n for n in argocd.get_resource_tree("payments-api-dev")["nodes"] if n["kind"] == "Pod")["name"]
    page = admin_client.get(url(instance, "payments-api-dev", "logs") + f"&pod={pod}&follow=1", **HX).content.decode()
    stream_url = reverse("applications:log_stream", args=[instance.name, "payments-api-dev"])
    assert 'id="logs-live"' in page and 'src="/static/portal/logs.js"' in page
    assert f'data-src="{stream_url}?pod={pod}' in page


def test_actions_tab_lists_deployment_actions(admin_client, instance):
    body = admin_client.get(url(instance, "payments-api-dev", "actions"), **HX).content.decode()
    assert "<html" not in body
    for action in ("restart", "pause", "scale"):
        assert f'name="action" value="{action}"' in body
    assert 'name="param_replicas"' in body


def test_sync_windows_tab_renders(admin_client, instance):
    response = admin_client.get(url(instance, "payments-api-dev", "windows"), **HX)
    assert response.status_code == 200 and b"Manual sync now" in response.content


def test_unknown_app_or_instance_is_a_404(admin_client, instance):
    assert admin_client.get(url(instance, "no-such-app")).status_code == 404
    assert admin_client.get(reverse("applications:detail", args=["nowhere", "x"])).status_code == 404


def test_an_unreachable_instance_gives_a_clear_message_not_a_500(admin_client, db):
    down = Instance.objects.create(name="down", url="http://127.0.0.1:9", token="x", verify_tls=False)
    response = admin_client.get(url(down, "anything"))
    assert response.status_code == 503
    body = response.content.decode()
    assert "down is unavailable" in body and "try again" in body
    fragment = admin_client.get(url(down, "anything", "tree"), **HX)
    assert fragment.status_code == 200 and b"<html" not in fragment.content
    assert b"down is unavailable" in fragment.content


def test_argocd_data_is_escaped(admin_client, instance, fresh_app):
    name = fresh_app(labels={"note": "<script>alert(1)</script>"})
    body = admin_client.get(url(instance, name)).content.decode()
    assert "<script>alert(1)</script>" not in body
    assert "note=&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_the_live_summary_passes_no_swap_rules_to_the_forms_inside(admin_client, instance):
    # The terminate form inside it posts to its own target; an inherited hx-select or hx-target would drop its card.
    body = admin_client.get(url(instance, "payments-api-dev")).content.decode()
    tag = re.search(r'<div id="app-summary"[^>]*>', body).group(0)
    assert "data-live-version=" in tag and "hx-" not in tag


def test_the_history_tab_reads_itself_again_when_an_operation_ends_and_the_tree_follows_the_poller(
    admin_client, instance
):
    history = admin_client.get(url(instance, "payments-api-dev", "history"), **HX).content.decode()
    assert 'hx-get="?tab=history" hx-target="#tab" hx-trigger="operation-finished from:body"' in history
    tree = admin_client.get(url(instance, "payments-api-dev", "tree"), **HX).content.decode()
    assert re.search(r'<div class="tree" id="app-tree" data-live-region data-live-version="[0-9a-f]{16}">', tree)


def test_no_template_comment_reaches_the_page(admin_client, instance):
    page = admin_client.get(reverse("applications:detail", args=[instance.name, "payments-api-dev"])).content.decode()
    assert "{#" not in page and "#}" not in page

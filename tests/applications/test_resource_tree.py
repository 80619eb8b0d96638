"""The resource tree tab as a graph (columns, edges, grouping, collapse, filters in the URL), its list, pod and
network views, and the resource panel a node opens — each part only as the user's rights allow."""

from __future__ import annotations

import re
from unittest import mock

import pytest
from django.urls import reverse

from apps.applications import graph
from apps.audit.models import AuditEvent

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}
APP = "payments-api-dev"


def tree_url(instance, app=APP, **params):
    url = reverse("applications:detail", args=[instance.name, app])
    return url + "?" + "&".join(f"{k}={v}" for k, v in {"tab": "tree", **params}.items())


def panel_url(instance, node, name=APP, part=""):
    url = reverse("applications:resource_panel", args=[instance.name, name])
    query = f"group={node.get('group', '')}&version={node.get('version', 'v1')}&kind={node['kind']}"
    query += f"&namespace={node.get('namespace', '')}&resource_name={node['name']}"
    return f"{url}?{query}" + (f"&part={part}" if part else "")


def kinds_drawn(body: str) -> list[str]:
    return re.findall(r'class="gnode[^"]*" data-kind="([^"]+)"', body)


def node_of(argocd, kind, name=APP):
    return next(n for n in argocd.get_resource_tree(name)["nodes"] if n["kind"] == kind)


def test_the_graph_draws_app_deployment_replicaset_and_pods_in_columns_joined_by_edges(admin_client, instance, argocd):
    body = admin_client.get(tree_url(instance), **HX).content.decode()
    assert "<html" not in body
    nodes = argocd.get_resource_tree(APP)["nodes"]
    drawn = kinds_drawn(body)
    assert drawn[0] == "Application"
    assert drawn.index("Deployment") < drawn.index("ReplicaSet") < drawn.index("Pod")
    # Each drawn resource hangs from its parent by one edge (the app counts as the top-level resources' parent).
    assert body.count("<path d=") == len(drawn) - 1 == len(nodes)
    x = {
        k: int(v)
        for v, k in re.findall(
            r'<foreignObject x="(\d+)" y="\d+"[^>]*>\s*<div class="gnode[^"]*" data-kind="([^"]+)"', body
        )
    }
    assert x["Application"] < x["Deployment"] < x["ReplicaSet"] < x["Pod"]  # left to right, one column per level
    assert re.search(r'<span class="badge (Synced|OutOfSync)">', body)  # sync badges from status.resources


def test_a_filter_by_kind_keeps_the_matches_and_their_ancestors_and_stays_in_the_urls(admin_client, instance):
    body = admin_client.get(tree_url(instance, kind="Pod"), **HX).content.decode()
    assert set(kinds_drawn(body)) == {"Application", "Deployment", "ReplicaSet", "Pod"}
    assert "ConfigMap" not in kinds_drawn(body)
    assert "(filtered)" in body
    assert 'data-live-query="tab=tree&amp;view=graph&amp;kind=Pod"' in body  # the poller re-reads the same view
    by_name = admin_client.get(tree_url(instance, name="config"), **HX).content.decode()
    assert set(kinds_drawn(by_name)) == {"Application", "ConfigMap"}
    none = admin_client.get(tree_url(instance, health="Suspended", sync="Synced"), **HX).content.decode()
    assert kinds_drawn(none) == ["Application"]


def test_collapsing_a_deployment_hides_its_descendants_and_counts_them(admin_client, instance, argocd):
    deploy = node_of(argocd, "Deployment")
    pods = [n for n in argocd.get_resource_tree(APP)["nodes"] if n["kind"] == "Pod"]
    open_body = admin_client.get(tree_url(instance), **HX).content.decode()
    assert f"collapse={deploy['uid']}" in open_body  # the toggle's link
    body = admin_client.get(tree_url(instance, collapse=deploy["uid"]), **HX).content.decode()
    assert "ReplicaSet" not in kinds_drawn(body) and "Pod" not in kinds_drawn(body)
    assert f'<span class="badge">+{len(pods) + 1}</span>' in body
    assert f'aria-label="Expand Deployment {deploy["name"]}"' in body


def test_many_pods_of_one_replicaset_are_one_group_node_until_expanded():
    pods = [{"kind": "Pod", "name": f"p{i}", "uid": f"p{i}", "parentRefs": [{"uid": "rs"}],
             "health": {"status": "Healthy" if i else "Degraded"}} for i in range(9)]  # fmt: skip
    tree = {"nodes": [{"kind": "ReplicaSet", "group": "apps", "name": "rs", "uid": "rs"}, *pods]}
    app = {"metadata": {"name": "a"}, "status": {}}
    drawn = graph.graph(tree, app, graph.Filters())
    group = next(i for i in drawn["items"] if i.is_group)
    assert group.name == "9 Pods" and group.health_counts == [("Degraded", 1), ("Healthy", 8)]
    assert "expand=rs%3APod" in group.toggle_query
    assert drawn["shown"] == 10
    expanded = graph.graph(tree, app, graph.Filters(expand={"rs:Pod"}))
    assert [i.kind for i in expanded["items"]].count("Pod") == 9 and not any(i.is_group for i in expanded["items"])


def test_a_parent_loop_in_a_broken_answer_still_draws_every_node():
    tree = {"nodes": [{"kind": "A", "name": "a", "uid": "1", "parentRefs": [{"uid": "2"}]},
                      {"kind": "B", "name": "b", "uid": "2", "parentRefs": [{"uid": "1"}]}]}  # fmt: skip
    drawn = graph.graph(tree, {"metadata": {"name": "x"}}, graph.Filters())
    assert sorted(i.kind for i in drawn["items"]) == ["A", "Application", "B"]


def test_the_list_pods_and_network_views(admin_client, instance, argocd):
    nodes = argocd.get_resource_tree(APP)["nodes"]
    listed = admin_client.get(tree_url(instance, view="list"), **HX).content.decode()
    assert listed.count("<tr data-kind=") == len(nodes)
    pods = admin_client.get(tree_url(instance, view="pods"), **HX).content.decode()
    node_names = {i["value"] for n in nodes if n["kind"] == "Pod" for i in n["info"] if i["name"] == "Node"}
    assert all(f"<strong>{name}</strong>" in pods for name in node_names)
    assert pods.count('class="muted node-usage">cpu: 250m by this app, 1750m by others, of 4000m<') == len(node_names)
    by_parent = admin_client.get(tree_url(instance, view="pods", group="parent"), **HX).content.decode()
    rs = next(n for n in nodes if n["kind"] == "ReplicaSet")
    assert f"<strong>ReplicaSet {rs['name']}</strong>" in by_parent
    network = admin_client.get(tree_url(instance, view="network"), **HX).content.decode()
    assert set(kinds_drawn(network)) == {"Service", "Pod"}
    assert network.count("<path d=") == sum(1 for n in nodes if n["kind"] == "Pod")  # the service selects each pod


def test_clicking_a_node_opens_the_panel_with_summary_and_live_manifest(admin_client, instance, argocd):
    deploy = node_of(argocd, "Deployment")
    summary = admin_client.get(panel_url(instance, deploy), **HX)
    assert summary.status_code == 200
    body = summary.content.decode()
    assert "<html" not in body and "data-resource-panel" in body and deploy["uid"] in body
    for label in ("Live manifest", "Desired manifest", "Diff", "Events", "Logs", "Actions"):
        assert f">{label}</a>" in body
    live = admin_client.get(panel_url(instance, deploy, part="live"), **HX).content.decode()
    assert 'data-manifest="live"' in live and "kind: Deployment" in live and f"name: {deploy['name']}" in live
    desired = admin_client.get(panel_url(instance, deploy, part="desired"), **HX).content.decode()
    assert 'data-manifest="desired"' in desired and "argocd.argoproj.io/sync-wave" in desired
    pod = node_of(argocd, "Pod")
    logs = admin_client.get(panel_url(instance, pod, part="logs"), **HX).content.decode()
    assert f"tab=logs&amp;pod={pod['name']}" in logs
    not_managed = admin_client.get(panel_url(instance, pod, part="desired"), **HX).content.decode()
    assert "there is no desired manifest" in not_managed
    actions = admin_client.get(panel_url(instance, deploy, part="actions"), **HX).content.decode()
    assert "restart" in actions and 'name="delete_resource"' in actions


def test_the_panel_is_also_a_page_of_its_own(admin_client, instance, argocd):
    deploy = node_of(argocd, "Deployment")
    response = admin_client.get(panel_url(instance, deploy))
    assert response.status_code == 200 and "<html" in response.content.decode()


def test_a_viewer_sees_no_actions_or_logs_and_cannot_ask_for_them(client, alice, instance, argocd, grant):
    grant(alice, ["view"])
    client.force_login(alice)
    pod = node_of(argocd, "Pod")
    body = client.get(panel_url(instance, pod), **HX).content.decode()
    assert ">Live manifest</a>" in body and ">Logs</a>" not in body and ">Actions</a>" not in body
    actions = client.get(panel_url(instance, pod, part="actions"), **HX).content.decode()
    assert 'name="delete_resource"' not in actions and "Sync status" in actions  # falls back to the summary
    assert client.get(panel_url(instance, pod, part="logs"), **HX).status_code == 403


def test_an_unknown_resource_is_a_404_and_audited(admin_client, instance, admin_user):
    node = {"kind": "Secret", "name": "not-there", "namespace": "payments"}
    response = admin_client.get(panel_url(instance, node))
    assert response.status_code == 404
    event = AuditEvent.objects.filter(kind="resource", outcome="denied").latest("id")
    assert event.name == f"{APP}:Secret/not-there" and event.request == {"path": mock.ANY, "request_id": mock.ANY}


def test_a_link_without_the_resource_says_so(admin_client, instance):
    url = reverse("applications:resource_panel", args=[instance.name, APP]) + "?kind=Pod"
    response = admin_client.get(url, **HX)
    assert response.status_code == 200 and "Which resource?" in response.content.decode()


def test_secret_values_are_masked_in_the_panel():
    from apps.applications.panel import MASK, _masked

    secret = {"kind": "Secret", "metadata": {"name": "s"}, "data": {"password": "c2VjcmV0"}, "stringData": {"a": "b"}}
    masked = _masked(secret)
    assert masked["data"] == {"password": MASK} and masked["stringData"] == {"a": MASK}
    assert secret["data"]["password"] == "c2VjcmV0"  # the original is untouched


def test_the_pages_poll_re_renders_the_tree_with_the_filters_the_tab_shows(admin_client, instance):
    live = reverse("applications:live", args=[instance.name, APP])
    body = admin_client.get(live, {"v": "stale", "tree": "stale", "view": "graph", "kind": "Pod"}, **HX)
    html = body.content.decode()
    assert re.search(r'<div class="tree" id="app-tree"[^>]*hx-swap-oob="true"', html)
    assert set(kinds_drawn(html)) == {"Application", "Deployment", "ReplicaSet", "Pod"}
    assert 'aria-label="Kind"' not in html  # the filter form is not re-sent: someone may be typing in it


def test_an_unreachable_instance_gives_the_panel_a_message_not_a_500(admin_client, db):
    from apps.instances.models import Instance

    down = Instance.objects.create(name="down", url="http://127.0.0.1:9", token="x", verify_tls=False)
    response = admin_client.get(panel_url(down, {"kind": "Pod", "name": "p"}, name="anything"), **HX)
    assert response.status_code == 200 and b"down is unavailable" in response.content


def test_the_boxes_escape_what_argocd_sends():
    hostile = '<img src=x onerror=alert(1)>"'
    tree = {"nodes": [{"kind": "ConfigMap", "name": hostile, "uid": "u", "namespace": '"><b>'}]}
    drawn = graph.graph(tree, {"metadata": {"name": "<script>"}}, graph.Filters())
    html = graph.boxes_html(drawn["items"], "/panel/", drawn)
    assert "<img" not in html and "<script>" not in html and '"><b>' not in html
    assert "&lt;img src=x onerror=alert(1)&gt;&quot;" in html

"""The resource tree graph in headless Chromium: it draws nodes and edges, a filter hides nodes (and stays in
the URL), a collapsed Deployment hides its pods, and clicking a node opens the panel with its live manifest."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def tree_page(page, admin_user, e2e_instance):
    from apps.argocd import ArgoCDClient

    with e2e_instance.client() as argo:
        assert isinstance(argo, ArgoCDClient)
        name = next(a["metadata"]["name"] for a in argo.list_applications() if a["metadata"]["name"].endswith("-dev"))
        nodes = argo.get_resource_tree(name)["nodes"]
    login(page, "root", "root-password-123")
    page.goto(f"/applications/{e2e_instance.name}/{name}/")
    expect(page.locator("#app-tree .gnode").first).to_be_visible()
    return name, nodes


def test_the_graph_draws_nodes_and_edges_a_filter_hides_nodes_and_a_node_opens_its_panel(page, shot, tree_page):
    name, nodes = tree_page
    drawn = page.locator("#app-tree .gnode")
    expect(drawn).to_have_count(len(nodes) + 1)  # and the app itself
    expect(page.locator("#app-tree .tree-edges path")).to_have_count(len(nodes))
    app_box = page.locator('#app-tree .gnode[data-kind="Application"]').bounding_box()
    pod_box = page.locator('#app-tree .gnode[data-kind="Pod"]').first.bounding_box()
    assert app_box and pod_box and app_box["width"] > 100 and pod_box["x"] > app_box["x"] + 3 * 250
    shot(page, "tree-graph.png")

    page.get_by_label("Kind").select_option("ConfigMap")
    expect(page).to_have_url(re.compile(r"[?&]kind=ConfigMap"))
    expect(page.locator('#app-tree .gnode[data-kind="Pod"]')).to_have_count(0)
    expect(page.locator('#app-tree .gnode[data-kind="ConfigMap"]')).to_have_count(1)
    expect(drawn).to_have_count(2)
    shot(page, "tree-filtered.png")

    page.get_by_role("button", name="Clear").click()
    expect(drawn).to_have_count(len(nodes) + 1)
    deploy = next(n for n in nodes if n["kind"] == "Deployment")
    page.get_by_label(f"Collapse Deployment {deploy['name']}").click()
    expect(page.locator('#app-tree .gnode[data-kind="Pod"]')).to_have_count(0)
    expect(page).to_have_url(re.compile(rf"collapse={deploy['uid']}"))
    page.get_by_label(f"Expand Deployment {deploy['name']}").click()
    expect(page.locator('#app-tree .gnode[data-kind="Pod"]').first).to_be_visible()

    page.locator('#app-tree .gnode[data-kind="Deployment"] a.gname').click()
    panel = page.locator("#resource-panel")
    expect(panel.locator("[data-resource-panel]")).to_be_visible()
    expect(panel).to_contain_text(deploy["uid"])
    panel.get_by_role("link", name="Live manifest").click()
    expect(panel.locator('pre[data-manifest="live"]')).to_contain_text("kind: Deployment")
    expect(panel.locator('pre[data-manifest="live"]')).to_contain_text(f"name: {deploy['name']}")
    shot(page, "tree-panel.png")
    panel.get_by_role("link", name="Diff").click()
    expect(panel.locator("table.diff, p.muted").first).to_be_visible()
    page.get_by_label("Close the resource panel").click()
    expect(panel.locator("[data-resource-panel]")).to_have_count(0)


def test_the_pod_view_groups_pods_by_node(page, shot, tree_page):
    _name, nodes = tree_page
    page.get_by_label("View").select_option("pods")
    expect(page).to_have_url(re.compile(r"view=pods"))
    groups = {i["value"] for n in nodes if n["kind"] == "Pod" for i in n.get("info", []) if i["name"] == "Node"}
    expect(page.locator(".pod-group")).to_have_count(len(groups))
    expect(page.locator(".pod-tile")).to_have_count(sum(1 for n in nodes if n["kind"] == "Pod"))
    shot(page, "tree-pods.png")

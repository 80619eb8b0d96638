"""The create form helps in headless Chromium: it offers the instance's repositories and clusters, suggests the
paths and branches of the chosen repository, loads a chart's values.yaml, switches instance in place, and the
app it creates carries what was loaded and edited."""

from __future__ import annotations

import re

import pytest
import yaml
from playwright.sync_api import expect

from apps.simulator.seed import HELM_REPO, team_repo

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_create_form_offers_suggests_loads_the_chart_and_creates(page, shot, admin_user, e2e_sim, e2e_instance):
    from apps.audit.models import AuditEvent
    from apps.instances.models import Instance

    token = e2e_sim.portal_token()
    other = Instance.objects.create(name="argocd-other", url=e2e_sim.url, token=token, verify_tls=False)
    project = sorted(e2e_sim.state.projects)[1]
    login(page, "root", "root-password-123")
    page.goto(f"/applications/new/?instance={e2e_instance.name}")

    # What the instance knows, offered as the user types.
    repos = page.locator("#repos-list option")
    expect(repos).to_have_count(len(e2e_sim.state.repos))
    expect(page.locator('#servers-list option[value="https://prod-eu.k8s.example.com:6443"]')).to_have_count(1)
    expect(page.get_by_label("Repository URL")).to_have_attribute("list", "repos-list")

    # A git repository: its paths and branches come from Argo CD once it is chosen.
    page.get_by_label("Repository URL").fill(team_repo(project))
    page.get_by_label("Repository URL").press("Tab")
    expect(page.locator("#source-note")).to_contain_text("paths")
    expect(page.locator('#paths-list option[value="apps/api"]')).to_have_count(1)
    expect(page.locator('#revisions-list option[value="release-1.x"]')).to_have_count(1)

    # A Helm repository: its charts, the chosen chart's versions, then the chart's values loaded into the form.
    page.get_by_label("Repository URL").fill(HELM_REPO)
    page.get_by_label("Chart").fill("web")
    page.get_by_label("Chart").press("Tab")
    expect(page.locator('#charts-list option[value="worker"]')).to_have_count(1)
    expect(page.locator('#revisions-list option[value="1.2.3"]')).to_have_count(1)
    page.get_by_label("Target revision").fill("1.2.3")
    page.locator("#helm-fields summary").click()
    page.get_by_label("Helm release name").fill("web-e2e")
    page.get_by_role("button", name="Load values from the chart").click()
    values = page.get_by_label("Helm values (YAML)")
    expect(values).to_have_value(re.compile(r"repository: registry\.example\.com/web"))
    expect(page.locator("#chart-parameters")).to_contain_text("image.tag")
    expect(page.get_by_label("Helm release name")).to_have_value("web-e2e")  # what was typed stays
    expect(page.get_by_label("Source type")).to_have_value("helm")
    shot(page, "create-form-helm-loaded.png")

    values.fill(values.input_value().replace("replicaCount: 1", "replicaCount: 3"))
    page.get_by_label("Name", exact=True).fill("web-e2e")
    page.get_by_label("Project").select_option(project)
    page.get_by_label("Dest namespace").fill("web-e2e")
    page.get_by_role("button", name="Create", exact=True).click()
    expect(page).to_have_url(re.compile(r"/applications/.+/web-e2e/"))
    source = e2e_sim.state.apps[("argocd", "web-e2e")].obj["spec"]["source"]
    assert source["chart"] == "web" and source["targetRevision"] == "1.2.3"
    assert yaml.safe_load(source["helm"]["values"])["replicaCount"] == 3
    assert AuditEvent.objects.filter(action="create", name="web-e2e", outcome="succeeded").exists()

    # Switching instance re-renders the form in place, for the other instance, with the URL to match.
    page.goto(f"/applications/new/?instance={e2e_instance.name}")
    page.locator("#instance-switch select").select_option(other.name)
    expect(page.locator("#create-page form[method=post]").first).to_have_attribute("action", f"?instance={other.name}")
    expect(page).to_have_url(re.compile(rf"instance={other.name}"))
    expect(page.locator("#repos-list option")).to_have_count(len(e2e_sim.state.repos))
    shot(page, "create-form-switched.png")

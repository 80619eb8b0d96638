"""The create form offers what the instance knows: repositories, clusters, projects; a repository's paths and
revisions; a chart's values and parameters. Reads only; refused users get 403 and an audit event."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.simulator.seed import HELM_REPO, team_repo

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def test_the_form_offers_the_instances_repositories_and_clusters(client, alice, grant, instance, argocd):
    grant(alice, ["create"], project="payments")
    client.force_login(alice)
    page = client.get(reverse("applications:create") + f"?instance={instance.name}").content.decode()
    assert f'<option value="{team_repo("payments")}">' in page
    assert f'<option value="{HELM_REPO}">' in page
    cluster = next(c for c in argocd.list_clusters() if c["server"] != "https://kubernetes.default.svc")
    assert f'<option value="{cluster["server"]}">{cluster["name"]}</option>' in page
    assert 'list="repos-list"' in page and 'list="servers-list"' in page
    assert '<option value="payments">payments</option>' in page and "checkout" not in page.split("id_project")[1][:200]


def test_switching_the_instance_answers_the_form_as_a_fragment(client, alice, grant, instance):
    grant(alice, ["create"], project="payments")
    client.force_login(alice)
    response = client.get(reverse("applications:create") + f"?instance={instance.name}", **HX)
    body = response.content.decode()
    assert response.status_code == 200 and body.lstrip().startswith('<div id="create-page">')
    assert "<html" not in body


def test_a_git_repository_suggests_its_branches_tags_and_paths(client, alice, grant, instance):
    grant(alice, ["create"], project="payments")
    client.force_login(alice)
    url = reverse("applications:create_source")
    body = client.get(url, {"instance": instance.name, "repo_url": team_repo("payments")}, **HX).content.decode()
    assert '<option value="main"></option>' in body and '<option value="v1.2.0"></option>' in body
    assert '<option value="apps/api"></option>' in body  # a path Argo CD finds in the repository
    assert "paths" in body and "revisions" in body


def test_a_helm_repository_suggests_its_charts_and_the_chosen_charts_versions(client, alice, grant, instance):
    grant(alice, ["create"], project="payments")
    client.force_login(alice)
    url = reverse("applications:create_source")
    body = client.get(url, {"instance": instance.name, "repo_url": HELM_REPO, "chart": "web"}, **HX).content.decode()
    assert '<option value="web"></option>' in body and '<option value="1.2.3"></option>' in body


def test_an_unknown_repository_says_what_argo_cd_answered(client, alice, grant, instance):
    grant(alice, ["create"], project="payments")
    client.force_login(alice)
    url = reverse("applications:create_source")
    response = client.get(url, {"instance": instance.name, "repo_url": "https://unreachable.example/x.git"}, **HX)
    body = response.content.decode()
    assert response.status_code == 200 and 'role="alert"' in body and "repository not found" in body
    assert '<option value="main">' not in body


def test_loading_a_chart_fills_the_values_and_lists_its_parameters(client, alice, grant, instance):
    grant(alice, ["create"], project="payments")
    client.force_login(alice)
    query = {"instance": instance.name, "repo_url": HELM_REPO, "chart": "api", "target_revision": "1.1.0"}
    query["helm_release_name"] = "kept-as-typed"
    body = client.get(reverse("applications:create_helm"), query, **HX).content.decode()
    assert "repository: registry.example.com/api" in body and "tag: &quot;1.1.0&quot;" in body
    assert "<code>image.tag</code></td><td><code>1.1.0</code>" in body
    assert 'value="kept-as-typed"' in body
    assert '<option value="helm" selected>' in body and 'hx-swap-oob="true"' in body


def test_a_chart_that_does_not_exist_is_a_message_not_an_error_page(client, alice, grant, instance):
    grant(alice, ["create"], project="payments")
    client.force_login(alice)
    query = {"instance": instance.name, "repo_url": HELM_REPO, "chart": "nope", "target_revision": "1.0.0"}
    response = client.get(reverse("applications:create_helm"), query, **HX)
    body = response.content.decode()
    assert response.status_code == 200 and "chart &quot;nope&quot; version &quot;1.0.0&quot; not found" in body


def test_a_plain_directory_is_not_taken_for_a_chart(client, alice, grant, instance):
    grant(alice, ["create"], project="payments")
    client.force_login(alice)
    query = {"instance": instance.name, "repo_url": team_repo("payments"), "path": "apps/api"}
    body = client.get(reverse("applications:create_helm"), query, **HX).content.decode()
    assert "Argo CD finds a Directory source there, not a Helm chart." in body


def test_a_user_who_may_not_create_gets_no_suggestions_and_is_audited(client, alice, grant, instance):
    grant(alice, ["view"])
    client.force_login(alice)
    url = reverse("applications:create_source")
    response = client.get(url, {"instance": instance.name, "repo_url": team_repo("payments")}, **HX)
    assert response.status_code == 403 and "revisions-list" not in response.content.decode()
    event = AuditEvent.objects.get(action="create")
    assert event.outcome == "denied" and event.instance == instance.name

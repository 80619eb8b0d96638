"""The repository form asks how the repository authenticates and sends only that method's fields."""

from __future__ import annotations

from urllib.parse import quote

import pytest

pytestmark = pytest.mark.django_db
NEW = "/kinds/repositories/sim-k/new/"
SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA-body\n-----END OPENSSH PRIVATE KEY-----"


def test_the_new_form_offers_the_methods_and_marks_each_methods_fields(admin_client, argo):
    body = admin_client.get(NEW).content.decode()
    assert '<select name="auth_method"' in body and "data-auth-select" in body
    assert '<option value="https" selected>' in body
    for method, group in (("https", "HTTPS"), ("ssh", "SSH"), ("github", "GitHub App"), ("gcp", "GCP")):
        assert f'<fieldset data-auth="{method}"><legend><strong>{group}</strong>' in body
    assert "<fieldset><legend><strong>Network</strong>" in body  # not an authentication method: always shown
    assert "portal/kind_form.js" in body


def test_only_the_chosen_methods_fields_reach_argo_cd(admin_client, argo, sim, unique):
    repo = f"git@git.example.com:org/{unique}.git"
    data = {"repo": repo, "type": "git", "auth_method": "ssh", "sshPrivateKey": SSH_KEY}
    data.update(username="left-over", password="typed-before-switching", githubAppId="12")  # fields now hidden
    response = admin_client.post(NEW, data)
    assert response.status_code == 302
    stored = sim.state.repos[repo]
    assert stored["sshPrivateKey"] == SSH_KEY
    assert not stored.get("username") and not stored.get("password") and not stored.get("githubAppID")


def test_an_edit_opens_on_the_repositorys_method_and_switching_removes_the_old_credentials(
    admin_client, argo, sim, unique
):
    repo = f"https://git.example.com/org/{unique}.git"
    data = {"repo": repo, "type": "git", "auth_method": "https", "username": "bot", "password": "pw-1"}
    assert admin_client.post(NEW, data).status_code == 302
    edit = f"/kinds/repositories/sim-k/{quote(repo, safe='')}/edit/"
    assert '<option value="https" selected>' in admin_client.get(edit).content.decode()
    response = admin_client.post(edit, {"type": "git", "auth_method": "none", "username": "bot"})
    assert response.status_code == 302
    stored = sim.state.repos[repo]
    assert not stored.get("username") and not stored.get("password")
    assert '<option value="none" selected>' in admin_client.get(edit).content.decode()

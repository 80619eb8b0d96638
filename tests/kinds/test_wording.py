"""Wording on the resource pages: what a dialog rotates, what a project is for, which settings are secrets."""

from __future__ import annotations

import pytest

from .test_projects import make

pytestmark = pytest.mark.django_db


def test_the_rotate_dialog_names_the_token_and_the_instance(admin_client, argo):
    body = admin_client.get("/kinds/settings/sim-k/settings/").content.decode()
    assert "Rotate the portal&#x27;s API token in sim-k?" in body
    assert "token: settings" not in body


def test_the_password_pattern_setting_is_shown_it_is_not_a_secret(admin_client, argo):
    body = admin_client.get("/kinds/settings/sim-k/settings/").content.decode()
    assert "passwordPattern" in body and "^.{8,32}$" in body


def test_a_secret_looking_setting_stays_masked():
    from apps.audit.chain import redact

    assert redact({"passwordPattern": "^.{8,32}$", "password": "p", "adminPassword": "x"}) == {
        "passwordPattern": "^.{8,32}$", "password": "***", "adminPassword": "***"
    }  # fmt: skip


def test_the_project_page_shows_its_description(admin_client, argo, unique):
    name = f"d-{unique}"
    assert make(admin_client, name, description="Payments team: card processing").status_code == 302
    body = admin_client.get(f"/kinds/projects/sim-k/{name}/").content.decode()
    assert '<p class="object-description">Payments team: card processing</p>' in body

"""Fixtures for the REST API: the session simulator as an Instance, personas with grants, and tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.identity.tokens import ApiToken, digest, new_secret
from tests.applications.conftest import argocd, fresh_app, grant, instance, seed_apps, wait_for  # noqa: F401


@pytest.fixture
def make_token(db):
    """A token of `user` made directly (the page that makes them is tested on its own); returns its secret."""

    def make(user, actions=("view",), *, instances="*", project="*", app="*", days=30, **fields) -> str:
        secret = new_secret()
        ApiToken.objects.create(
            user=user, name=f"token of {user.username}", digest=digest(secret), hint=secret[:10],
            actions=list(actions), instance_glob=instances, project_glob=project, app_glob=app,
            expires_at=timezone.now() + timedelta(days=days), **fields,
        )  # fmt: skip
        return secret

    return make


class ApiClient:
    """A Django test client that speaks to /api/ with a bearer token and JSON bodies, and no session."""

    def __init__(self, secret: str) -> None:
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {secret}"}

    def get(self, path: str, **params):
        return self.client.get(path, params, headers=self.headers)

    def post(self, path: str, body: dict | None = None):
        return self.client.post(path, body or {}, content_type="application/json", headers=self.headers)


@pytest.fixture
def api():
    return ApiClient

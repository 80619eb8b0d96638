from __future__ import annotations

import json

import pytest
from django.test import Client

from apps.audit.models import AuditEvent


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The personas' passwords are hashed on every test; the production hasher's cost buys nothing here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def logged_in(username: str, password: str) -> Client:
    """A browser-like client with a real session made by the login form."""
    client = Client()
    response = client.post("/login/", {"username": username, "password": password})
    assert response.status_code == 302, f"{username} could not log in"
    return client


def is_logged_in(client: Client) -> bool:
    response = client.get("/account/password/")
    return response.status_code == 200


def event_text(event: AuditEvent) -> str:
    return json.dumps({f.name: str(getattr(event, f.name)) for f in AuditEvent._meta.fields})

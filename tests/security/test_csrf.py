"""Every POST to every route of the portal needs a CSRF token."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern, RoutePattern

pytestmark = pytest.mark.django_db

# Routes that may take a POST without a CSRF token, each with the reason. Keep it empty unless a
# machine (not a browser) must post to the portal, and then authenticate that route otherwise.
CSRF_EXEMPT: dict[str, str] = {}
# The REST API reads no session cookie: a bearer token is its only credential, so a forged browser POST carries
# nothing it accepts. There a POST without a token is refused 401 (or 405 where the route takes no POST).
API_PREFIX, API_REFUSALS = "/api/", {401, 405}

SAMPLE = {"str": "x", "slug": "x", "int": "1", "path": "x", "uuid": str(uuid.uuid4())}
REGEX_CHARS = set("()[]{}*+?|\\")


def routes(resolver=None, prefix: str = ""):
    """Concrete paths for every route: converters filled with sample values; regex groups skipped."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        pattern = entry.pattern
        if isinstance(pattern, RoutePattern):
            part = str(pattern)
            for name, converter in pattern.converters.items():
                kind = next((k for k, v in _converter_types().items() if isinstance(converter, v)), "str")
                part = _fill(part, name, SAMPLE[kind])
        elif isinstance(pattern, RegexPattern):
            part = str(pattern).lstrip("^").rstrip("$").replace("\\Z", "")
            if pattern.regex.groups or REGEX_CHARS & set(part):
                continue
        else:
            continue
        if isinstance(entry, URLResolver):
            yield from routes(entry, prefix + part)
        elif isinstance(entry, URLPattern):
            yield "/" + prefix + part


def _converter_types():
    from django.urls import converters

    return {
        "int": converters.IntConverter,
        "slug": converters.SlugConverter,
        "uuid": converters.UUIDConverter,
        "path": converters.PathConverter,
        "str": converters.StringConverter,
    }


def _fill(route: str, name: str, value: str) -> str:
    import re

    return re.sub(r"<(?:\w+:)?" + name + ">", value, route)


def test_the_route_walk_finds_the_portals_routes():
    found = set(routes())
    assert {"/login/", "/logout/", "/audit/", "/audit/export.csv", "/audit/1/", "/users/"} <= found


@pytest.mark.parametrize("as_admin", [True, False], ids=["logged-in admin", "anonymous"])
def test_every_post_without_a_csrf_token_is_refused(admin_user, as_admin):
    client = Client(enforce_csrf_checks=True)
    if as_admin:
        client.force_login(admin_user)
    accepted = {}
    for path in sorted(set(routes())):
        if path in CSRF_EXEMPT:
            continue
        status = client.post(path, {"name": "x", "confirm": "x"}).status_code
        if status != 403 and not (path.startswith(API_PREFIX) and status in API_REFUSALS):
            accepted[path] = status
    assert accepted == {}, "these routes took a POST without a CSRF token"


def test_a_post_with_the_token_gets_through(admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    client.get("/audit/")
    token = client.cookies["csrftoken"].value
    assert client.post("/logout/", headers={"X-CSRFToken": token}).status_code == 302

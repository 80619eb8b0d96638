"""Every answer carries a Content-Security-Policy that lets only the portal's own files run and style pages,
and the templates hold nothing that such a policy would block."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
EXPECTED = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def policy(response) -> dict[str, str]:
    header = response.headers.get("Content-Security-Policy", "")
    assert header, f"no Content-Security-Policy on {response.status_code} {response.request['PATH_INFO']}"
    directives = (part.strip().split(None, 1) for part in header.split(";") if part.strip())
    return {d[0]: d[1] if len(d) > 1 else "" for d in directives}


@pytest.mark.django_db
def test_pages_partials_and_probes_carry_the_policy(client, alice):
    assert policy(client.get("/login/")) == EXPECTED
    assert policy(client.get("/readyz")) == EXPECTED
    client.force_login(alice)
    home = client.get("/")
    assert home.status_code == 200 and policy(home) == EXPECTED
    partial = client.get("/applications/", headers={"HX-Request": "true"})
    assert partial.status_code == 200 and policy(partial) == EXPECTED


@pytest.mark.django_db
def test_error_pages_carry_the_policy(client, alice, settings):
    settings.DEBUG = False
    client.force_login(alice)
    refused = client.get("/instances/new/")  # platform admins only
    assert refused.status_code == 403 and policy(refused) == EXPECTED
    missing = client.get("/no/such/page/")
    assert missing.status_code == 404 and policy(missing) == EXPECTED
    wrong_method = client.get("/logout/")
    assert wrong_method.status_code == 405 and policy(wrong_method) == EXPECTED

    settings.ROOT_URLCONF = "tests.core.test_hygiene"  # one view that raises
    client.raise_request_exception = False
    crashed = client.get("/boom/")
    assert crashed.status_code == 500 and policy(crashed) == EXPECTED


@pytest.mark.django_db
def test_the_policy_forbids_framing_in_browsers_that_only_know_the_old_header(client):
    response = client.get("/login/")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert policy(response)["frame-ancestors"] == "'none'"


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "inline <script>"),
    (re.compile(r"<style\b", re.I), "<style> block"),
    (re.compile(r"\sstyle=", re.I), 'style="" attribute'),
    (re.compile(r"\shx-on[:-]", re.I), "hx-on attribute (needs eval)"),
    (re.compile(r"\son[a-z]+=", re.I), "inline event handler"),
    # A filter follows an event name ("every 10s [cond]", "click[ctrlKey]"); "from:input[type=search]" is a selector.
    (re.compile(r'hx-trigger="(?:[^"]*[\s,])?(?:every\s+\S+\s*|[a-z][\w.-]*)\[', re.I), "hx-trigger filter (eval)"),
    (re.compile(r"hx-va(ls|rs)=[\"']\s*js:", re.I), "js: values (need eval)"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
]


def test_templates_hold_nothing_the_policy_blocks():
    found = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        text = path.read_text(encoding="utf-8")
        for pattern, what in INLINE:
            found += [f"{path.relative_to(TEMPLATES)}: {what}: {m.group(0)!r}" for m in pattern.finditer(text)]
    assert not found, "\n".join(found)

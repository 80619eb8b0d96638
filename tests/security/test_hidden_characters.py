"""Right-to-left and zero-width characters from Argo CD are shown, never obeyed, on every page; editors keep them."""

from __future__ import annotations

import contextlib
import html
import json
import re
import uuid

import pytest
import yaml

from apps.argocd import ArgoCDClient, errors
from apps.core.hidden_chars import reveal_html
from apps.index.indexer import resync
from apps.instances.models import Instance

pytestmark = pytest.mark.django_db
RLO, ZWSP = "\u202e", "\u200b"
RLO_MARK = '<span class="hidden-char" title="U+202E RIGHT-TO-LEFT OVERRIDE">⟪U+202E⟫</span>'
ZWSP_MARK = '<span class="hidden-char" title="U+200B ZERO WIDTH SPACE">⟪U+200B⟫</span>'
SPOOF = f"pay{RLO}nimda{ZWSP}"  # reads "payadmin" with the override obeyed


@pytest.fixture
def instance(sim):
    return Instance.objects.create(name=sim.name, url=sim.url, token=sim.portal_token(), verify_tls=False)


@pytest.fixture(scope="module")
def argocd(sim):
    with ArgoCDClient(sim.url, token=sim.portal_token(), name=sim.name) as client:
        yield client


@pytest.fixture
def spoofing_app(argocd):
    model = next(a for a in argocd.list_applications() if a["metadata"]["name"].endswith("-dev"))
    name = f"hc-{uuid.uuid4().hex[:6]}"
    spec = {**model["spec"], "source": {**model["spec"]["source"], "path": f"apps/{SPOOF}"}}
    meta = {"name": name, "namespace": "argocd", "labels": {"team": SPOOF}, "annotations": {"note": SPOOF}}
    argocd.create_application({"metadata": meta, "spec": spec})
    yield name
    with contextlib.suppress(errors.ArgoCDError):
        argocd.delete_application(name, cascade=False)


@pytest.fixture
def spoofing_project(argocd):
    name = f"hc-{uuid.uuid4().hex[:6]}"
    spec = {
        "description": SPOOF,
        "sourceRepos": ["*"],
        "destinations": [{"server": "https://kubernetes.default.svc", "namespace": SPOOF}],
    }
    body = {"metadata": {"name": name, "labels": {"team": SPOOF}}, "spec": spec}
    argocd.create_project(body)
    yield name
    with contextlib.suppress(errors.ArgoCDError):
        argocd.delete_project(name)


def shown(body: str) -> str:
    """The page without its <script>, <style> and form fields (which keep what they hold, by design)."""
    return re.sub(r"<(script|style|textarea)\b.*?</\1>|<input\b[^>]*>", "", body, flags=re.S)


def test_the_application_detail_page_marks_the_label_and_the_path(admin_client, instance, spoofing_app):
    body = admin_client.get(f"/applications/{instance.name}/{spoofing_app}/").content.decode()
    assert f'<span class="badge">team=pay{RLO_MARK}nimda{ZWSP_MARK}</span>' in body
    assert f"apps/pay{RLO_MARK}nimda{ZWSP_MARK}" in body
    assert RLO not in shown(body) and ZWSP not in shown(body)


@pytest.mark.parametrize("htmx", [False, True])
def test_the_application_list_marks_what_the_index_holds(admin_client, instance, spoofing_app, htmx):
    with instance.client() as client:
        resync(instance.pk, client)
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    body = admin_client.get(f"/applications/?q={spoofing_app}", **headers).content.decode()
    assert spoofing_app in body and f"apps/pay{RLO_MARK}nimda{ZWSP_MARK}" in body
    assert RLO not in shown(body) and ("<html" not in body) == htmx


@pytest.mark.parametrize("htmx", [False, True])
def test_the_project_pages_mark_the_description_and_labels(admin_client, instance, spoofing_project, htmx):
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    listing = admin_client.get(f"/kinds/projects/?instance={instance.name}", **headers).content.decode()
    assert f"pay{RLO_MARK}nimda{ZWSP_MARK}" in listing and RLO not in shown(listing)
    assert ("<html" not in listing) == htmx
    detail = admin_client.get(f"/kinds/projects/{instance.name}/{spoofing_project}/").content.decode()
    assert f"pay{RLO_MARK}nimda{ZWSP_MARK}" in detail and RLO not in shown(detail)


def test_the_editors_keep_the_real_characters_say_so_and_save_them_unchanged(
    admin_client, instance, argocd, spoofing_project
):
    form = admin_client.get(f"/kinds/projects/{instance.name}/{spoofing_project}/edit/").content.decode()
    assert re.search(f'value="{SPOOF}"[^>]*><small class="hidden-char-note"[^>]*>[^<]*U\\+202E', form)
    url = f"/kinds/projects/{instance.name}/{spoofing_project}/edit/?mode=yaml"
    page = admin_client.get(url).content.decode()
    text = html.unescape(re.search(r"<textarea[^>]*>(.*?)</textarea>", page, re.S).group(1))
    # YAML shows them as escapes ("\u202E"), or else the note after the editor names them.
    assert RLO not in text or 'class="hidden-char-note"' in page
    assert yaml.safe_load(text)["spec"]["description"] == SPOOF
    doc = yaml.safe_load(text)
    doc["spec"]["sourceRepos"] = ["https://example.com/*"]
    r = admin_client.post(url, {"yaml": yaml.safe_dump(doc)})
    assert r.status_code == 302, re.findall(r"flash-error[^>]*>([^<]*)", r.content.decode())
    saved = argocd.get_project(spoofing_project)
    assert saved["spec"]["description"] == SPOOF and saved["spec"]["sourceRepos"] == ["https://example.com/*"]


def test_hidden_characters_are_treated_by_where_they_stand():
    html = (
        f"<title>a{RLO}b</title><script>var s = '{RLO}';</script><p title='t{RLO}'>x{ZWSP}y</p>"
        f'<select><option value="v{RLO}">o{RLO}</option></select><a href="/a/{RLO}">l</a>'
        f'<input type="hidden" name="h" value="{RLO}"><input name="n" value="n{RLO}">'
        f"<textarea name=y>k: v{RLO}</textarea><!-- {RLO} --><p>plain</p>"
    )
    out = reveal_html(html)
    assert "<title>a⟪U+202E⟫b</title>" in out and f"var s = '{RLO}';" in out
    assert '<p title="t⟪U+202E⟫">x' + ZWSP_MARK + "y</p>" in out
    assert f'<option value="v{RLO}">o⟪U+202E⟫</option>' in out and f'href="/a/{RLO}"' in out
    assert (
        f'<input type="hidden" name="h" value="{RLO}"><input name="n" value="n{RLO}"><small class="hidden-char-note"'
        in out
    )
    assert f'<textarea name=y>k: v{RLO}</textarea><small class="hidden-char-note"' in out
    assert f"<!-- {RLO} --><p>plain</p>" in out
    assert reveal_html("<p>nothing hidden</p>") == "<p>nothing hidden</p>"


def test_followed_log_lines_spell_hidden_characters_out():
    """The live log view appends lines as text in the browser, past the post-processor: they come spelled out."""
    from apps.applications.follow import frame

    data = json.loads(frame({"content": f"user={SPOOF}", "podName": "web-1"}).removeprefix("data: "))
    assert (data["content"], data["pod"]) == ("user=pay⟪U+202E⟫nimda⟪U+200B⟫", "web-1")

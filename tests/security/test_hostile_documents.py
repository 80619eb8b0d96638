"""Hostile YAML/JSON (an alias bomb, 100,000-deep nesting, an oversize document) on every form that parses one.

Each is refused with a message in the page (plain and HTMX), the simulator's object reads back unchanged over
HTTP, and no write request reached the simulator at all.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid

import pytest
import yaml

from apps.argocd import ArgoCDClient, errors
from apps.audit.models import AuditEvent
from apps.core import documents
from apps.instances.models import Instance
from apps.simulator.httpd import SimHandler

pytestmark = pytest.mark.django_db
DEEP = 100_000


def refusals(action: str, kind: str) -> list[tuple[str, str]]:
    """(kind, name) of the failed `action` events whose error is the refusal's message."""
    events = AuditEvent.objects.filter(action=action, outcome="failed", error__contains=MESSAGES[kind])
    return list(events.values_list("kind", "name"))


def alias_bomb(head: str) -> str:
    """Six anchored lists, each ten aliases of the one before: a few hundred bytes, 10^6 strings expanded."""
    lines = [head, '  l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 6)]
    return "\n".join(lines) + "\n"


def hostile(kind: str, name: str, fmt: str = "yaml") -> str:
    """A document that looks like an object named `name` (metadata + spec) with the hostile part in its spec."""
    if fmt == "json":
        nested = "[" * DEEP + "]" * DEEP
        filler = json.dumps("x" * (1 << 20))
        inner = {"deep": nested, "oversize": filler}[kind]
        return f'{{"metadata": {{"name": "{name}", "namespace": "argocd"}}, "spec": {{"x": {inner}}}}}'
    head = f"metadata:\n  name: {name}\n  namespace: argocd\nspec:\n  project: default"
    if kind == "bomb":
        return alias_bomb(head)
    if kind == "deep":
        return f"{head}\n  x: {'[' * DEEP}{']' * DEEP}\n"
    return f"{head}\n  x: {'x' * (1 << 20)}\n"


MESSAGES = {
    "bomb": "expand to more than 10,000 values",
    "deep": "nests deeper than 100 levels",
    "oversize": "the portal accepts at most 1,048,576",
}


@pytest.fixture
def writes(monkeypatch):
    """Every request other than a read that reaches the simulator while the test runs."""
    seen: list[str] = []
    original = SimHandler._dispatch

    def spy(self, method):
        if method not in ("GET", "HEAD"):
            seen.append(f"{method} {self.path}")
        return original(self, method)

    monkeypatch.setattr(SimHandler, "_dispatch", spy)
    return seen


@pytest.fixture
def instance(sim):
    return Instance.objects.create(name=sim.name, url=sim.url, token=sim.portal_token(), verify_tls=False)


@pytest.fixture(scope="module")
def argocd(sim):
    with ArgoCDClient(sim.url, token=sim.portal_token(), name=sim.name) as client:
        yield client


@pytest.fixture
def app(argocd):
    model = next(a for a in argocd.list_applications() if a["metadata"]["name"].endswith("-dev"))
    name = f"hd-{uuid.uuid4().hex[:6]}"
    argocd.create_application({"metadata": {"name": name, "namespace": "argocd"}, "spec": model["spec"]})
    yield name
    with contextlib.suppress(errors.ArgoCDError):
        argocd.delete_application(name, cascade=False)


@pytest.fixture
def project(argocd):
    name = f"hd-{uuid.uuid4().hex[:6]}"
    argocd.create_project({"metadata": {"name": name}, "spec": {"description": "kept", "sourceRepos": ["*"]}})
    yield name
    with contextlib.suppress(errors.ArgoCDError):
        argocd.delete_project(name)


def _post(client, url: str, data: dict, htmx: bool):
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return client.post(url, data, **headers)


CASES = [(kind, htmx) for kind in ("bomb", "deep", "oversize") for htmx in (False, True)]


@pytest.mark.parametrize(("kind", "htmx"), CASES)
def test_the_application_edit_form_refuses_a_hostile_document(admin_client, instance, argocd, app, writes, kind, htmx):
    before = argocd.get_application(app)
    url = f"/applications/{instance.name}/{app}/edit/"
    r = _post(admin_client, url, {"format": "yaml", "document": hostile(kind, app), "apply": ""}, htmx)
    assert r.status_code == 200 and MESSAGES[kind] in r.content.decode()
    after = argocd.get_application(app)
    assert (
        after["spec"] == before["spec"]
        and after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    )
    assert writes == []


@pytest.mark.parametrize("kind", ["deep", "oversize"])
def test_the_application_edit_form_refuses_hostile_json(admin_client, instance, argocd, app, writes, kind):
    before = argocd.get_application(app)
    url = f"/applications/{instance.name}/{app}/edit/"
    r = admin_client.post(url, {"format": "json", "document": hostile(kind, app, "json"), "preview": ""})
    assert r.status_code == 200 and MESSAGES[kind] in r.content.decode()
    assert argocd.get_application(app)["spec"] == before["spec"] and writes == []
    assert refusals("edit", kind) == [("application", app)]


@pytest.mark.parametrize("patch_type", ["json", "merge"])
@pytest.mark.parametrize(("kind", "htmx"), CASES)
def test_the_patch_form_refuses_a_hostile_document(admin_client, instance, argocd, app, writes, kind, htmx, patch_type):
    before = argocd.get_application(app)
    nested = {"deep": "[" * DEEP + "]" * DEEP, "oversize": json.dumps("x" * (1 << 20))}.get(kind, "")
    if patch_type == "json":
        patch = f'[{{"op": "add", "path": "/metadata/labels/x", "value": {nested}}}]'
    else:
        patch = f'{{"metadata": {{"labels": {{"x": {nested}}}}}}}'
    if kind == "bomb":  # JSON has no aliases: the bomb is not JSON at all
        patch = alias_bomb("spec:")
    url = f"/applications/{instance.name}/{app}/edit/"
    r = _post(admin_client, url, {"patch_type": patch_type, "patch": patch, "apply_patch": ""}, htmx)
    expected = "Invalid JSON at line 1" if kind == "bomb" else MESSAGES[kind]
    assert r.status_code == 200 and expected in r.content.decode()
    after = argocd.get_application(app)
    assert after["metadata"] == before["metadata"] and after["spec"] == before["spec"]
    assert writes == []
    # A refusal is audited as a probe; a document that is simply not JSON is a mistake and is not.
    assert refusals("edit", kind) == ([] if kind == "bomb" else [("application", app)])


@pytest.mark.parametrize(("kind", "htmx"), CASES)
def test_the_create_form_refuses_a_hostile_document(admin_client, instance, argocd, writes, kind, htmx):
    name = f"hd-new-{uuid.uuid4().hex[:6]}"
    data = {"instance": instance.name, "document": hostile(kind, name), "create_yaml": ""}
    r = _post(admin_client, f"/applications/new/?instance={instance.name}", data, htmx)
    # The create page answers an invalid form with 422, as it does for any other mistake.
    assert r.status_code == 422 and MESSAGES[kind] in r.content.decode()
    with pytest.raises((errors.NotFound, errors.PermissionDenied)):
        argocd.get_application(name)
    assert writes == [] and refusals("create", kind) == [("application", "")]


@pytest.mark.parametrize(("kind", "htmx"), CASES)
def test_a_kinds_yaml_form_refuses_a_hostile_document(admin_client, instance, argocd, project, writes, kind, htmx):
    before = argocd.get_project(project)
    url = f"/kinds/projects/{instance.name}/{project}/edit/?mode=yaml"
    for extra in ({"preview": ""}, {}):
        r = _post(admin_client, url, {"yaml": hostile(kind, project), **extra}, htmx)
        # The kinds form answers every refused save with 400 and the reason at the top of the form.
        assert r.status_code == 400 and MESSAGES[kind] in r.content.decode()
    created = f"hd-new-{uuid.uuid4().hex[:6]}"
    r = _post(admin_client, f"/kinds/projects/{instance.name}/new/?mode=yaml", {"yaml": hostile(kind, created)}, htmx)
    assert r.status_code == 400 and MESSAGES[kind] in r.content.decode()
    assert argocd.get_project(project)["spec"] == before["spec"]
    with pytest.raises((errors.NotFound, errors.PermissionDenied)):
        argocd.get_project(created)
    assert writes == []
    assert refusals("edit", kind) == [("project", project)] * 2 and refusals("create", kind) == [("project", "")]


def test_documents_within_the_bounds_still_parse_with_their_aliases():
    text = "base: &b {cpu: 1, mem: 2}\nweb: *b\nworker: {<<: *b, cpu: 4}\n" + "n: " + "[" * 99 + "]" * 99
    doc = documents.parse(text)
    assert doc["web"] == {"cpu": 1, "mem": 2} and doc["worker"] == {"cpu": 4, "mem": 2}
    assert documents.parse(json.dumps({"a": [[[1]]]}), "json") == {"a": [[[1]]]}
    assert yaml.safe_load(alias_bomb("x:"))["x"]["l1"][0][0] == "lol"  # the bomb is valid YAML


@pytest.mark.parametrize(
    ("text", "fmt", "message"),
    [
        ("[" * DEEP + "]" * DEEP, "json", "nests deeper than 100 levels (at line 1, column 101)"),
        ("- " * DEEP + "x", "yaml", "nests deeper than 100 levels"),
        ("{a: " * DEEP + "1" + "}" * DEEP, "yaml", "nests deeper than 100 levels"),
        ("a: &a " + "[" * 60 + "]" * 60 + "\nb: " + "[" * 60 + "*a" + "]" * 60, "yaml", "deeper than 100"),
        (
            "\n".join(f"k{i}: &k{i} [1]" for i in range(101))
            + "\nu: ["
            + ", ".join(f"*k{i}" for i in range(101))
            + "]",
            "yaml",
            "more than 100 aliases",
        ),
        ("n: " + "1" * 5000, "yaml", "Invalid YAML: Exceeds the limit (4300 digits)"),
        ("a: !!binary aGVsbG8=", "yaml", "binary values cannot be sent to Argo CD"),
        ("a: !!set {x, y}", "yaml", "set values cannot be sent to Argo CD"),
        ("1" * 5000, "json", "Invalid JSON: Exceeds the limit (4300 digits)"),
    ],
)
def test_the_parser_refuses_depth_aliases_and_overlong_numbers_with_a_message(text, fmt, message):
    with pytest.raises(documents.DocumentError, match=re.escape(message)):
        documents.parse(text, fmt)


def test_a_date_in_yaml_stays_the_text_it_was_and_is_saved(admin_client, instance, argocd, app):
    """JSON has no dates: read as text (as kubectl does), an unquoted date is saved instead of failing the page."""
    url = f"/applications/{instance.name}/{app}/edit/"
    doc = yaml.safe_load(admin_client.get(url).context["edit_form"].initial["document"])
    doc["metadata"]["annotations"] = {"released": "DATE"}
    text = yaml.safe_dump(doc).replace("'DATE'", "2024-01-31").replace("DATE", "2024-01-31")
    assert "released: 2024-01-31\n" in text
    r = admin_client.post(url, {"format": "yaml", "document": text, "apply": ""})
    assert r.status_code == 302
    assert argocd.get_application(app)["metadata"]["annotations"]["released"] == "2024-01-31"

"""Repositories and repository credentials: write-only secrets, validate, apps found, typed-name delete."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import quote

import pytest

from apps.audit.models import AuditEvent

from .conftest import events

pytestmark = pytest.mark.django_db
SECRET = "hunter2-very-secret-Zq9"
SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA-secret-body\n-----END OPENSSH PRIVATE KEY-----"


def url_of(repo: str, suffix: str = "") -> str:
    return f"/kinds/repositories/sim-k/{quote(repo, safe='')}/{suffix}"


def create(client, repo: str, **extra):
    data = {"repo": repo, "type": "git", "username": "bot", "password": SECRET, "sshPrivateKey": SSH_KEY, **extra}
    return client.post("/kinds/repositories/sim-k/new/", data)


def test_create_repository_stores_secrets_in_argocd_and_never_shows_them(admin_client, argo, sim, unique):
    repo = f"https://git.example.com/org/{unique}.git"
    r = create(admin_client, repo, name=f"r-{unique}", project="default", enableLfs="on", proxy="http://proxy:3128")
    assert r.status_code == 302 and r["Location"] == url_of(repo)
    stored = sim.state.repos[repo]
    assert stored["password"] == SECRET and stored["sshPrivateKey"] == SSH_KEY and stored["enableLfs"] is True
    for page in (url_of(repo), url_of(repo, "edit/"), "/kinds/repositories/"):
        body = admin_client.get(page).content.decode()
        assert SECRET not in body and "OPENSSH PRIVATE KEY" not in body
    event = events(kind="repository", action="create")[-1]
    assert event.outcome == AuditEvent.Outcome.SUCCEEDED and event.name == repo
    assert event.after["password"] == "***" and event.after["sshPrivateKey"] == "***"
    assert SECRET not in str(event.after) and event.after["username"] == "bot"


def test_an_edit_must_repeat_the_password_argocd_would_otherwise_drop(admin_client, argo, sim, unique):
    # Argo CD saves a repository exactly as sent and never returns its secrets: a blank password removes it.
    repo = f"https://git.example.com/org/{unique}.git"
    create(admin_client, repo)
    before = dict(sim.state.repos[repo])
    assert "enter it again to keep it" in admin_client.get(url_of(repo, "edit/")).content.decode()
    r = admin_client.post(url_of(repo, "edit/"), {"type": "git", "username": "new-bot", "password": ""})
    assert r.status_code == 400 and "enter the password" in r.content.decode()
    assert sim.state.repos[repo] == before

    r = admin_client.post(url_of(repo, "edit/"), {"type": "git", "username": "new-bot", "password": "rotated-pw-1"})
    assert r.status_code == 302
    stored = sim.state.repos[repo]
    assert stored["username"] == "new-bot" and stored["password"] == "rotated-pw-1"
    assert "sshPrivateKey" not in stored  # not entered again, so the save removed it, as Argo CD does
    event = events(kind="repository", action="edit")[-1]
    assert event.before["username"] == "bot" and event.after["username"] == "new-bot"
    assert "rotated-pw-1" not in str(event.after)

    r = admin_client.post(url_of(repo, "edit/"), {"type": "git", "username": "", "password": ""})
    assert r.status_code == 302  # clearing the user name removes the credentials on purpose
    assert not sim.state.repos[repo].get("username") and not sim.state.repos[repo].get("password")


def test_argocd_refusal_is_shown_in_the_form_and_nothing_is_created(admin_client, argo, sim):
    r = create(admin_client, "ftp:/not-a-repo")
    body = r.content.decode()
    assert r.status_code == 400
    assert "invalid URL" in body and SECRET not in body and "OPENSSH" not in body
    assert "ftp:/not-a-repo" not in sim.state.repos
    assert events(kind="repository", action="create")[-1].outcome == AuditEvent.Outcome.FAILED


def test_test_connection_on_the_form_validates_without_saving(admin_client, argo, sim, unique):
    repo = f"https://unreachable.example.com/{unique}.git"
    r = create(admin_client, repo, preview="1")
    assert r.status_code == 200 and "repository not found" in r.content.decode()
    assert repo not in sim.state.repos
    ok = create(admin_client, f"https://git.example.com/{unique}.git", preview="1")
    assert "Argo CD reached" in ok.content.decode()
    assert f"https://git.example.com/{unique}.git" not in sim.state.repos


def test_validate_button_reports_the_connection_and_audits(admin_client, argo, sim, unique):
    repo = f"https://git.example.com/org/{unique}.git"
    create(admin_client, repo)
    r = admin_client.post(url_of(repo), {"validate": "1"}, headers={"HX-Request": "true"})
    assert r.status_code == 200 and r.headers["HX-Refresh"] == "true"
    assert "Argo CD reached" in admin_client.get(url_of(repo)).content.decode()
    assert events(kind="repository", action="validate")[-1].outcome == AuditEvent.Outcome.SUCCEEDED


def test_detail_lists_the_apps_found_in_the_repository(admin_client, argo, sim):
    repo = next(iter(sim.state.repos))
    body = admin_client.get(url_of(repo)).content.decode()
    assert "Applications found in this repository" in body and "overlays" in body


def test_delete_needs_the_url_typed_and_records_what_was_deleted(admin_client, argo, sim, unique):
    repo = f"https://git.example.com/org/{unique}.git"
    create(admin_client, repo)
    page = admin_client.get(url_of(repo, "delete/")).content.decode()
    assert f'data-confirm-name="{repo}"' in page
    detail = admin_client.get(url_of(repo)).content.decode()
    assert '<dialog id="confirm-delete">' in detail and f'data-confirm-name="{repo}"' in detail
    wrong = admin_client.post(url_of(repo, "delete/"), {"confirm_name": "nope"})
    assert wrong.status_code == 400 and repo in sim.state.repos
    r = admin_client.post(url_of(repo, "delete/"), {"confirm_name": repo})
    assert r.status_code == 302 and repo not in sim.state.repos
    event = events(kind="repository", action="delete")[-1]
    assert event.outcome == AuditEvent.Outcome.SUCCEEDED and event.before["repo"] == repo


def test_member_with_a_project_grant_cannot_add_repositories(client, alice, grant, argo, sim, unique):
    grant(alice, ["view", "create"], project="default")
    client.force_login(alice)
    r = client.post("/kinds/repositories/sim-k/new/", {"repo": f"https://x.example/{unique}.git", "type": "git"})
    assert r.status_code == 404
    assert f"https://x.example/{unique}.git" not in sim.state.repos
    assert events(outcome=AuditEvent.Outcome.DENIED, kind="repository", actor="alice")


def test_repocreds_create_edit_delete_keep_the_password_write_only(admin_client, argo, sim, unique):
    prefix = f"https://git.example.com/{unique}/"
    r = admin_client.post(
        "/kinds/repocreds/sim-k/new/", {"url": prefix, "type": "git", "username": "u", "password": SECRET}
    )
    assert r.status_code == 302
    assert sim.state.repocreds[prefix]["password"] == SECRET
    key = quote(prefix, safe="")
    for page in (f"/kinds/repocreds/sim-k/{key}/", f"/kinds/repocreds/sim-k/{key}/edit/"):
        body = admin_client.get(page).content.decode()
        assert r.status_code in (200, 302) and SECRET not in body and prefix in body
    refused = admin_client.post(
        f"/kinds/repocreds/sim-k/{key}/edit/", {"type": "git", "username": "u2", "password": ""}
    )
    assert refused.status_code == 400 and sim.state.repocreds[prefix]["username"] == "u"
    admin_client.post(f"/kinds/repocreds/sim-k/{key}/edit/", {"type": "git", "username": "u2", "password": SECRET})
    assert sim.state.repocreds[prefix]["username"] == "u2" and sim.state.repocreds[prefix]["password"] == SECRET
    assert admin_client.post(f"/kinds/repocreds/sim-k/{key}/delete/").status_code == 302
    assert prefix not in sim.state.repocreds
    assert [e.action for e in events(kind="repocreds", name=prefix)] == ["create", "edit", "delete"]


def test_clearing_proxy_and_github_app_id_on_edit_removes_them_and_keeps_secrets_sent_again(
    admin_client, argo, sim, unique
):
    repo = f"https://git.example.com/org/{unique}.git"
    create(admin_client, repo, proxy="http://proxy:3128", githubAppId="42", githubAppInstallationId="7")
    assert sim.state.repos[repo]["proxy"] == "http://proxy:3128" and sim.state.repos[repo]["githubAppID"] == 42
    data = {
        "type": "git",
        "username": "bot",
        "password": SECRET,
        "sshPrivateKey": SSH_KEY,
        "githubAppInstallationId": "7",
    }
    r = admin_client.post(url_of(repo, "edit/"), data)
    assert r.status_code == 302
    page = admin_client.get(url_of(repo)).content.decode()
    assert "proxy:3128" not in page and "githubAppID" not in page
    stored = sim.state.repos[repo]
    assert not stored.get("proxy") and not stored.get("githubAppID") and stored["githubAppInstallationID"] == 7
    assert stored["password"] == SECRET and stored["sshPrivateKey"] == SSH_KEY


@pytest.mark.parametrize(
    ("field", "value"),
    [("githubAppId", "-3"), ("githubAppId", "0"), ("githubAppInstallationId", "-1"), ("proxy", "proxy:3128")],
)
def test_bad_app_id_or_proxy_is_refused_in_the_form_and_nothing_changes(admin_client, argo, sim, unique, field, value):
    repo = f"https://git.example.com/org/{unique}.git"
    create(admin_client, repo, proxy="http://proxy:3128")
    before = dict(sim.state.repos[repo])
    r = admin_client.post(url_of(repo, "edit/"), {"type": "git", "username": "changed", "proxy": "", field: value})
    body = r.content.decode()
    assert r.status_code == 400
    assert "positive whole number" in body or "is not an http:// or https:// URL" in body
    assert sim.state.repos[repo] == before
    assert create(admin_client, f"https://git.example.com/org/{unique}-2.git", **{field: value}).status_code == 400
    assert f"https://git.example.com/org/{unique}-2.git" not in sim.state.repos


def test_repocreds_edit_clears_a_blank_proxy_and_keeps_the_password_sent_again(admin_client, argo, sim, unique):
    prefix = f"https://git.example.com/{unique}/"
    data = {"url": prefix, "type": "git", "username": "u", "password": SECRET, "proxy": "https://proxy:3128"}
    assert admin_client.post("/kinds/repocreds/sim-k/new/", data).status_code == 302
    edit = {"type": "git", "username": "u", "password": SECRET}
    r = admin_client.post(f"/kinds/repocreds/sim-k/{quote(prefix, safe='')}/edit/", edit)
    assert r.status_code == 302
    assert not sim.state.repocreds[prefix].get("proxy") and sim.state.repocreds[prefix]["password"] == SECRET


def test_an_edit_keeping_a_github_app_must_repeat_its_private_key(admin_client, argo, sim, unique):
    repo = f"https://git.example.com/org/{unique}.git"
    create(admin_client, repo, githubAppId="42", githubAppInstallationId="7", githubAppPrivateKey=SSH_KEY)
    data = {"type": "git", "username": "bot", "password": SECRET, "githubAppId": "42", "githubAppInstallationId": "7"}
    r = admin_client.post(url_of(repo, "edit/"), data)
    assert r.status_code == 400 and "GitHub App private key" in r.content.decode()
    assert sim.state.repos[repo]["githubAppPrivateKey"] == SSH_KEY
    assert admin_client.post(url_of(repo, "edit/"), {**data, "githubAppPrivateKey": SSH_KEY}).status_code == 302
    assert sim.state.repos[repo]["githubAppPrivateKey"] == SSH_KEY


class _Forms(HTMLParser):
    """Each POST form of a page as a browser would submit it: named inputs, textareas and selected options,
    and the names of its submit buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[dict[str, list[str]], set[str]]] = []
        self._textarea = self._select = ""

    def _add(self, name: str, value: str) -> None:
        self.forms[-1][0].setdefault(name, []).append(value)

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(({}, set()))
        if not self.forms or not a.get("name"):
            return
        if tag == "button" or (tag == "input" and a.get("type") == "submit"):
            self.forms[-1][1].add(a["name"])
        elif tag == "input" and (a.get("type") != "checkbox" or "checked" in a):
            self._add(a["name"], a.get("value", ""))
        elif tag == "textarea":
            self._textarea = a["name"]
            self._add(self._textarea, "")
        elif tag == "select":
            self._select = a["name"]
        elif tag == "option" and self._select and "selected" in a:
            self._add(self._select, a.get("value", ""))

    def handle_data(self, data):
        if self._textarea:
            self.forms[-1][0][self._textarea][-1] += data

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = ""
        elif tag == "select":
            self._select = ""


def as_browser_sends(page: str, button: str = "save", **typed: str) -> dict[str, list[str]]:
    """The POST a browser makes when `button` is clicked on `page`, after the user typed `typed`."""
    parser = _Forms()
    parser.feed(page)
    fields = next(dict(f) for f, buttons in parser.forms if button in buttons)
    fields.pop("csrfmiddlewaretoken", None)
    return {**fields, **{k: [v] for k, v in typed.items()}, button: ["1"]}


def test_test_connection_then_create_never_saves_the_repository_without_its_password(admin_client, argo, sim, unique):
    repo = f"https://git.example.com/org/{unique}.git"
    new = "/kinds/repositories/sim-k/new/"
    typed = {"repo": repo, "type": "git", "username": "bot", "password": SECRET}
    tested = admin_client.post(new, {**typed, "preview": "1"})
    page = tested.content.decode()
    assert tested.status_code == 200 and "Argo CD reached" in page
    assert SECRET not in page  # write-only: not even the value just typed comes back
    assert "Type the password or token again before you create" in page

    # Create clicked on the page as it came back (the password field empty): refused, nothing saved.
    refused = admin_client.post(new, as_browser_sends(page))
    assert refused.status_code == 400 and "Type the password or token again" in refused.content.decode()
    assert repo not in sim.state.repos

    # Typed again: created with it, as a validate that needs the credential would see.
    r = admin_client.post(new, as_browser_sends(refused.content.decode(), password=SECRET))
    assert r.status_code == 302 and r["Location"] == url_of(repo)
    assert sim.state.repos[repo]["username"] == "bot" and sim.state.repos[repo]["password"] == SECRET


def test_a_credential_template_refused_for_a_bad_field_asks_for_its_password_again(admin_client, argo, sim, unique):
    prefix = f"https://git.example.com/{unique}/"
    new = "/kinds/repocreds/sim-k/new/"
    bad = admin_client.post(new, {"url": prefix, "type": "git", "username": "u", "password": SECRET, "proxy": "x"})
    page = bad.content.decode()
    assert bad.status_code == 400 and SECRET not in page and "Type the password or token again" in page

    fixed = admin_client.post(new, as_browser_sends(page, proxy="https://proxy:3128"))
    assert fixed.status_code == 400 and prefix not in sim.state.repocreds

    r = admin_client.post(new, as_browser_sends(page, proxy="https://proxy:3128", password=SECRET))
    assert r.status_code == 302 and sim.state.repocreds[prefix]["password"] == SECRET


def test_a_form_without_a_typed_secret_asks_for_none(admin_client, argo, sim, unique):
    repo = f"https://git.example.com/org/{unique}.git"
    new = "/kinds/repositories/sim-k/new/"
    tested = admin_client.post(new, {"repo": repo, "type": "git", "preview": "1"}).content.decode()
    assert "Not kept" not in tested and 'name="retype"' not in tested
    assert admin_client.post(new, as_browser_sends(tested)).status_code == 302
    assert repo in sim.state.repos and "password" not in sim.state.repos[repo]

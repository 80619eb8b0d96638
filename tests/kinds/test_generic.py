"""The generic layer: every kind lists across instances, shows a detail page and guards access the same way."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from apps.audit.models import AuditEvent
from apps.instances.models import Instance
from apps.kinds.registry import REGISTRY

from .conftest import events, pgp_public_key

pytestmark = pytest.mark.django_db
WITH_DETAIL = [slug for slug, k in REGISTRY.items() if k.sections]


def first_key(instance: Instance, slug: str) -> str:
    kind = REGISTRY[slug]
    with instance.client() as c:
        return kind.key(kind.list(c, {})[0])


def detail_url(slug: str, instance: str, key: str, suffix: str = "") -> str:
    return f"/kinds/{slug}/{instance}/{quote(key, safe='')}/{suffix}"


def test_index_lists_every_kind_and_compares_instances_side_by_side(admin_client, argo, sim):
    Instance.objects.create(name="sim-k2", url=sim.url, token=sim.portal_token())
    r = admin_client.get("/kinds/")
    body = r.content.decode()
    assert r.status_code == 200
    for kind in REGISTRY.values():
        assert f'href="/kinds/{kind.slug}/"' in body
    assert "Instances side by side" in body and "sim-k" in body and "sim-k2" in body
    assert "Tracking method" in body and "Plugins" in body


def test_index_shows_a_dead_instance_as_an_error_beside_the_live_one(admin_client, argo):
    Instance.objects.create(name="dead", url="http://127.0.0.1:9", token="x")
    body = admin_client.get("/kinds/").content.decode()
    assert "dead:" in body and 'role="alert"' in body
    assert "sim-k" in body


@pytest.mark.parametrize("slug", list(REGISTRY))
def test_every_kind_lists_rows_from_the_instance(admin_client, argo, slug):
    r = admin_client.get(f"/kinds/{slug}/")
    body = r.content.decode()
    assert r.status_code == 200
    assert "<td>sim-k</td>" in body
    assert "flash-error" not in body


@pytest.mark.parametrize("slug", WITH_DETAIL)
def test_every_kind_has_a_live_detail_page(admin_client, argo, slug):
    key = first_key(argo, slug)
    r = admin_client.get(detail_url(slug, "sim-k", key))
    assert r.status_code == 200, r.content[:500]
    assert key in r.content.decode()


def test_list_filter_by_instance_answers_a_fragment_to_htmx(admin_client, argo, sim):
    Instance.objects.create(name="other", url=sim.url, token=sim.portal_token())
    r = admin_client.get("/kinds/clusters/?instance=other", headers={"HX-Request": "true"})
    body = r.content.decode()
    assert r.status_code == 200
    assert "<html" not in body and 'id="rows"' in body
    assert "<td>other</td>" in body and "<td>sim-k</td>" not in body


def test_a_dead_instance_shows_its_error_and_the_others_still_list(admin_client, argo):
    Instance.objects.create(name="dead", url="http://127.0.0.1:9", token="x")
    body = admin_client.get("/kinds/repositories/").content.decode()
    assert "dead:" in body and "flash-error" in body
    assert "<td>sim-k</td>" in body


def test_unknown_kind_and_unknown_object_are_404(admin_client, argo):
    assert admin_client.get("/kinds/widgets/").status_code == 404
    assert admin_client.get(detail_url("projects", "sim-k", "no-such-project")).status_code == 404
    assert admin_client.get(detail_url("clusters", "sim-k", "https://nowhere.example")).status_code == 404


def test_a_user_without_grants_sees_no_instance_and_gets_404_audited(client, alice, argo):
    client.force_login(alice)
    body = client.get("/kinds/clusters/").content.decode()
    assert "<td>sim-k</td>" not in body
    key = first_key(argo, "clusters")
    assert client.get(detail_url("clusters", "sim-k", key)).status_code == 404
    denied = events(outcome=AuditEvent.Outcome.DENIED, actor="alice")
    assert denied and denied[-1].kind == "cluster" and denied[-1].name == key


def test_instance_wide_kinds_need_a_grant_on_every_project(client, alice, grant, argo):
    grant(alice, ["view"], project="default")
    client.force_login(alice)
    assert "<td>sim-k</td>" not in client.get("/kinds/repositories/").content.decode()
    assert client.get(detail_url("repositories", "sim-k", first_key(argo, "repositories"))).status_code == 404
    assert "<td>sim-k</td>" in client.get("/kinds/projects/").content.decode()


def test_project_scoped_member_sees_only_granted_projects(client, alice, grant, argo):
    grant(alice, ["view"], project="default")
    client.force_login(alice)
    body = client.get("/kinds/projects/").content.decode()
    with argo.client() as c:
        others = [p["metadata"]["name"] for p in c.list_projects() if p["metadata"]["name"] != "default"]
    assert ">default</a>" in body
    assert others and all(f">{name}</a>" not in body for name in others)
    # It says whose view this is, without counting what the member may not see.
    assert "only the projects your teams' grants let you see" in body and "hidden on" not in body
    assert client.get(detail_url("projects", "sim-k", others[0])).status_code == 404


def test_viewer_cannot_delete_gets_403_and_denial_is_audited(client, alice, grant, argo):
    grant(alice, ["view"])
    client.force_login(alice)
    key = first_key(argo, "clusters")
    r = client.post(detail_url("clusters", "sim-k", key, "delete/"), {"confirm_name": key})
    assert r.status_code == 403
    assert events(outcome=AuditEvent.Outcome.DENIED, action="delete", kind="cluster")
    with argo.client() as c:
        assert c.get_cluster(key)["server"] == key


def test_notifications_and_settings_are_read_only(admin_client, argo):
    body = admin_client.get("/kinds/notifications/").content.decode()
    assert "slack" in body and "/new/" not in body
    r = admin_client.get("/kinds/settings/sim-k/settings/")
    assert r.status_code == 200 and "Version" in r.content.decode()
    assert admin_client.get("/kinds/settings/sim-k/new/").status_code == 404
    assert admin_client.get("/kinds/settings/sim-k/settings/edit/").status_code == 404


@pytest.mark.parametrize("slug", WITH_DETAIL)
def test_every_kind_hides_its_objects_from_users_without_a_grant(client, bob, argo, slug):
    key = first_key(argo, slug)
    client.force_login(bob)
    assert client.get(detail_url(slug, "sim-k", key)).status_code == 404
    assert events(outcome=AuditEvent.Outcome.DENIED, actor="bob", kind=REGISTRY[slug].audit_kind, name=key)


@pytest.mark.parametrize("slug", [s for s, k in REGISTRY.items() if k.delete])
def test_every_kind_refuses_deletion_to_a_viewer_and_keeps_the_object(client, bob, grant, argo, slug):
    grant(bob, ["view"])
    key = first_key(argo, slug)
    client.force_login(bob)
    page = client.get(detail_url(slug, "sim-k", key)).content.decode()
    assert "confirm-delete" not in page
    assert client.post(detail_url(slug, "sim-k", key, "delete/"), {"confirm_name": key}).status_code == 403
    assert events(outcome=AuditEvent.Outcome.DENIED, actor="bob", action="delete", name=key)
    assert key == first_key(argo, slug)


def test_an_instance_that_is_down_gets_a_clear_page_not_a_500(admin_client, argo):
    Instance.objects.create(name="dead", url="http://127.0.0.1:9", token="x")
    r = admin_client.get("/kinds/projects/dead/default/")
    assert (
        r.status_code == 503 and "did not answer" in r.content.decode() and "dead is unavailable" in r.content.decode()
    )
    r = admin_client.post("/kinds/repositories/dead/new/", {"repo": "https://x.example/r.git", "type": "git"})
    assert r.status_code == 400 and "dead:" in r.content.decode()
    assert events(kind="repository", action="create")[-1].outcome == AuditEvent.Outcome.FAILED


def test_garbage_from_a_proxy_is_reported_and_changes_nothing(admin_client, transactional_db):
    from apps.simulator.server import SimServer

    with SimServer(port=0, name="junk", apps=2, projects=2, seed=5) as junk:
        Instance.objects.create(name="junk", url=junk.url, token=junk.portal_token())
        junk.faults.garbage = True
        body = admin_client.get("/kinds/clusters/?instance=junk").content.decode()
        assert "junk:" in body and "unexpected answer" in body
        r = admin_client.post(
            "/kinds/gpgkeys/junk/new/",
            {"keyData": pgp_public_key("junk")},
        )
        assert r.status_code == 400 and "unexpected answer" in r.content.decode()
        junk.faults.garbage = False
        assert len(junk.state.gpgkeys) == 1


def test_the_settings_page_is_headed_settings_on_the_instance_not_settings_settings(admin_client, argo):
    body = admin_client.get("/kinds/settings/sim-k/settings/").content.decode()
    assert "<h1>Settings</h1><p>on sim-k" in body and "<title>Settings · sim-k" in body
    assert "Settings settings" not in body
    assert "<h1>Project default</h1>" in admin_client.get("/kinds/projects/sim-k/default/").content.decode()


def test_new_project_is_offered_only_where_a_grant_allows_creating(client, alice, grant, argo):
    grant(alice, ["view"], project="default")
    client.force_login(alice)
    assert "New project on sim-k" not in client.get("/kinds/projects/").content.decode()
    refused = client.get("/kinds/projects/sim-k/new/")
    assert refused.status_code == 403 and "You may not create projects on sim-k." in refused.content.decode()
    assert events(outcome=AuditEvent.Outcome.DENIED, action="create", kind="project")
    grant(alice, ["view", "create"], project="team-*")
    assert "New project on sim-k" in client.get("/kinds/projects/").content.decode()
    assert client.get("/kinds/projects/sim-k/new/").status_code == 200


def test_a_platform_admin_is_not_told_the_list_is_narrowed(admin_client, argo):
    body = admin_client.get("/kinds/projects/").content.decode()
    assert "grants let you see" not in body and "New project on sim-k" in body

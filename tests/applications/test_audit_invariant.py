"""Nothing changes in Argo CD without a trace: the intent is on the chain before the call, and characters the
database cannot hold never break the audit after Argo CD has already changed."""

from __future__ import annotations

import json

import pytest
import yaml
from django.urls import reverse

from apps.audit.chain import verify
from apps.audit.models import AuditEvent
from apps.instances.models import Instance
from apps.simulator.server import SimServer

HX = {"HTTP_HX_REQUEST": "true"}


def u(view, instance, name):
    return reverse(f"applications:{view}", args=[instance.name, name])


def trail(name: str, action: str = "edit") -> list[tuple[str, int | None]]:
    events = AuditEvent.objects.filter(name=name, action=action).order_by("id")
    return [(e.outcome, e.intent_id) for e in events]


@pytest.mark.django_db
def test_a_nul_in_a_merge_patch_is_applied_and_audited_escaped(admin_client, instance, fresh_app, argocd):
    name = fresh_app()
    patch = json.dumps({"metadata": {"annotations": {"note": "x\u0000y"}}})
    response = admin_client.post(u("edit", instance, name), {"patch_type": "merge", "patch": patch, "apply_patch": ""})
    assert response.status_code == 302
    assert argocd.get_application(name)["metadata"]["annotations"]["note"] == "x\u0000y"
    started, done = AuditEvent.objects.filter(name=name, action="edit").order_by("id")
    assert (started.outcome, done.outcome, done.intent_id) == ("started", "succeeded", started.pk)
    assert done.request["patch"]["metadata"]["annotations"]["note"] == "x\\u0000y"
    assert done.after["metadata"]["annotations"]["note"] == "x\\u0000y"

    # The next edit's `before` holds the NUL that Argo CD now stores: it is audited as well.
    doc = yaml.safe_load(admin_client.get(u("edit", instance, name)).context["edit_form"].initial["document"])
    doc["spec"]["source"]["targetRevision"] = "release-9"
    response = admin_client.post(
        u("edit", instance, name), {"format": "yaml", "document": yaml.safe_dump(doc), "apply": ""}
    )
    assert response.status_code == 302
    assert [o for o, _ in trail(name)] == ["started", "succeeded", "started", "succeeded"]
    assert AuditEvent.objects.filter(name=name).latest("id").before["metadata"]["annotations"]["note"] == "x\\u0000y"
    assert verify()[1] is None


@pytest.mark.django_db
def test_a_nul_in_a_created_application_is_audited(admin_client, instance, argocd, seed_apps):
    model = next(a for a in seed_apps.values() if a["spec"]["project"] == "payments")
    name = "nul-create-app"
    doc = {"metadata": {"name": name, "namespace": "argocd", "annotations": {"a": "x\u0000y"}}, "spec": model["spec"]}
    try:
        response = admin_client.post(
            f"{reverse('applications:create')}?instance={instance.name}",
            {"instance": instance.name, "document": json.dumps(doc), "create_yaml": ""},
        )
        assert response.status_code == 302
        assert argocd.get_application(name)["metadata"]["annotations"]["a"] == "x\u0000y"
        started, done = AuditEvent.objects.filter(name=name, action="create").order_by("id")
        assert (started.outcome, done.outcome, done.intent_id) == ("started", "succeeded", started.pk)
        assert started.request["metadata"]["annotations"]["a"] == "x\\u0000y"
    finally:
        argocd.delete_application(name, cascade=False)


@pytest.fixture
def spied_sim():
    """A private simulator whose PATCH route first looks at what the audit log holds at that moment."""
    server = SimServer(port=0, name="sim-spy", apps=6, projects=2, seed=3).start()
    seen: list[list[str]] = []
    route = next(
        r for r in server.router.routes if r.method == "PATCH" and "applications/(?P<name>" in r.pattern.pattern
    )
    real = route.handler

    def spy(req):
        from django.db import connection

        # The simulator's thread has its own connection: it sees only what the portal has committed.
        seen.append(list(AuditEvent.objects.filter(action="edit").values_list("outcome", flat=True)))
        connection.close()
        return real(req)

    route.handler = spy
    yield server, seen
    server.stop()


@pytest.mark.django_db(transaction=True)
def test_the_intent_is_committed_before_argocd_receives_the_change(admin_client, spied_sim):
    server, seen = spied_sim
    instance = Instance.objects.create(name=server.name, url=server.url, token=server.portal_token(), verify_tls=False)
    name = sorted(n for _, n in server.state.apps)[0]
    patch = json.dumps({"metadata": {"labels": {"spied": "yes"}}})
    response = admin_client.post(u("edit", instance, name), {"patch_type": "merge", "patch": patch, "apply_patch": ""})
    assert response.status_code == 302
    assert seen == [["started"]]
    assert [o for o, _ in trail(name)] == ["started", "succeeded"]


@pytest.mark.django_db(transaction=True)
def test_when_the_outcome_cannot_be_written_the_intent_still_records_the_change(admin_client, instance, fresh_app):
    """The outcome write fails for real (the audit table refuses it) after Argo CD changed: the page still
    answers, and the committed intent names the change."""
    from django.db import connection

    name = fresh_app()
    table = AuditEvent._meta.db_table
    with connection.cursor() as cursor:
        # Refuse every outcome event of this app from now on, as a full disk or a lost connection would.
        cursor.execute(
            f"""CREATE OR REPLACE FUNCTION refuse_outcome() RETURNS trigger AS $$
            BEGIN IF NEW.intent_id IS NOT NULL AND NEW.name = '{name}' THEN
            RAISE EXCEPTION 'disk full'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql;
            CREATE TRIGGER refuse_outcome BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION refuse_outcome();"""
        )
    try:
        patch = json.dumps({"metadata": {"labels": {"lost": "outcome"}}})
        response = admin_client.post(
            u("edit", instance, name), {"patch_type": "merge", "patch": patch, "apply_patch": ""}
        )
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER refuse_outcome ON {table}; DROP FUNCTION refuse_outcome();")
    assert response.status_code == 302
    (intent,) = AuditEvent.objects.filter(name=name, action="edit")
    assert intent.outcome == "started" and intent.request["patch"]["metadata"]["labels"] == {"lost": "outcome"}
    page = admin_client.get(reverse("audit:detail", args=[intent.pk])).content.decode()
    assert "no outcome recorded (yet): the result in Argo CD is unknown" in page


@pytest.mark.django_db
def test_an_intent_and_its_outcome_link_to_each_other(admin_client, instance, fresh_app):
    name = fresh_app()
    patch = json.dumps({"metadata": {"labels": {"linked": "yes"}}})
    admin_client.post(u("edit", instance, name), {"patch_type": "merge", "patch": patch, "apply_patch": ""})
    started, done = AuditEvent.objects.filter(name=name, action="edit").order_by("id")
    intent_page = admin_client.get(reverse("audit:detail", args=[started.pk])).content.decode()
    assert f'href="/audit/{done.pk}/">succeeded (#{done.pk})</a>' in intent_page
    outcome_page = admin_client.get(reverse("audit:detail", args=[done.pk])).content.decode()
    assert f'href="/audit/{started.pk}/">intent #{started.pk}</a>' in outcome_page

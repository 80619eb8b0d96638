"""Projects' `sourceNamespaces` (where their Applications may live, apps in any namespace): shown and edited."""

from __future__ import annotations

import pytest

from .conftest import events
from .test_projects import make

pytestmark = pytest.mark.django_db


def test_source_namespaces_are_shown_and_edited_with_the_structured_form(admin_client, argo, sim, unique):
    name = f"ns-{unique}"
    make(admin_client, name, sourceNamespaces=["team-a"])
    page = admin_client.get(f"/kinds/projects/sim-k/{name}/").content.decode()
    assert "Source namespaces" in page and "team-a" in page
    r = admin_client.post(
        f"/kinds/projects/sim-k/{name}/edit/",
        {
            "sourceRepos": "*",
            "destinations": f"https://kubernetes.default.svc {name}-*",
            "sourceNamespaces": "team-a\nteam-b-*",
        },
    )
    assert r.status_code == 302
    assert sim.state.projects[name]["spec"]["sourceNamespaces"] == ["team-a", "team-b-*"]
    event = events(kind="project", action="edit")[-1]
    assert event.before["spec"]["sourceNamespaces"] == ["team-a"]
    assert event.after["spec"]["sourceNamespaces"] == ["team-a", "team-b-*"]

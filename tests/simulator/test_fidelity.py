"""Where the simulator answers as Argo CD itself does: project wording, GPG keys, certificates, sessions."""

from __future__ import annotations

import copy

from .helpers import unique


def _project(name: str) -> dict:
    return {
        "metadata": {"name": name},
        "spec": {
            "description": "first",
            "sourceRepos": ["https://a.example/x.git", "https://a.example/y.git"],
            "destinations": [{"server": "*", "namespace": "*"}],
        },
    }


def test_recreating_a_project_with_another_spec_names_the_differing_keys_as_argocd_does(admin):
    body = _project(unique("fid-proj"))
    assert admin.post("/api/v1/projects", {"project": body}).status_code == 200
    changed = copy.deepcopy(body)
    changed["spec"]["description"] = "second"
    changed["spec"]["sourceRepos"][1] = "https://a.example/z.git"
    r = admin.post("/api/v1/projects", {"project": changed})
    assert r.status_code == 400
    assert r.json()["message"] == (
        "existing project spec is different; use upsert flag to force update; "
        'difference in keys "Description,SourceRepos,1"'
    )
    assert admin.post("/api/v1/projects", {"project": body}).status_code == 200  # the same spec is no conflict

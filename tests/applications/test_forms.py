"""The create form builds Argo CD's Application shape for each source type (no server needed)."""

from __future__ import annotations

from apps.applications.forms import CreateForm, SyncForm

BASE = {
    "name": "web",
    "namespace": "argocd",
    "project": "default",
    "repo_url": "https://charts.example.com/stable",
    "target_revision": "1.2.3",
    "dest_name": "in-cluster",
    "dest_namespace": "web",
}


def build(**fields):
    form = CreateForm({**BASE, **fields}, projects=["default"])
    assert form.is_valid(), form.errors
    return form.application()


def test_helm_fields_become_a_helm_source():
    app = build(
        source_type="helm",
        chart="web",
        helm_release_name="web-prod",
        helm_value_files="values.yaml\nvalues-prod.yaml",
        helm_values="replicas: 3\n",
        helm_parameters="image.tag=1.0\nfeature=on",
    )
    assert app["spec"]["source"] == {
        "repoURL": "https://charts.example.com/stable",
        "targetRevision": "1.2.3",
        "chart": "web",
        "helm": {
            "releaseName": "web-prod",
            "valueFiles": ["values.yaml", "values-prod.yaml"],
            "values": "replicas: 3\n",
            "parameters": [{"name": "image.tag", "value": "1.0"}, {"name": "feature", "value": "on"}],
        },
    }
    assert app["spec"]["destination"] == {"name": "in-cluster", "namespace": "web"}


def test_kustomize_and_sync_policy_fields():
    app = build(
        source_type="kustomize",
        kustomize_name_prefix="p-",
        kustomize_images="nginx:1.27",
        kustomize_common_labels="team=web",
        automated="on",
        self_heal="on",
        sync_options=["ServerSideApply=true"],
        prune_propagation="foreground",
        finalizers="resources-finalizer.argocd.argoproj.io",
    )
    assert app["spec"]["source"]["kustomize"] == {
        "namePrefix": "p-",
        "images": ["nginx:1.27"],
        "commonLabels": {"team": "web"},
    }
    assert app["spec"]["syncPolicy"] == {
        "automated": {"prune": False, "selfHeal": True, "allowEmpty": False},
        "syncOptions": ["ServerSideApply=true", "PrunePropagationPolicy=foreground"],
    }
    assert app["metadata"]["finalizers"] == ["resources-finalizer.argocd.argoproj.io"]


def test_bad_lines_and_both_destinations_are_refused_with_a_reason():
    form = CreateForm({**BASE, "labels": "no-equals-sign", "dest_server": "https://x"}, projects=["default"])
    assert not form.is_valid()
    assert "Labels, line 1" in str(form.errors["labels"])
    assert "not both" in str(form.non_field_errors())
    form = CreateForm({**BASE, "ignore_differences": "a: b"}, projects=["default"])
    assert not form.is_valid() and "YAML list" in str(form.errors["ignore_differences"])


def test_sync_form_keeps_strategy_force_and_dry_run():
    form = SyncForm(
        {"nonce": "x", "strategy": "apply", "force": "on", "dry_run": "on", "revision": "main"},
        resources=[],
    )
    assert form.is_valid(), form.errors
    assert form.params() == {"prune": False, "dryRun": True, "strategy": "apply", "force": True, "revision": "main"}

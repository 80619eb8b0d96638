"""Forms for the application pages. Each form turns its fields into Argo CD's own JSON shapes."""

from __future__ import annotations

import re
from typing import Any

from django import forms

from apps.core import documents
from apps.operations.services import new_nonce

from .services import PRUNE_POLICIES, SYNC_OPTIONS, parse_resource_key

JSON = dict[str, Any]

# Go durations as Argo CD's backoff accepts them: "5s", "3m", "1h30m", "500ms".
DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
LINES = forms.Textarea(attrs={"rows": 3})


def _duration(value: str) -> str:
    if value and not DURATION.match(value):
        raise forms.ValidationError("Use a Go duration such as 5s, 3m or 1h30m.")
    return value


def parse_pairs(text: str, what: str) -> dict[str, str]:
    """`key=value` per line (blank lines ignored) into a dict; a line without `=` is an error."""
    pairs = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if "=" not in line:
            raise forms.ValidationError(f"{what}, line {number}: write key=value.")
        key, value = line.split("=", 1)
        if not key.strip():
            raise forms.ValidationError(f"{what}, line {number}: the key is empty.")
        pairs[key.strip()] = value.strip()
    return pairs


def parse_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def parse_document(text: str, fmt: str = "yaml") -> Any:
    """YAML or JSON text into data (bounded, see apps.core.documents); errors name the line and column."""
    try:
        return documents.parse(text, fmt)
    except documents.DocumentError as exc:
        raise forms.ValidationError(str(exc), code=documents.REFUSED if exc.refused else "invalid") from exc


class RetryFields(forms.Form):
    """Retry strategy fields shared by the sync and create forms."""

    retry_limit = forms.IntegerField(required=False, min_value=-1, max_value=100, label="Retry limit")
    backoff_duration = forms.CharField(required=False, max_length=20, label="Backoff duration", initial="5s")
    backoff_factor = forms.IntegerField(required=False, min_value=1, max_value=10, label="Backoff factor", initial=2)
    backoff_max_duration = forms.CharField(required=False, max_length=20, label="Max backoff", initial="3m")

    def clean_backoff_duration(self) -> str:
        return _duration(self.cleaned_data["backoff_duration"])

    def clean_backoff_max_duration(self) -> str:
        return _duration(self.cleaned_data["backoff_max_duration"])

    def retry(self) -> JSON | None:
        d = self.cleaned_data
        if d.get("retry_limit") in (None, 0):
            return None
        backoff = {
            "duration": d.get("backoff_duration") or None,
            "factor": d.get("backoff_factor"),
            "maxDuration": d.get("backoff_max_duration") or None,
        }
        backoff = {k: v for k, v in backoff.items() if v is not None}
        return {"limit": d["retry_limit"], **({"backoff": backoff} if backoff else {})}


class SyncOptionsFields(forms.Form):
    sync_options = forms.MultipleChoiceField(
        required=False, choices=SYNC_OPTIONS, widget=forms.CheckboxSelectMultiple, label="Sync options"
    )
    prune_propagation = forms.ChoiceField(
        required=False,
        choices=[("", "default (foreground)")] + [(p, p) for p in PRUNE_POLICIES],
        label="Prune propagation policy",
    )

    def options(self) -> list[str]:
        items = list(self.cleaned_data.get("sync_options") or [])
        if self.cleaned_data.get("prune_propagation"):
            items.append(f"PrunePropagationPolicy={self.cleaned_data['prune_propagation']}")
        return items


class LimitedCheckboxes(forms.CheckboxSelectMultiple):
    """Checkboxes of which some are disabled, each with the reason as its title (a grant's constraint)."""

    def __init__(self, *args: Any, disabled: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.disabled = disabled or {}

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):  # noqa: ANN001, ANN201
        option = super().create_option(name, value, label, selected, index, subindex=subindex, attrs=attrs)
        if str(value) in self.disabled:
            option["attrs"] = {**option["attrs"], "disabled": True, "title": self.disabled[str(value)]}
        return option


# The sync form's fields a grant's constraint may close, and the value a closed field keeps.
LIMITED_FIELDS = {"prune": ("prune", False), "force": ("force", False), "dry_run_only": ("dry_run", True)}
LIMITED_OPTIONS = {"replace": "Replace=true", "server_side_apply": "ServerSideApply=true"}


class SyncForm(RetryFields, SyncOptionsFields):
    revision = forms.CharField(required=False, max_length=200, help_text="Empty: the app's target revision.")
    prune = forms.BooleanField(required=False)
    dry_run = forms.BooleanField(required=False, label="Dry run")
    strategy = forms.ChoiceField(choices=[("apply", "apply"), ("hook", "hook")], initial="hook")
    force = forms.BooleanField(required=False)
    resources = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, help_text="None ticked: sync all resources."
    )
    nonce = forms.CharField(widget=forms.HiddenInput)

    def __init__(
        self, *args: Any, resources: list[JSON] | None = None, limits: dict[str, str] | None = None, **kwargs: Any
    ) -> None:
        from .services import resource_key

        super().__init__(*args, **kwargs)
        self.limits = limits or {}
        self._limit_fields()
        self.fields["resources"].choices = [
            (
                resource_key(r),
                f"{r.get('kind')} {r.get('namespace') + '/' if r.get('namespace') else ''}{r.get('name')}",
            )
            for r in resources or []
        ]
        self.fields["nonce"].initial = new_nonce()
        self.fields["retry_limit"].initial = None

    def _limit_fields(self) -> None:
        """Disable in the page what the user's grants do not allow, with the reason. What is posted is still
        what is asked (never silently changed): the server decides it, and refuses a hand-made POST."""
        for constraint, (name, value) in LIMITED_FIELDS.items():
            if constraint in self.limits:
                field = self.fields[name]
                field.widget.attrs.update(disabled=True, title=self.limits[constraint])
                field.initial, field.help_text = value, self.limits[constraint]
        # A disabled box is not submitted: the form sends a dry run through a hidden input instead.
        self.forced_dry_run = "dry_run_only" in self.limits
        options = {LIMITED_OPTIONS[c]: why for c, why in self.limits.items() if c in LIMITED_OPTIONS}
        widget = LimitedCheckboxes(disabled=options)
        widget.choices = self.fields["sync_options"].choices
        self.fields["sync_options"].widget = widget
        if "partial" in self.limits:
            self.fields["resources"].widget.attrs.update(disabled=True, title=self.limits["partial"])
            self.fields["resources"].help_text = self.limits["partial"]
        if "revision" in self.limits:
            self.fields["revision"].help_text = f"Empty: the app's target revision. {self.limits['revision']}."

    def params(self) -> JSON:
        """The sync Operation's params as apps.operations.runners.run_sync reads them (Argo CD's names)."""
        d = self.cleaned_data
        params: JSON = {
            "prune": d["prune"],
            "dryRun": d["dry_run"],
            "strategy": d["strategy"],
            "force": d["force"],
        }
        if d["revision"]:
            params["revision"] = d["revision"]
        if d["resources"]:
            params["resources"] = [parse_resource_key(k) for k in d["resources"]]
        if self.options():
            params["syncOptions"] = self.options()
        if self.retry():
            params["retryStrategy"] = self.retry()
        return params


class AutosyncForm(forms.Form):
    """Automated sync on or off, with its prune and self-heal flags (Argo CD's spec.syncPolicy.automated)."""

    automated = forms.BooleanField(required=False, label="Automated sync")
    prune = forms.BooleanField(required=False, label="Prune")
    self_heal = forms.BooleanField(required=False, label="Self-heal")

    def params(self) -> JSON:
        d = self.cleaned_data
        on = d["automated"]
        return {"automated": on, "prune": on and d["prune"], "selfHeal": on and d["self_heal"]}

    @staticmethod
    def patch(params: JSON) -> JSON:
        """A merge patch of the spec: null removes `automated`, leaving the rest of the sync policy as it is."""
        automated = {"prune": params["prune"], "selfHeal": params["selfHeal"]} if params["automated"] else None
        return {"spec": {"syncPolicy": {"automated": automated}}}


class RollbackForm(forms.Form):
    id = forms.IntegerField(min_value=0)
    prune = forms.BooleanField(required=False)
    dry_run = forms.BooleanField(required=False)
    nonce = forms.CharField()


class DeleteForm(forms.Form):
    confirm_name = forms.CharField(max_length=253)
    cascade = forms.BooleanField(required=False)
    propagation_policy = forms.ChoiceField(
        required=False, choices=[("foreground", "foreground"), ("background", "background")]
    )


class ResourceForm(forms.Form):
    """Which live resource an action or a delete is about (hidden fields from the actions tab)."""

    group = forms.CharField(required=False, max_length=253)
    version = forms.CharField(max_length=63)
    kind = forms.CharField(max_length=253)
    namespace = forms.CharField(required=False, max_length=253)
    resource_name = forms.CharField(max_length=253)
    action = forms.CharField(required=False, max_length=253)
    orphan = forms.BooleanField(required=False)
    force = forms.BooleanField(required=False)

    def target(self) -> JSON:
        d = self.cleaned_data
        return {
            "group": d["group"] or None,
            "version": d["version"],
            "kind": d["kind"],
            "namespace": d["namespace"] or None,
            "resource_name": d["resource_name"],
        }


class EditForm(forms.Form):
    format = forms.ChoiceField(choices=[("yaml", "YAML"), ("json", "JSON")], initial="yaml")
    document = forms.CharField(strip=False, widget=forms.Textarea(attrs={"rows": 24, "spellcheck": "false"}))

    def clean(self) -> JSON:
        d = super().clean()
        if "document" in d:
            doc = parse_document(d["document"], d.get("format", "yaml"))
            if not isinstance(doc, dict) or not isinstance(doc.get("spec"), dict):
                raise forms.ValidationError("The document must be a mapping with a `spec` mapping.")
            meta = doc.get("metadata") or {}
            if not isinstance(meta, dict):
                raise forms.ValidationError("`metadata` must be a mapping.")
            d["parsed"] = doc
        return d


class PatchForm(forms.Form):
    patch_type = forms.ChoiceField(
        choices=[("json", "JSON patch (RFC 6902)"), ("merge", "JSON merge patch (RFC 7386)")], initial="json"
    )
    patch = forms.CharField(strip=False, widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}))

    def clean(self) -> JSON:
        d = super().clean()
        if "patch" in d:
            doc = parse_document(d["patch"], "json")
            if d.get("patch_type") == "json":
                ok = isinstance(doc, list) and all(isinstance(op, dict) and "op" in op and "path" in op for op in doc)
                if not ok:
                    raise forms.ValidationError('A JSON patch is a list of operations like {"op", "path", "value"}.')
            elif not isinstance(doc, dict):
                raise forms.ValidationError("A merge patch is a JSON object.")
            d["parsed"] = doc
        return d


class CreateForm(RetryFields, SyncOptionsFields):
    """The fields of an Application as in the seed reference (metadata, source, destination, sync policy)."""

    name = forms.CharField(max_length=253)
    namespace = forms.CharField(max_length=63, initial="argocd", help_text="Where the Application object lives.")
    labels = forms.CharField(required=False, widget=LINES, help_text="key=value per line")
    annotations = forms.CharField(required=False, widget=LINES, help_text="key=value per line")
    finalizers = forms.CharField(
        required=False, widget=LINES, help_text="One per line, e.g. resources-finalizer.argocd.argoproj.io"
    )
    project = forms.ChoiceField()
    repo_url = forms.CharField(max_length=500, label="Repository URL")
    path = forms.CharField(required=False, max_length=500)
    chart = forms.CharField(required=False, max_length=253, help_text="Helm repositories only")
    target_revision = forms.CharField(required=False, max_length=200, initial="HEAD")
    source_type = forms.ChoiceField(
        choices=[
            ("", "plain directory / auto"),
            ("helm", "Helm"),
            ("kustomize", "Kustomize"),
            ("directory", "Directory"),
        ],
        required=False,
    )
    helm_release_name = forms.CharField(required=False, max_length=253, label="Helm release name")
    helm_value_files = forms.CharField(required=False, widget=LINES, label="Helm value files", help_text="one per line")
    helm_values = forms.CharField(
        required=False, strip=False, widget=forms.Textarea(attrs={"rows": 4}), label="Helm values (YAML)"
    )
    helm_parameters = forms.CharField(required=False, widget=LINES, label="Helm parameters", help_text="name=value")
    kustomize_name_prefix = forms.CharField(required=False, max_length=100, label="Kustomize name prefix")
    kustomize_name_suffix = forms.CharField(required=False, max_length=100, label="Kustomize name suffix")
    kustomize_images = forms.CharField(required=False, widget=LINES, label="Kustomize images", help_text="image:tag")
    kustomize_common_labels = forms.CharField(required=False, widget=LINES, label="Kustomize common labels")
    directory_recurse = forms.BooleanField(required=False, label="Directory: recurse")
    directory_include = forms.CharField(required=False, max_length=500, label="Directory: include glob")
    directory_exclude = forms.CharField(required=False, max_length=500, label="Directory: exclude glob")
    dest_server = forms.CharField(required=False, max_length=500, initial="https://kubernetes.default.svc")
    dest_name = forms.CharField(required=False, max_length=253, help_text="Cluster name, instead of the server URL")
    dest_namespace = forms.CharField(required=False, max_length=63)
    automated = forms.BooleanField(required=False, label="Automated sync")
    auto_prune = forms.BooleanField(required=False, label="Automated: prune")
    self_heal = forms.BooleanField(required=False, label="Automated: self heal")
    allow_empty = forms.BooleanField(required=False, label="Automated: allow empty")
    ignore_differences = forms.CharField(
        required=False, strip=False, widget=forms.Textarea(attrs={"rows": 4}), label="ignoreDifferences (YAML list)"
    )
    revision_history_limit = forms.IntegerField(required=False, min_value=0, max_value=1000)

    # Inputs offered a <datalist> of what the instance knows (the page fills them; any value is still accepted).
    DATALISTS = {
        "repo_url": "repos-list",
        "path": "paths-list",
        "chart": "charts-list",
        "target_revision": "revisions-list",
        "dest_server": "servers-list",
        "dest_name": "cluster-names-list",
    }

    def __init__(self, *args: Any, projects: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["project"].choices = [(p, p) for p in projects or []]
        for name, datalist in self.DATALISTS.items():
            self.fields[name].widget.attrs.update(list=datalist, autocomplete="off")

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not NAME.match(name):
            raise forms.ValidationError("Use lower-case letters, digits, '-' and '.'.")
        return name

    def clean_labels(self) -> dict[str, str]:
        return parse_pairs(self.cleaned_data["labels"], "Labels")

    def clean_annotations(self) -> dict[str, str]:
        return parse_pairs(self.cleaned_data["annotations"], "Annotations")

    def clean_helm_parameters(self) -> dict[str, str]:
        return parse_pairs(self.cleaned_data["helm_parameters"], "Helm parameters")

    def clean_kustomize_common_labels(self) -> dict[str, str]:
        return parse_pairs(self.cleaned_data["kustomize_common_labels"], "Common labels")

    def clean_helm_values(self) -> str:
        parse_document(self.cleaned_data["helm_values"])
        return self.cleaned_data["helm_values"]

    def clean_ignore_differences(self) -> list:
        text = self.cleaned_data["ignore_differences"]
        doc = parse_document(text) if text.strip() else []
        if not isinstance(doc, list) or not all(isinstance(i, dict) for i in doc):
            raise forms.ValidationError("ignoreDifferences is a YAML list of mappings (group, kind, jsonPointers…).")
        return doc

    def clean(self) -> JSON:
        d = super().clean()
        if d.get("dest_server") and d.get("dest_name"):
            raise forms.ValidationError("Give the destination cluster by server URL or by name, not both.")
        if not d.get("dest_server") and not d.get("dest_name"):
            raise forms.ValidationError("Give the destination cluster by server URL or by name.")
        return d

    def application(self) -> JSON:
        """The Application object to POST, with only the fields that were filled in."""
        d = self.cleaned_data
        meta: JSON = {"name": d["name"], "namespace": d["namespace"]}
        for key in ("labels", "annotations"):
            if d[key]:
                meta[key] = d[key]
        if parse_lines(d["finalizers"]):
            meta["finalizers"] = parse_lines(d["finalizers"])
        source: JSON = {"repoURL": d["repo_url"], "targetRevision": d["target_revision"] or "HEAD"}
        if d["path"]:
            source["path"] = d["path"]
        if d["chart"]:
            source["chart"] = d["chart"]
        kind = d["source_type"]
        if kind == "helm":
            helm = {
                "releaseName": d["helm_release_name"],
                "valueFiles": parse_lines(d["helm_value_files"]),
                "values": d["helm_values"],
                "parameters": [{"name": k, "value": v} for k, v in d["helm_parameters"].items()],
            }
            source["helm"] = {k: v for k, v in helm.items() if v}
        elif kind == "kustomize":
            kustomize = {
                "namePrefix": d["kustomize_name_prefix"],
                "nameSuffix": d["kustomize_name_suffix"],
                "images": parse_lines(d["kustomize_images"]),
                "commonLabels": d["kustomize_common_labels"],
            }
            source["kustomize"] = {k: v for k, v in kustomize.items() if v}
        elif kind == "directory":
            directory = {
                "recurse": d["directory_recurse"],
                "include": d["directory_include"],
                "exclude": d["directory_exclude"],
            }
            source["directory"] = {k: v for k, v in directory.items() if v}
        destination = {"namespace": d["dest_namespace"]}
        destination.update({"server": d["dest_server"]} if d["dest_server"] else {"name": d["dest_name"]})
        spec: JSON = {"project": d["project"], "source": source, "destination": destination}
        policy: JSON = {}
        if d["automated"]:
            policy["automated"] = {"prune": d["auto_prune"], "selfHeal": d["self_heal"], "allowEmpty": d["allow_empty"]}
        if self.options():
            policy["syncOptions"] = self.options()
        if self.retry():
            policy["retry"] = self.retry()
        if policy:
            spec["syncPolicy"] = policy
        if d["ignore_differences"]:
            spec["ignoreDifferences"] = d["ignore_differences"]
        if d["revision_history_limit"] is not None:
            spec["revisionHistoryLimit"] = d["revision_history_limit"]
        return {"metadata": meta, "spec": spec}


class CreateYamlForm(forms.Form):
    document = forms.CharField(
        strip=False, widget=forms.Textarea(attrs={"rows": 20, "spellcheck": "false"}), label="Application YAML"
    )

    def clean_document(self) -> JSON:
        doc = parse_document(self.cleaned_data["document"])
        if not isinstance(doc, dict) or not isinstance(doc.get("spec"), dict):
            raise forms.ValidationError("The document must be an Application mapping with `metadata` and `spec`.")
        meta = doc.get("metadata")
        if not isinstance(meta, dict) or not meta.get("name"):
            raise forms.ValidationError("`metadata.name` is required.")
        return {"metadata": meta, "spec": doc["spec"]}

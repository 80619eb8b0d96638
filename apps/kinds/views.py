"""The generic views for every kind in registry.py: index, list, detail (+ extra actions), form, delete.

Each view opens with `_kind()` + `get_instance()` and a permission check (`services.check`, i.e. require());
kind-specific behaviour lives in extras.py and is looked up by slug, never by subclassing.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseClientRedirect, HttpResponseClientRefresh, trigger_client_event

from apps.access.guards import get_instance
from apps.access.rules import can, is_platform_admin
from apps.audit.service import Outcome, record
from apps.core import documents
from apps.core.argocd_pages import argocd_errors

from . import extras, services
from .forms import KindForm, build_body, merge_yaml, to_yaml
from .overview import instances_overview
from .registry import REGISTRY, ResourceKind, get_kind, object_url
from .validators import load_yaml_object


def _kind(slug: str) -> ResourceKind:
    kind = get_kind(slug)
    if kind is None:
        raise Http404(f"No resource kind {slug!r}.")
    return kind


def _detail_url(kind: ResourceKind, instance: str, key: str) -> str:
    return object_url(kind.slug, instance, key)


def _go(request: HttpRequest, url: str) -> HttpResponse:
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "kinds/index.html", {"kinds": REGISTRY.values(), **instances_overview(request.user)})


@require_GET
def kind_list(request: HttpRequest, kind: str) -> HttpResponse:
    k = _kind(kind)
    instances = services.listable_instances(request.user, k)
    chosen = request.GET.get("instance", "")
    shown = [i for i in instances if i.name == chosen] if chosen else instances
    filters = {f.name: request.GET.get(f.name, "").strip() for f in k.filters}
    blocks = services.list_across(request.user, k, shown, filters)
    rows = [
        {"instance": b.instance.name, "key": k.key(obj), "cells": [(c.value(obj), c.badge) for c in k.columns]}
        for b in blocks
        for obj in b.rows
    ]
    # Project-scoped kinds check the project named in the form on submit: the form is offered where some grant
    # allows creating in some project, never where every submit would be refused.
    creatable = [i.name for i in instances if k.create and services.may_create(request.user, k, i)]
    context = {
        "kind": k,
        "instances": instances,
        "chosen": chosen,
        "filters": [(f, filters[f.name]) for f in k.filters],
        "blocks": blocks,
        "rows": rows,
        "creatable": creatable,
        "granted_only": not is_platform_admin(request.user),
    }
    return render(request, "kinds/list.html#rows" if request.htmx else "kinds/list.html", context)


@require_http_methods(["GET", "POST"])
@argocd_errors
def detail(request: HttpRequest, kind: str, instance: str, key: str) -> HttpResponse:
    k = _kind(kind)
    inst = get_instance(instance, request, kind=k.audit_kind, target=key)
    services.precheck(request, "view", k, inst, key)
    obj = services.fetch(k, inst, key)
    project = services.check(request, "view", k, inst, obj, key)
    context: dict[str, Any] = {}
    if request.method == "POST":
        name = next((e.name for e in k.extras if e.name in request.POST), "")
        if not name:
            return HttpResponse("Unknown action.", status=400)
        answer = extras.run(request, k, inst, key, obj, name)
        if isinstance(answer, HttpResponse):
            return answer
        if answer.get("notice") and not answer.get("new_token"):
            # Plain success: show it as a message on a fresh page (PRG / full refresh for htmx).
            messages.success(request, answer["notice"])
            return HttpResponseClientRefresh() if request.htmx else redirect(object_url(k.slug, inst.name, key))
        if request.htmx:  # an error, a one-time token, an answer or an Operation card: in place
            response = render(request, "kinds/_result.html", {"kind": k, "instance": inst, "key": key, **answer})
            # A new token changes the token table; the page refreshes that part (not the one-time token).
            return trigger_client_event(response, "tokens-changed") if answer.get("new_token") else response
        context.update(answer)
        if context.pop("reload", False):
            obj = services.fetch(k, inst, key)
    shown = services.display(obj)
    context.update(
        kind=k,
        instance=inst,
        key=key,
        self_url=object_url(k.slug, inst.name, key),
        obj=shown,
        project=project,
        sections=[(s.title, s.get(shown)) for s in k.sections],
        yaml=to_yaml(shown, k) if k.yaml else "",
        actions=[e for e in k.extras if can(request.user, e.action, inst, project, "*")],
        may_edit=k.editable and can(request.user, "edit", inst, project, "*"),
        may_delete=k.delete is not None and can(request.user, "delete", inst, project, "*"),
        extras_template=extras.TEMPLATES.get(k.slug, ""),
        **extras.load(request, k, inst, key, obj),
    )
    return render(request, "kinds/detail.html", context)


@require_http_methods(["GET", "POST"])
@argocd_errors
def form(request: HttpRequest, kind: str, instance: str, key: str | None = None) -> HttpResponse:
    k = _kind(kind)
    inst = get_instance(instance, request, kind=k.audit_kind, target=key or "")
    editing = key is not None
    if (editing and not k.editable) or (not editing and not k.create):
        raise Http404(f"{k.title} cannot be {'edited' if editing else 'created'} here.")
    services.precheck(request, "edit" if editing else "create", k, inst, key or "")
    obj = services.fetch(k, inst, key) if editing else None
    if editing:
        project = services.check(request, "edit", k, inst, obj, key)
    mode = (
        "yaml" if k.yaml and (not k.fields or request.GET.get("mode") == "yaml" or "yaml" in request.POST) else "form"
    )
    f = KindForm(k, request.POST or None, obj=obj, editing=editing) if mode == "form" else None
    text = request.POST.get("yaml", "") if request.method == "POST" else (to_yaml(obj, k) if obj else k.yaml_template)
    context: dict[str, Any] = {"kind": k, "instance": inst, "key": key, "form": f, "mode": mode, "text": text}
    if request.method == "POST":
        body, changed, error = _body(k, f, text, obj, key)
        if isinstance(error, documents.Refusal):  # as likely a probe as a slip: audited
            where = {
                "instance": inst.name,
                "kind": k.audit_kind,
                "project": project if editing else "",
                "name": key or "",
            }
            record(request, action="edit" if editing else "create", outcome=Outcome.FAILED, error=str(error), **where)
        if not error and k.validate:
            error = k.validate(body)
        if not error:
            name = key or k.key(body)
            # The project the body names must be ours too — no creating in or moving into a foreign project —
            # and that holds before anything reaches Argo CD, a preview included.
            project = services.check(request, "edit" if editing else "create", k, inst, body, name)
        if not error and "preview" in request.POST:
            context.update(extras.preview(request, k, inst, body))
            if f is not None:
                f.data = _without_private_keys(f.data)
            return render(request, "kinds/form.html", context)
        if not error:
            result = services.mutate(
                request,
                kind=k,
                instance=inst,
                action="edit" if editing else "create",
                name=name,
                project=project,
                call=(lambda c: k.update(c, body, changed)) if editing else (lambda c: k.create(c, body)),
                before=obj,
                after=body,
                payload={"updatedFields": changed} if editing else None,
            )
            if result.ok:
                return _saved(request, k, inst.name, name or _key_of(k, result.value), editing)
            error = result.error
        context["error"] = error
        if f is not None:
            f.data = _without_private_keys(f.data)
    return render(request, "kinds/form.html", context, status=400 if context.get("error") else 200)


def _key_of(k: ResourceKind, answer: Any) -> str:
    """The new object's key from Argo CD's answer, for kinds whose body does not name it (GPG key IDs)."""
    return k.key(answer) if isinstance(answer, dict) else ""


def _saved(request: HttpRequest, k: ResourceKind, instance: str, name: str, editing: bool) -> HttpResponse:
    if not name:  # Argo CD answered without a new object (a GPG key already there is skipped)
        messages.warning(request, f"Argo CD added no new {k.singular} on {instance}; it may already be there.")
        return _go(request, reverse("kinds:list", args=[k.slug]) + f"?instance={instance}")
    messages.success(request, f"{k.singular} {name} {'saved' if editing else 'created'} on {instance}.")
    return _go(request, _detail_url(k, instance, name))


def _without_private_keys(data: Any) -> Any:
    """Never echo a pasted private key back into the page, even in a field meant for public data."""
    data = data.copy()
    for name, value in data.items():
        if "PRIVATE KEY" in str(value):
            data[name] = ""
    return data


def _body(k: ResourceKind, f: KindForm | None, text: str, obj: Any, key: str | None) -> tuple[Any, list[str], str]:
    """(body, changed top-level fields, error) from the YAML text or the structured form."""
    if f is None:
        parsed, error = load_yaml_object(text)
        if error:
            return None, [], error
        error = _renamed(k, parsed, obj, key) if key is not None else ""
        if error:
            return None, [], error
        return merge_yaml(parsed, obj), ["metadata", "spec"], ""
    if not f.is_valid():
        return None, [], "Please correct the fields marked below."
    body, changed = build_body(k, f.values, obj)
    if obj is not None and not changed:
        return None, [], "Nothing changed."
    if obj is not None and k.check_edit:
        error = k.check_edit(obj, f.values, changed)
        if error:
            return None, [], error
    return body, changed, ""


def _renamed(k: ResourceKind, edited: Any, obj: Any, key: str) -> str:
    """Argo CD has no rename: an edit saved under another name or namespace would make a second object."""
    meta, old = edited["metadata"], obj.get("metadata") or {}
    article = "An" if k.singular[:1] in "AEIOU" else "A"
    if meta["name"] != key:
        return (
            f"{article} {k.singular} cannot be renamed; create a new one and delete this one "
            f"(metadata.name must stay {key})."
        )
    if meta.get("namespace", old.get("namespace")) != old.get("namespace"):
        return (
            f"{article} {k.singular} cannot be moved to another namespace; create a new one and delete this one "
            f"(metadata.namespace must stay {old.get('namespace') or 'unset'})."
        )
    return ""


@require_http_methods(["GET", "POST"])
@argocd_errors
def delete(request: HttpRequest, kind: str, instance: str, key: str) -> HttpResponse:
    k = _kind(kind)
    inst = get_instance(instance, request, kind=k.audit_kind, target=key)
    if k.delete is None:
        raise Http404(f"{k.title} cannot be deleted here.")
    services.precheck(request, "delete", k, inst, key)
    obj = services.fetch(k, inst, key)
    project = services.check(request, "delete", k, inst, obj, key)
    context: dict[str, Any] = {"kind": k, "instance": inst, "key": key, "obj": services.display(obj)}
    payload = None
    if k.slug == "applicationsets":  # name what goes with the set (or stays), and record it
        context.update(extras.appset_deletion(inst, obj, request.user))
        verdict = "deleted" if context["apps_deleted"] else "kept"
        payload = {f"applications_{verdict}": context["owned_names"]}
        if context["owned_error"]:  # the list failed: say so rather than record "none"
            payload["applications_unknown"] = context["owned_error"]
    if request.method == "POST":
        if k.typed_delete and request.POST.get("confirm_name", "") != key:
            context["error"] = f"Type {key} exactly to confirm."
            return render(request, "kinds/delete.html", context, status=400)
        result = services.mutate(
            request,
            kind=k,
            instance=inst,
            action="delete",
            name=key,
            project=project,
            call=lambda c: k.delete(c, key, obj),
            before=obj,
            payload=payload,
        )
        if result.ok:
            messages.success(request, f"{k.singular} {key} deleted from {inst.name}.")
            return _go(request, reverse("kinds:list", args=[k.slug]) + f"?instance={inst.name}")
        context["error"] = result.error
        return render(request, "kinds/delete.html", context, status=400)
    return render(request, "kinds/delete.html", context)

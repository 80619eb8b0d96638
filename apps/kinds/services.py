"""What the views share: which instances a user may list a kind on, fan-out lists, and audited mutations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest

from apps.access.guards import refusal, require
from apps.access.rules import can, can_somewhere, instances_visible
from apps.argocd import ArgoCDError, errors, fan_out
from apps.audit.chain import redact
from apps.audit.service import Outcome, begin, record
from apps.instances.models import Instance

from .registry import JSON, ResourceKind

FANOUT_DEADLINE = float(getattr(settings, "KINDS_FANOUT_DEADLINE", 8.0))


def listable_instances(user, kind: ResourceKind) -> list[Instance]:
    """Instances where the user may see this kind at all (instance-wide kinds need a `*`/`*` grant)."""
    visible = instances_visible(user)
    if kind.project_of is None:
        return [i for i in visible if can(user, "view", i, "*", "*")]
    return visible


@dataclass
class InstanceRows:
    instance: Instance
    rows: list[JSON] = field(default_factory=list)
    error: str = ""
    hidden: int = 0  # objects on the instance the user may not see


def list_across(user, kind: ResourceKind, instances: list[Instance], filters: JSON) -> list[InstanceRows]:
    """Fan the kind's list call out; keep only what the user may view; one error per failing instance."""
    clients = {i.name: i.client() for i in instances}
    try:
        outcomes = fan_out(clients, lambda c: kind.list(c, filters), deadline=FANOUT_DEADLINE)
    finally:
        for c in clients.values():
            c.close()
    out = []
    for inst in instances:
        o = outcomes[inst.name]
        block = InstanceRows(inst)
        if not o.ok:
            block.error = o.error.message if o.error else "no answer"
        else:
            for obj in o.value or []:
                if can(user, "view", inst, kind.scope(obj), "*"):
                    block.rows.append(obj)
                else:
                    block.hidden += 1
        out.append(block)
    return out


def fetch(kind: ResourceKind, instance: Instance, key: str) -> JSON:
    """One object, live. NotFound/PermissionDenied from Argo CD become a 404 page."""
    with instance.client() as c:
        try:
            obj = kind.get(c, key) if kind.get else _find(kind, c, key)
        except (errors.NotFound, errors.PermissionDenied) as exc:
            raise Http404(exc.message) from exc
    if not obj:
        raise Http404(f"{kind.singular} {key!r} not found on {instance.name}.")
    return obj


def _find(kind: ResourceKind, client, key: str) -> JSON | None:
    return next((o for o in kind.list(client, {}) if kind.key(o) == key), None)


def may_create(user, kind: ResourceKind, instance: Instance) -> bool:
    """Whether to offer the create form: the grant itself for instance-wide kinds, a grant of create in some
    project for project-scoped ones (the project the form names is checked on submit)."""
    if kind.project_of is None:
        return can(user, "create", instance)
    return can_somewhere(user, "create", instance)


def precheck(request: HttpRequest, action: str, kind: ResourceKind, instance: Instance, key: str = "") -> None:
    """Before asking Argo CD anything: instance-wide kinds need the grant itself; project-scoped kinds at
    least some grant on the instance (the object's own project is checked once it is read), and to create, a
    grant of create in some project."""
    if kind.project_of is None:
        check(request, action, kind, instance, None, key)
    elif instance not in instances_visible(request.user):
        require(request, "view", instance, kind=kind.audit_kind, name=key)  # 404, audited
    elif action == "create" and not can_somewhere(request.user, "create", instance):
        # They see the instance, so say why rather than answer "not found"; audited like every refusal.
        record(request, action="create", outcome=Outcome.DENIED, instance=instance.name, kind=kind.audit_kind,
               error="no grant allows create on this instance")  # fmt: skip
        raise PermissionDenied(refusal("create", kind.audit_kind, "", instance.name))


def check(request: HttpRequest, action: str, kind: ResourceKind, instance: Instance, obj: JSON | None, key: str) -> str:
    """require() for a kind's object; returns the project scope used (for the audit record)."""
    project = kind.scope(obj)
    require(request, action, instance, project, "*", kind=kind.audit_kind, name=key)
    return project


def display(obj: Any) -> Any:
    """What a page may show of an Argo CD object: secret-looking keys masked, however deep."""
    return redact(obj)


@dataclass
class Result:
    ok: bool
    value: Any = None
    error: str = ""


def mutate(
    request: HttpRequest,
    *,
    kind: ResourceKind,
    instance: Instance,
    action: str,
    name: str,
    project: str,
    call: Callable[[Any], Any],
    before: Any = None,
    after: Any = None,
    payload: Any = None,
    audit_action: str = "",
) -> Result:
    """Run `call(client)` with its intent audited before and its outcome after. Argo CD's error is returned."""
    change = begin(
        request,
        action=audit_action or action,
        instance=instance.name,
        kind=kind.audit_kind,
        project=project if project != "*" else "",
        name=name,
        payload=payload,
        before=before,
        after=after,
    )
    try:
        with instance.client() as c:
            value = call(c)
    except ArgoCDError as exc:
        change.failed(exc.message)
        return Result(False, error=exc.message)
    change.succeeded()
    return Result(True, value=value)

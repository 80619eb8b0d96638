"""The instances overview on /kinds/: versions and key settings of every instance side by side (fan-out)."""

from __future__ import annotations

from typing import Any

from apps.access.rules import can, instances_visible
from apps.argocd import fan_out

from .registry import dig
from .services import FANOUT_DEADLINE

ROWS: tuple[tuple[str, Any], ...] = (
    ("Version", "version.Version"),
    ("Helm", "version.HelmVersion"),
    ("Kustomize", "version.KustomizeVersion"),
    ("Kubectl", "version.KubectlVersion"),
    ("URL", "settings.url"),
    ("Tracking method", "settings.trackingMethod"),
    ("App label key", "settings.appLabelKey"),
    ("Apps in any namespace", "settings.appsInAnyNamespaceEnabled"),
    ("Exec (terminal)", "settings.execEnabled"),
    ("Status badge", "settings.statusBadgeEnabled"),
    ("Local logins disabled", "settings.userLoginsDisabled"),
    ("Impersonation", "settings.impersonationEnabled"),
    ("OIDC issuer", "settings.oidcConfig.issuer"),
    ("Dex connectors", lambda d: len(dig(d, "settings.dexConfig.connectors", []) or [])),
    ("Plugins", lambda d: ", ".join(d.get("plugins") or []) or "none"),
)


def _facts(client) -> dict:
    return {
        "version": client.version(),
        "settings": client.get_settings(),
        "plugins": [p.get("name", "") for p in client.list_plugins()],
    }


def _cell(data: dict, getter: Any) -> str:
    value = getter(data) if callable(getter) else dig(data, getter)
    if isinstance(value, bool):
        return "on" if value else "off"
    return "" if value is None else str(value)


def instances_overview(user) -> dict:
    """{"overview_instances", "overview_rows": [(label, [cells], differs)], "overview_errors": {name: msg}}."""
    instances = [i for i in instances_visible(user) if can(user, "view", i, "*", "*")]
    clients = {i.name: i.client() for i in instances}
    try:
        outcomes = fan_out(clients, _facts, deadline=FANOUT_DEADLINE)
    finally:
        for c in clients.values():
            c.close()
    errors = {name: o.error.message for name, o in outcomes.items() if not o.ok and o.error}
    rows = []
    for label, getter in ROWS:
        cells = [_cell(o.value, getter) if o.ok else "—" for o in outcomes.values()]
        answered = {c for c, o in zip(cells, outcomes.values(), strict=True) if o.ok}
        rows.append((label, cells, len(answered) > 1))
    return {"overview_instances": list(outcomes), "overview_rows": rows, "overview_errors": errors}

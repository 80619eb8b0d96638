"""Argo CD RBAC: casbin-style CSV policies with gobwas-glob matching and deny-wins effect.

Only what Argo CD's model.conf needs: `p` lines (sub, res, act, obj, eft) and `g` lines (member, role)
with transitive role inheritance. Globs are compiled without separators, so `*` also matches `/`.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from apps.access.glob import match

SHARED_DIR = Path("/work/shared/argocd")
_FALLBACK_BUILTIN = """
p, role:readonly, applications, get, */*, allow
p, role:readonly, applicationsets, get, */*, allow
p, role:readonly, certificates, get, *, allow
p, role:readonly, clusters, get, *, allow
p, role:readonly, repositories, get, *, allow
p, role:readonly, write-repositories, get, *, allow
p, role:readonly, projects, get, *, allow
p, role:readonly, accounts, get, *, allow
p, role:readonly, gpgkeys, get, *, allow
p, role:readonly, logs, get, */*, allow
p, role:admin, applications, create, */*, allow
p, role:admin, applications, update, */*, allow
p, role:admin, applications, update/*, */*, allow
p, role:admin, applications, delete, */*, allow
p, role:admin, applications, delete/*, */*, allow
p, role:admin, applications, sync, */*, allow
p, role:admin, applications, rollback, */*, allow
p, role:admin, applications, override, */*, allow
p, role:admin, applications, action/*, */*, allow
p, role:admin, applicationsets, get, */*, allow
p, role:admin, applicationsets, create, */*, allow
p, role:admin, applicationsets, update, */*, allow
p, role:admin, applicationsets, delete, */*, allow
p, role:admin, certificates, create, *, allow
p, role:admin, certificates, update, *, allow
p, role:admin, certificates, delete, *, allow
p, role:admin, clusters, create, *, allow
p, role:admin, clusters, update, *, allow
p, role:admin, clusters, delete, *, allow
p, role:admin, repositories, create, *, allow
p, role:admin, repositories, update, *, allow
p, role:admin, repositories, delete, *, allow
p, role:admin, write-repositories, create, *, allow
p, role:admin, write-repositories, update, *, allow
p, role:admin, write-repositories, delete, *, allow
p, role:admin, projects, create, *, allow
p, role:admin, projects, update, *, allow
p, role:admin, projects, delete, *, allow
p, role:admin, accounts, update, *, allow
p, role:admin, gpgkeys, create, *, allow
p, role:admin, gpgkeys, delete, *, allow
p, role:admin, exec, create, */*, allow
g, role:admin, role:readonly
g, admin, role:admin
"""

# Resources and actions can-i accepts (server/account/account.go CanI validates against these).
RESOURCES = {
    "clusters",
    "projects",
    "applications",
    "applicationsets",
    "repositories",
    "write-repositories",
    "certificates",
    "accounts",
    "gpgkeys",
    "logs",
    "exec",
    "extensions",
}
ACTIONS = {"get", "create", "update", "delete", "sync", "override", "action", "rollback", "invoke"}


def builtin_policy() -> str:
    path = SHARED_DIR / "builtin-policy.csv"
    try:
        return path.read_text()
    except OSError:
        return _FALLBACK_BUILTIN


def glob_match(pattern: str, value: str) -> bool:
    """Argo CD's glob (gobwas, no separators): the same matcher the portal's grants use."""
    if pattern == value or pattern == "*":
        return True
    return match(pattern, value)


@dataclass(frozen=True)
class Rule:
    sub: str
    res: str
    act: str
    obj: str
    allow: bool


@dataclass
class Policy:
    rules: list[Rule]
    groupings: list[tuple[str, str]]


def parse_policy(text: str) -> Policy:
    """Parse Argo CD policy CSV; malformed lines are skipped (Argo CD logs and ignores them)."""
    rules: list[Rule] = []
    groupings: list[tuple[str, str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            fields = [f.strip() for f in next(csv.reader(io.StringIO(line), skipinitialspace=True))]
        except (csv.Error, StopIteration):
            continue
        if fields[0] == "p" and len(fields) == 6:
            rules.append(Rule(fields[1], fields[2], fields[3], fields[4], fields[5].lower() != "deny"))
        elif fields[0] == "g" and len(fields) == 3:
            groupings.append((fields[1], fields[2]))
    return Policy(rules, groupings)


class Enforcer:
    """Evaluates (sub, res, act, obj) against a fixed policy; project policies are passed per call."""

    def __init__(self, policy_csv: str, default_role: str = "") -> None:
        self.policy = parse_policy(builtin_policy() + "\n" + policy_csv)
        self.default_role = default_role
        self._roles: dict[str, set[str]] = {}
        self._cache: dict[tuple[str, str, str, str], bool] = {}

    def roles_of(self, subject: str, groupings: list[tuple[str, str]] | None = None) -> set[str]:
        """The subject itself plus every role reachable through `g` lines (transitively)."""
        if groupings is None and subject in self._roles:
            return self._roles[subject]
        edges = self.policy.groupings + (groupings or [])
        seen = {subject}
        frontier = [subject]
        while frontier:
            cur = frontier.pop()
            for member, role in edges:
                if member == cur and role not in seen:
                    seen.add(role)
                    frontier.append(role)
        if groupings is None:
            self._roles[subject] = seen
        return seen

    @staticmethod
    def _decide(subjects: set[str], rules: list[Rule], res: str, act: str, obj: str) -> bool:
        allowed = False
        for rule in rules:
            if rule.sub not in subjects:
                continue
            if glob_match(rule.res, res) and glob_match(rule.act, act) and glob_match(rule.obj, obj):
                if not rule.allow:
                    return False  # explicit deny always wins
                allowed = True
        return allowed

    def enforce(self, sub: str, res: str, act: str, obj: str, project_policy: Policy | None = None) -> bool:
        if self.default_role and self._decide(self.roles_of(self.default_role), self.policy.rules, res, act, obj):
            return True
        if not sub:
            return False
        if project_policy is not None:
            # Project role subjects (proj:<p>:<r>) are judged by that project's policies only.
            subjects = self.roles_of(sub, project_policy.groupings)
            return self._decide(subjects, project_policy.rules, res, act, obj)
        key = (sub, res, act, obj)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._decide(self.roles_of(sub), self.policy.rules, res, act, obj)
            if len(self._cache) > 200_000:
                self._cache.clear()
            self._cache[key] = hit
        return hit


def project_policy(project: dict) -> Policy:
    """AppProject.ProjectPoliciesString: implicit `projects, get` plus each role's policies and groups."""
    name = project["metadata"]["name"]
    lines: list[str] = []
    for role in project.get("spec", {}).get("roles") or []:
        subject = f"proj:{name}:{role.get('name', '')}"
        lines.append(f"p, {subject}, projects, get, {name}, allow")
        lines.extend(role.get("policies") or [])
        for group in role.get("groups") or []:
            lines.append(f"g, {group}, {subject}")
    return parse_policy("\n".join(lines))

"""Helpers shared by handler modules: field projection, label selectors, list envelopes."""

from __future__ import annotations

import copy
import re
from typing import Any

from ..errors import ApiError, invalid
from ..rbac import glob_match


def list_meta(state: Any) -> dict:
    return {"resourceVersion": str(state.rv)}


def _tree(paths: list[str]) -> dict:
    root: dict = {}
    for path in paths:
        node = root
        parts = [p for p in path.split(".") if p]
        for i, part in enumerate(parts):
            if i == len(parts) - 1:
                node[part] = True
            else:
                child = node.get(part)
                if child is True:
                    break
                node = node.setdefault(part, {})
    return root


def _include(obj: Any, tree: dict) -> Any:
    if isinstance(obj, list):
        return [_include(x, tree) for x in obj]
    if not isinstance(obj, dict):
        return obj
    out = {}
    for key, sub in tree.items():
        if key in obj:
            out[key] = copy.deepcopy(obj[key]) if sub is True else _include(obj[key], sub)
    return out


def _exclude(obj: Any, tree: dict) -> Any:
    if isinstance(obj, list):
        return [_exclude(x, tree) for x in obj]
    if not isinstance(obj, dict):
        return obj
    out = {}
    for key, value in obj.items():
        sub = tree.get(key)
        if sub is True:
            continue
        out[key] = _exclude(value, sub) if sub else value
    return out


def parse_fields(raw: str) -> tuple[bool, list[str]]:
    """`fields` query: comma list; a leading `-` means exclude."""
    raw = raw.strip()
    exclude = raw.startswith("-")
    if exclude:
        raw = raw[1:]
    return exclude, [f.strip() for f in raw.split(",") if f.strip()]


def project_fields(obj: Any, raw: str) -> Any:
    """Generic argoproj/pkg forwarder projection: dotted paths from the top of the emitted JSON."""
    exclude, paths = parse_fields(raw)
    if not paths:
        return obj
    tree = _tree(paths)
    return _exclude(obj, tree) if exclude else _include(obj, tree)


# ---------------------------------------------------------------------------------------- label selectors

_REQ = re.compile(
    r"^\s*(?P<neg>!)?\s*(?P<key>[A-Za-z0-9_./-]+)\s*(?:(?P<op>==|=|!=|\s+in\s+|\s+notin\s+)\s*(?P<val>\([^)]*\)|[A-Za-z0-9_.-]*))?\s*$"
)


def _split_selector(text: str) -> list[str]:
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p for p in parts if p.strip()]


def parse_selector(text: str) -> list[tuple[str, str, list[str]]]:
    """k8s label selector subset: k=v, k==v, k!=v, k in (a,b), k notin (a), k, !k. Errors => Unknown (500)."""
    reqs = []
    for part in _split_selector(text or ""):
        m = _REQ.match(part)
        if not m:
            raise ApiError(2, f"error parsing label selector: unable to parse requirement: {part.strip()}")
        key, op, val = m.group("key"), (m.group("op") or "").strip(), m.group("val")
        if m.group("neg"):
            if op:
                raise ApiError(2, f"error parsing label selector: unable to parse requirement: {part.strip()}")
            reqs.append(("!", key, []))
        elif not op:
            reqs.append(("exists", key, []))
        elif op in ("in", "notin"):
            values = [v.strip() for v in (val or "").strip("()").split(",") if v.strip()]
            reqs.append((op, key, values))
        else:
            reqs.append(("!=" if op == "!=" else "=", key, [val or ""]))
    return reqs


def selector_matches(reqs: list[tuple[str, str, list[str]]], labels: dict) -> bool:
    for op, key, values in reqs:
        present = key in labels
        value = labels.get(key)
        if op == "=" and value != values[0]:
            return False
        if op == "!=" and present and value == values[0]:
            return False
        if op == "in" and value not in values:
            return False
        if op == "notin" and present and value in values:
            return False
        if op == "exists" and not present:
            return False
        if op == "!" and present:
            return False
    return True


def match_label_selector(selector: dict | None, labels: dict) -> bool:
    """metav1.LabelSelector (matchLabels + matchExpressions) as used by generators."""
    if not selector:
        return True
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        op = (expr.get("operator") or "").lower()
        key, values = expr.get("key", ""), expr.get("values") or []
        if op == "in" and labels.get(key) not in values:
            return False
        if op == "notin" and labels.get(key) in values:
            return False
        if op == "exists" and key not in labels:
            return False
        if op == "doesnotexist" and key in labels:
            return False
    return True


def require_fields(obj: dict, *paths: str) -> None:
    for path in paths:
        cur: Any = obj
        for part in path.split("."):
            cur = cur.get(part) if isinstance(cur, dict) else None
        if cur in (None, "", [], {}):
            raise invalid(f"{path} is required")


def source_permitted(project_spec: dict, repo: str) -> bool:
    """AppProject.IsSourcePermitted: a sourceRepos glob matches and no `!glob` excludes the repo."""
    patterns = project_spec.get("sourceRepos") or []
    allowed = any(glob_match(p, repo) for p in patterns if not p.startswith("!"))
    return allowed and not any(glob_match(p[1:], repo) for p in patterns if p.startswith("!"))


def destination_permitted(project_spec: dict, cluster: dict, namespace: str) -> bool:
    """AppProject.IsDestinationPermitted: a destination matches the cluster (by server or name) and namespace."""
    for d in project_spec.get("destinations") or []:
        by_server = bool(d.get("server")) and glob_match(d["server"], cluster.get("server", ""))
        by_name = bool(d.get("name")) and glob_match(d["name"], cluster.get("name", ""))
        if (by_server or by_name) and glob_match(d.get("namespace") or "", namespace):
            return True
    return False

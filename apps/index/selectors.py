"""Kubernetes label selectors (`team=payments,env in (prod,staging),!legacy`) as SQL on the `labels` JSON column.

Supported terms: `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`. Keys and values are checked
against Kubernetes' label syntax before anything reaches a query; a bad selector raises SelectorError with a
message fit to show.
"""

from __future__ import annotations

import re

from django.db.models import Q
from django.db.models.fields.json import KeyTextTransform
from django.db.models.lookups import Exact, In

_NAME = r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
KEY = re.compile(rf"(?:[a-z0-9](?:[-a-z0-9.]{{0,251}}[a-z0-9])?/)?{_NAME}")
VALUE = re.compile(rf"(?:{_NAME})?")
_SET = re.compile(r"^(?P<key>\S+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_EQ = re.compile(r"^(?P<key>[^=!\s]+)\s*(?P<op>==|=|!=)\s*(?P<value>\S*)$")


class SelectorError(ValueError):
    pass


def _split(selector: str) -> list[str]:
    """Split on commas outside parentheses."""
    terms, depth, current = [], 0, []
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise SelectorError("unbalanced ')'")
        if ch == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(ch)
    if depth:
        raise SelectorError("unbalanced '('")
    terms.append("".join(current))
    return [t.strip() for t in terms]


def _key(key: str) -> str:
    if not KEY.fullmatch(key):
        raise SelectorError(f"{key!r} is not a valid label key")
    return key


def _value(value: str) -> str:
    if not VALUE.fullmatch(value):
        raise SelectorError(f"{value!r} is not a valid label value")
    return value


def _has(key: str) -> Q:
    return Q(labels__has_key=key)


def _equals(key: str, value: str) -> Q:
    return _has(key) & Q(Exact(KeyTextTransform(key, "labels"), value))


def _one_of(key: str, values: list[str]) -> Q:
    return _has(key) & Q(In(KeyTextTransform(key, "labels"), values))


def parse(selector: str) -> Q:
    """A Q on `labels` for the selector; raises SelectorError."""
    q = Q()
    if not selector.strip():
        return q
    for term in _split(selector):
        if not term:
            raise SelectorError("empty term (two commas in a row?)")
        if m := _SET.match(term):
            values = [_value(v.strip()) for v in m["values"].split(",")]
            if not any(values):
                raise SelectorError(f"{term!r}: the set is empty")
            key = _key(m["key"])
            # Kubernetes: `notin` also matches objects without the key.
            q &= _one_of(key, values) if m["op"] == "in" else (~_has(key) | ~_one_of(key, values))
        elif m := _EQ.match(term):
            key, value = _key(m["key"]), _value(m["value"])
            q &= _equals(key, value) if m["op"] != "!=" else (~_has(key) | ~_equals(key, value))
        elif term.startswith("!"):
            q &= ~_has(_key(term[1:].strip()))
        elif " " not in term:
            q &= _has(_key(term))
        else:
            raise SelectorError(f"cannot parse {term!r}; use k=v, k!=v, k, !k, k in (a,b) or k notin (a,b)")
    return q

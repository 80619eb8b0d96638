"""Pure-function pieces: JSON patch, merge patch, cron windows, selectors, field projection, appset templates."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apps.core.cron import window_active
from apps.core.jsonpatch import PatchError, apply_json_patch, apply_merge_patch
from apps.simulator.handlers.appsets import render_string
from apps.simulator.handlers.common import parse_selector, project_fields, selector_matches
from apps.simulator.state import State


def test_json_patch_rfc6902_examples():
    doc = {"foo": ["bar", "baz"], "a": {"b": 1}}
    out = apply_json_patch(doc, [{"op": "add", "path": "/foo/1", "value": "qux"}, {"op": "remove", "path": "/a/b"}])
    assert out == {"foo": ["bar", "qux", "baz"], "a": {}}
    assert doc == {"foo": ["bar", "baz"], "a": {"b": 1}}, "input must not be mutated"
    assert apply_json_patch(
        {"a/b": 1, "m~n": 2},
        [{"op": "replace", "path": "/a~1b", "value": 3}, {"op": "copy", "from": "/m~0n", "path": "/c"}],
    ) == {"a/b": 3, "m~n": 2, "c": 2}
    with pytest.raises(PatchError):
        apply_json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": 2}])
    with pytest.raises(PatchError):
        apply_json_patch({"a": []}, [{"op": "add", "path": "/a/5", "value": 1}])
    with pytest.raises(PatchError):
        apply_json_patch({"a": {}}, [{"op": "move", "from": "/a", "path": "/a/b"}])


def test_json_patch_errors_name_the_failing_operation_and_never_change_the_input():
    doc = {"spec": {"project": "default"}, "l": [1]}
    with pytest.raises(PatchError, match="^replace operation does not apply: doc is missing path: /spec/nope/x$"):
        apply_json_patch(doc, [{"op": "replace", "path": "/spec/nope/x", "value": 1}])
    with pytest.raises(PatchError, match="^testing value /spec/project failed: test failed$"):
        apply_json_patch(doc, [{"op": "test", "path": "/spec/project", "value": "other"}])
    with pytest.raises(PatchError):
        apply_json_patch(doc, [{"op": "bogus", "path": "/l"}])
    with pytest.raises(PatchError):
        apply_json_patch(doc, ["not an operation"])
    assert apply_json_patch(doc, [{"op": "replace", "path": "", "value": {"z": 1}}]) == {"z": 1}
    assert apply_json_patch(doc, [{"op": "add", "path": "/l/-", "value": 2}])["l"] == [1, 2]
    assert doc == {"spec": {"project": "default"}, "l": [1]}


def test_merge_patch_rfc7386():
    assert apply_merge_patch({"a": "b", "c": {"d": "e", "f": "g"}}, {"a": "z", "c": {"f": None}}) == {
        "a": "z",
        "c": {"d": "e"},
    }
    assert apply_merge_patch({"a": [1]}, {"a": [2]}) == {"a": [2]}


def test_simulator_windows_use_argocd_semantics():
    now = datetime(2026, 3, 7, 3, 30, tzinfo=UTC)  # a Saturday
    assert window_active("0 3 * * 6", "1h", "UTC", now)
    assert not window_active("0 3 * * 6", "20m", "UTC", now)
    assert not window_active("0 3 * * 1-5", "1h", "UTC", now)
    assert window_active("*/15 * * * *", "10m", "", now.replace(minute=35))
    # An unparseable window blocks: the simulator treats it as active.
    assert State.window_active({"schedule": "0 3 * * 7", "duration": "1h"})


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("team=payments", {"team": "payments"}, True),
        ("team==payments,env!=prod", {"team": "payments", "env": "prod"}, False),
        ("env in (dev,staging)", {"env": "dev"}, True),
        ("env notin (dev)", {"env": "dev"}, False),
        ("team", {"team": "x"}, True),
        ("!team", {"team": "x"}, False),
    ],
)
def test_label_selectors(selector, labels, expected):
    assert selector_matches(parse_selector(selector), labels) is expected


def test_field_projection():
    obj = {"items": [{"a": 1, "b": {"c": 2, "d": 3}}, {"a": 4, "b": {"c": 5}}]}
    assert project_fields(obj, "items.b.c") == {"items": [{"b": {"c": 2}}, {"b": {"c": 5}}]}
    assert project_fields(obj, "-items.b") == {"items": [{"a": 1}, {"a": 4}]}


def test_templates():
    params = {"path": {"path": "apps/web", "basename": "web", "segments": ["apps", "web"]}, "cluster": "dev"}
    assert render_string("{{.cluster}}-{{.path.basename}}", params, go=True, missing_error=False) == "dev-web"
    assert render_string("{{ index .path.segments 0 }}", params, go=True, missing_error=False) == "apps"
    assert render_string("{{.nope}}", params, go=True, missing_error=False) == "<no value>"
    flat = {"path": "apps/web", "path.basename": "web", "cluster": "dev"}
    assert (
        render_string("{{cluster}}/{{ path.basename }}/{{missing}}", flat, go=False, missing_error=False)
        == "dev/web/{{missing}}"
    )

"""The diff shared by every page that shows a change: hunks, full view, side by side, hidden fields, toggles."""

from __future__ import annotations

from django.http import QueryDict

from apps.core.diff import DiffOptions, diff_docs, diff_text

BEFORE = {"metadata": {"name": "web", "managedFields": [{"manager": "kubectl"}]}, "spec": {"replicas": 1,
          "ports": list(range(30))}, "status": {"ready": 1}}  # fmt: skip
AFTER = {"metadata": {"name": "web", "managedFields": [{"manager": "argocd"}]}, "spec": {"replicas": 3,
         "ports": list(range(30))}, "status": {"ready": 3}}  # fmt: skip


def test_compact_shows_the_changed_hunk_with_context_and_counts_what_it_hides():
    diff = diff_docs(BEFORE, AFTER)
    classes = [r.cls for r in diff.rows]
    assert diff.added == 1 and diff.removed == 1
    assert ("del", "  replicas: 1") in [(r.cls, r.text) for r in diff.rows]
    assert ("add", "  replicas: 3") in [(r.cls, r.text) for r in diff.rows]
    assert classes == ["gap", "hunk", "ctx", "ctx", "ctx", "del", "add"]  # "replicas" sorts after the 30 ports
    assert diff.rows[0].text == f"⋯ {len(diff.before) - 4} unchanged lines"


def test_full_shows_every_line_with_both_line_numbers():
    diff = diff_docs(BEFORE, AFTER, query=QueryDict("diff_full=1"))
    assert not [r for r in diff.rows if r.cls in ("gap", "hunk")]
    assert len(diff.rows) == len(diff.before) + 1  # one line replaced: one del and one add row
    assert [r.new for r in diff.rows if r.cls != "del"] == list(range(1, len(diff.after) + 1))


def test_managed_fields_and_status_are_hidden_unless_asked_for():
    hidden = diff_docs(BEFORE, AFTER)
    assert not any("managedFields" in line or "ready" in line for line in hidden.before + hidden.after)
    shown = diff_docs(BEFORE, AFTER, query=QueryDict("diff_managed=1&diff_status=1"))
    changed = [r.text for r in shown.rows if r.cls == "add"]
    assert "  ready: 3" in changed and "  - manager: argocd" in changed


def test_side_by_side_pairs_removed_and_added_lines():
    diff = diff_text(["a", "b", "c"], ["a", "B", "c", "d"], query=QueryDict("diff_view=split"))
    pairs = [(r.left.cls, r.left.text, r.right.cls, r.right.text) for r in diff.rows if r.cls == "pair"]
    assert ("del", "b", "add", "B") in pairs
    assert ("empty", "", "add", "d") in pairs
    assert ("ctx", "a", "ctx", "a") in pairs


def test_identical_documents_are_no_change():
    diff = diff_docs({"a": 1, "status": {"x": 1}}, {"a": 1, "status": {"x": 2}})
    assert not diff and diff.rows == []
    assert diff_docs({"a": 1, "status": {"x": 1}}, {"a": 1, "status": {"x": 2}}, options=DiffOptions(status=True))


def test_toggles_keep_the_other_parameters_and_flip_one_option():
    diff = diff_docs(BEFORE, AFTER, query=QueryDict("tab=diff&diff_view=split"))
    by_label = {t.label: t for t in diff.toggles}
    assert by_label["Side by side"].active and not by_label["Unified"].active
    assert "tab=diff" in by_label["Unified"].href and "diff_view=unified" in by_label["Unified"].href
    assert "diff_managed=1" in by_label["Managed fields"].href and not by_label["Managed fields"].active
    posted = diff_docs(BEFORE, AFTER, query=QueryDict("document=secret&diff_full=1"), link_query={})
    assert all("document" not in t.href for t in posted.toggles) and posted.options.full

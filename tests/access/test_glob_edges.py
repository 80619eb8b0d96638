"""Globs a person may type that are not well formed still give an answer, in Python and in SQL alike."""

from __future__ import annotations

import re

import pytest

from apps.access import glob


@pytest.mark.parametrize(
    "pattern,value,expected",
    [
        ("{a,b", "a", True),  # an unclosed brace closes at the end
        ("{a,b", "c", False),
        ("[z-a]x", "[z-a]x", True),  # a class Python cannot compile is matched literally
        ("prod-[!x]*", "prod-a1", True),
        ("prod-[!x]*", "prod-x1", False),
    ],
)
def test_malformed_and_negated_globs_match_predictably(pattern, value, expected):
    assert glob.match(pattern, value) is expected
    re.compile(glob.to_regex(pattern))  # always a valid regular expression for the SQL side too

"""The list query's building blocks: the cheaper grant SQL must select exactly what the grant regexes select."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from apps.access import glob
from apps.index.models import ApplicationSummary
from apps.index.query import cheapen
from apps.instances.models import Instance

NAMES = [
    "payments-api-prod",
    "payments-api-dev",
    "checkout-web-prod",
    "pay_ments",
    "pay%ments",
    "a.b",
    "axb",
    "star*name",
    "Payments-upper",
    "search-payments-x",
    "x",
]
GLOBS = ["*", "payments-api-prod", "payments-*", "*-prod", "*payments*", "pay?ents*", "{a,b}*", "[ps]*", "a.b",
         "pay_ments", "pay%ments", "star\\*name", "*\\**", "**", "", "Payments*"]  # fmt: skip


@pytest.fixture
def rows(db):
    instance = Instance.objects.create(name="glob-test", url="http://127.0.0.1:9")
    now = timezone.now()
    ApplicationSummary.objects.bulk_create(
        ApplicationSummary(instance=instance, name=n, project="p", seen_at=now) for n in NAMES
    )


@pytest.mark.parametrize("pattern", GLOBS)
def test_cheaper_grant_sql_selects_the_same_rows_as_the_glob_regex(rows, pattern):
    original = Q(name__regex=glob.to_regex(pattern)) | Q(project__regex=glob.to_regex("nothing-*"))
    expected = {n for n in NAMES if glob.match(pattern, n)}
    for q in (original, cheapen(original, {})):
        assert set(ApplicationSummary.objects.filter(q).values_list("name", flat=True)) == expected, (pattern, q)


def test_simple_globs_become_plain_comparisons_and_the_rest_keep_their_regex():
    def lookups(pattern: str) -> list:
        return cheapen(Q(name__regex=glob.to_regex(pattern)), {}).children

    assert lookups("*") == [("name__isnull", False)]
    assert lookups("payments-api") == [("name__exact", "payments-api")]
    assert lookups("payments-*") == [("name__startswith", "payments-")]
    assert lookups("*-prod") == [("name__endswith", "-prod")]
    assert lookups("*pay.ments*") == [("name__contains", "pay.ments")]
    assert lookups("pay?ents")[0][0] == "name__regex"
    assert lookups("{a,b}")[0][0] == "name__regex"
    negated = cheapen(~Q(name__regex="^x$"), {})
    assert negated.negated and negated.children == [("name__exact", "x")]


def test_instance_globs_become_the_ids_of_the_matching_visible_instances():
    instances = {"prod-eu": 1, "prod-us": 2, "stage": 3}
    q = cheapen(Q(instance__enabled=True) & Q(instance__name__regex=glob.to_regex("prod-*")), instances)
    assert q.children == [("instance_id__in", [1, 2, 3]), ("instance_id__in", [1, 2])]
    assert cheapen(Q(instance__name__regex=glob.to_regex("nothing")), instances).children == [("instance_id__in", [])]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the rewrite is only used on PostgreSQL")
def test_the_list_uses_the_cheaper_sql_on_postgresql(alice, db):
    from apps.index.query import visible

    from .conftest import grant

    Instance.objects.create(name="sim-test", url="http://127.0.0.1:9")
    grant(alice, "payments", instance="sim-test", app="*payments*")
    sql = str(visible(alice).order_by().query)
    assert "~" not in sql and "LIKE" in sql and "instances_instance" not in sql

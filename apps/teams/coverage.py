"""What a grant's globs cover, read from the registered instances and the application index.

Used by the grant form's live preview (which applications the grant would cover, and warnings for globs that
match nothing) and by the grants table (how many indexed applications each grant covers, in one query).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from django.db import connection
from django.db.models import Count, Q

from apps.access import glob
from apps.access.models import Action
from apps.index.models import ApplicationSummary
from apps.index.query import cheapen
from apps.instances.models import Instance

PREVIEW_SIZE = 20
# Projects read for "did you mean" suggestions: enough for any real fleet, bounded for a pathological one.
PROJECT_SAMPLE = 2000


@dataclass
class Coverage:
    instances: list[str] = field(default_factory=list)  # enabled instances the instance glob matches
    count: int = 0  # indexed applications covered
    apps: list[dict[str, Any]] = field(default_factory=list)  # the first PREVIEW_SIZE of them
    warnings: list[str] = field(default_factory=list)  # a glob that matches nothing (or is malformed)
    notes: list[str] = field(default_factory=list)  # what the grant means, worth a second look
    missing: list[str] = field(default_factory=list)  # globs not given yet: nothing is counted until all are


def _did_you_mean(pattern: str, names: list[str]) -> str:
    # difflib: the standard library's fuzzy match is enough to catch a typo in a name.
    close = difflib.get_close_matches(pattern, names, n=3, cutoff=0.85)
    return f" Did you mean {', '.join(close)}?" if close else ""


def _apps_q(project_glob: str, app_glob: str, namespace_glob: str = "*") -> Q:
    q = Q(project__regex=glob.to_regex(project_glob), name__regex=glob.to_regex(app_glob))
    if namespace_glob not in ("", "*"):  # where the Application object lives (empty: every namespace)
        q &= Q(namespace__regex=glob.to_regex(namespace_glob))
    # The application list's cheaper SQL for simple globs (=, LIKE) selects the same rows as the regexes.
    return cheapen(q, {}) if connection.vendor == "postgresql" else q


def coverage(
    instance_glob: str, project_glob: str, app_glob: str, actions: list[str] | None = None, namespace_glob: str = "*"
) -> Coverage:
    """What a grant with these globs would cover now; never raises on what someone typed."""
    result = Coverage()
    given = {"Instances": instance_glob, "Projects": project_glob, "Applications": app_glob}
    if namespace_glob and (reason := glob.problem(namespace_glob)):
        result.warnings.append(f"App namespaces: {namespace_glob!r} is not a valid glob ({reason}).")
    for label, pattern in given.items():
        if pattern and (reason := glob.problem(pattern)):
            result.warnings.append(f"{label}: {pattern!r} is not a valid glob ({reason}).")
    # Fields not typed yet are not warned about: the form requires them; the instance is checked as soon as given.
    result.missing = [label.lower() for label, pattern in given.items() if not pattern]
    if result.warnings or not instance_glob:
        return result
    registered = list(Instance.objects.order_by("name").values_list("id", "name", "enabled"))
    matched = {pk: name for pk, name, enabled in registered if enabled and glob.match(instance_glob, name)}
    result.instances = list(matched.values())
    disabled = [name for _, name, enabled in registered if not enabled and glob.match(instance_glob, name)]
    if not matched:
        names = [name for _, name, _ in registered]
        if disabled:
            result.warnings.append(
                f"Instances: {instance_glob!r} matches only disabled instances ({', '.join(disabled)}): "
                "the grant allows nothing until one is enabled."
            )
        else:
            result.warnings.append(
                f"Instances: no registered instance matches {instance_glob!r}.{_did_you_mean(instance_glob, names)}"
            )
        return result
    if result.missing:
        return result
    on_instances = ApplicationSummary.objects.filter(instance_id__in=list(matched)).order_by()
    covered = on_instances.filter(_apps_q(project_glob, app_glob, namespace_glob))
    result.count = covered.count()
    rows = covered.order_by("instance__name", "project", "name").values("instance_id", "project", "name")
    for row in rows[:PREVIEW_SIZE]:
        instance = matched[row["instance_id"]]
        result.apps.append(
            {**row, "instance": instance, "href": f"/applications/{quote(instance)}/{quote(row['name'])}/"}
        )
    if result.count == 0:
        _why_nothing(result, on_instances, project_glob, app_glob)
    _notes(result, instance_glob, project_glob, app_glob, actions or [])
    return result


def _why_nothing(result: Coverage, on_instances, project_glob: str, app_glob: str) -> None:
    where = ", ".join(result.instances)
    if not on_instances.exists():
        result.notes.append(f"The index holds no application of {where} yet, so the project and application "
                            "globs cannot be checked.")  # fmt: skip
        return
    projects = list(on_instances.values_list("project", flat=True).distinct()[:PROJECT_SAMPLE])
    if not any(glob.match(project_glob, p) for p in projects):
        result.warnings.append(
            f"Projects: no indexed application on {where} is in a project matching {project_glob!r}."
            + _did_you_mean(project_glob, projects)
        )
        return
    names = list(
        on_instances.filter(_apps_q(project_glob, "*")).values_list("name", flat=True).distinct()[:PROJECT_SAMPLE]
    )
    result.warnings.append(
        f"Applications: no indexed application in those projects matches {app_glob!r}." + _did_you_mean(app_glob, names)
    )


def _notes(result: Coverage, instance_glob: str, project_glob: str, app_glob: str, actions: list[str]) -> None:
    if instance_glob == project_glob == app_glob == "*":
        result.notes.append("Every application on every instance, including those registered later.")
    if Action.ADMIN in actions:
        result.notes.append("admin allows every action, delete and rotate included.")


def counts_per_grant(grants) -> dict[int, int]:
    """Indexed applications (on enabled instances) each grant covers: one aggregate query for all of them."""
    grants = list(grants)
    if not grants:
        return {}
    instances = dict(Instance.objects.filter(enabled=True).values_list("name", "id"))
    aggregates = {}
    for g in grants:
        q = Q(instance__name__regex=glob.to_regex(g.instance_glob)) & _apps_q(
            g.project_glob, g.app_glob, g.namespace_glob
        )
        q = cheapen(q, instances) if connection.vendor == "postgresql" else q & Q(instance__enabled=True)
        aggregates[f"g{g.pk}"] = Count("id", filter=q)
    counts = ApplicationSummary.objects.order_by().aggregate(**aggregates)
    return {g.pk: counts[f"g{g.pk}"] for g in grants}

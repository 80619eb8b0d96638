"""The log viewer: several pods and containers at once, read one Argo CD log stream per pod/container and merged
by time. One `LogQuery`, read from the query string, feeds the logs tab, the download and the live follow
(follow.py), so the three always show the same selection.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.utils.text import slugify
from django.views.decorators.http import require_GET

from apps.argocd import fan_out
from apps.argocd.errors import ArgoCDError
from apps.core.argocd_pages import argocd_errors, error_text

from .services import AppContext, clamp_int, load, pods_of

JSON = dict[str, Any]

# Argo CD itself refuses more than server.maxPodLogsToRender (default 10) pods in one request.
MAX_SOURCES = 10
# Containers are learnt from each pod's manifest: bounded so an app with hundreds of pods stays one quick page.
MAX_POD_LOOKUPS = 20
SINCE_CHOICES = [
    (0, "all"),
    (60, "1 minute"),
    (300, "5 minutes"),
    (900, "15 minutes"),
    (3600, "1 hour"),
    (21600, "6 hours"),
    (86400, "24 hours"),
]


@dataclass
class LogQuery:
    pods: list[str]
    containers: list[str]
    tail: int = 100
    since: int = 0
    since_time: str = ""
    previous: bool = False
    timestamps: bool = False
    wrap: bool = False
    filter: str = ""
    match_case: bool = False
    follow: bool = False

    @classmethod
    def from_query(cls, q: Any) -> LogQuery:
        since = clamp_int(q.get("since"), 0, 0, 7 * 86400)
        return cls(
            pods=[p for p in q.getlist("pod") if p][:MAX_SOURCES],
            containers=[c for c in q.getlist("container") if c][:MAX_SOURCES],
            tail=clamp_int(q.get("tail"), 100, 1, 5000),
            since=since if since in dict(SINCE_CHOICES) else 0,
            since_time=(q.get("since_time") or "")[:32],
            previous=q.get("previous") == "1",
            timestamps=q.get("timestamps") == "1",
            wrap=q.get("wrap") == "1",
            filter=(q.get("filter") or "")[:200],
            match_case=q.get("match_case") == "1",
            follow=q.get("follow") == "1",
        )

    @property
    def since_seconds_epoch(self) -> int | None:
        """`since_time` (a datetime-local value, read as UTC) as Unix seconds, or None when empty or invalid."""
        if not self.since_time:
            return None
        try:
            when = datetime.fromisoformat(self.since_time)
        except ValueError:
            return None
        return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp())

    def querystring(self, **extra: str) -> str:
        """The same selection as a query string (for the download link and the live stream)."""
        pairs: list[tuple[str, Any]] = [("pod", p) for p in self.pods] + [("container", c) for c in self.containers]
        pairs.append(("tail", self.tail))
        for key, on in (("previous", self.previous), ("timestamps", self.timestamps), ("match_case", self.match_case)):
            if on:
                pairs.append((key, "1"))
        if self.since:
            pairs.append(("since", self.since))
        if self.since_time:
            pairs.append(("since_time", self.since_time))
        if self.filter:
            pairs.append(("filter", self.filter))
        pairs += list(extra.items())
        return urlencode(pairs)


@dataclass
class Source:
    pod: JSON
    container: str = ""

    @property
    def label(self) -> str:
        return f"{self.pod.get('name', '')}/{self.container}" if self.container else self.pod.get("name", "")


def containers_of(ctx: AppContext, pods: list[JSON]) -> dict[str, list[str]]:
    """Each pod's container names, read from its live manifest (pods past MAX_POD_LOOKUPS, or whose read fails,
    map to [] and are read with Argo CD's default container)."""

    def read(pod: JSON) -> list[str]:
        manifest = ctx.client.get_resource(
            ctx.name, namespace=pod.get("namespace"), resource_name=pod["name"], version="v1", kind="Pod", **ctx.scope
        )
        spec = manifest.get("spec") or {}
        return [c.get("name", "") for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])]

    asked = pods[:MAX_POD_LOOKUPS]
    outcomes = fan_out({p["name"]: partial(read, p) for p in asked}, max_workers=6, deadline=8.0)
    return {p["name"]: (o.value if (o := outcomes.get(p["name"])) and o.ok else []) for p in pods}


def sources(pods: list[JSON], containers: dict[str, list[str]], query: LogQuery) -> list[Source]:
    """The pod/container pairs to read: the chosen pods (the first pod when none is), each with the chosen
    containers it has (its default container when none is chosen); at most MAX_SOURCES."""
    chosen = [p for p in pods if p.get("name") in query.pods] or pods[:1]
    out: list[Source] = []
    for pod in chosen:
        known = containers.get(pod.get("name", "")) or []
        wanted = [c for c in query.containers if not known or c in known]
        if query.containers and not wanted:
            continue  # this pod has none of the chosen containers
        out += [Source(pod, c) for c in wanted or [""]]
    return out[:MAX_SOURCES]


def log_kwargs(ctx: AppContext, source: Source, query: LogQuery) -> JSON:
    """Arguments of `application_logs(_async)` for one source."""
    since_time = query.since_seconds_epoch
    return {
        "pod_name": source.pod["name"],
        "kind": "Pod",  # with resource_name: the same selection as podName in Argo CD, for servers that read only one
        "resource_name": source.pod["name"],
        "namespace": source.pod.get("namespace"),
        "container": source.container or None,
        "tail_lines": query.tail,
        "since_seconds": (query.since or None) if since_time is None else None,
        "since_time": since_time,
        "filter": query.filter or None,
        "match_case": True if query.filter and query.match_case else None,
        "previous": True if query.previous else None,
        **ctx.scope,
    }


@dataclass
class LogLine:
    source: str
    time: str
    content: str

    def text(self, *, prefix: bool, timestamps: bool) -> str:
        head = (f"{self.source} " if prefix else "") + (f"{self.time} " if timestamps and self.time else "")
        return head + self.content


def read(ctx: AppContext, chosen: list[Source], query: LogQuery) -> tuple[list[LogLine], list[str]]:
    """The lines of every source merged by time (Argo CD's tail applies per source), and one error per source
    that could not be read."""

    def one(source: Source) -> list[LogLine]:
        with ctx.client.application_logs(ctx.name, **log_kwargs(ctx, source, query)) as stream:
            return [LogLine(source.label, e.get("timeStampStr") or "", e.get("content", "")) for e in stream]

    outcomes = fan_out({i: partial(one, s) for i, s in enumerate(chosen)}, max_workers=6, deadline=20.0)
    lines: list[LogLine] = []
    problems: list[str] = []
    for i, source in enumerate(chosen):
        outcome = outcomes.get(i)
        if outcome is not None and outcome.ok:
            lines += outcome.value
        else:
            error = outcome.error if outcome is not None else ArgoCDError("no answer in time")
            problems.append(f"{source.label}: {error_text(error, ctx.instance.name)}")
    lines.sort(key=lambda line: line.time)  # stable: lines of one source keep their order
    return lines, problems


def context(ctx: AppContext, request: Any, *, read_lines: bool = True) -> JSON:
    """What the logs tab and the download need: the pods, their containers, the chosen sources and the lines."""
    query = LogQuery.from_query(request.GET)
    pods = pods_of(ctx.client, ctx)
    containers = containers_of(ctx, pods)
    chosen = sources(pods, containers, query)
    data: JSON = {
        "q": query,
        "pods": pods,
        "containers": sorted({c for names in containers.values() for c in names}),
        "sources": chosen,
        "chosen_pods": {s.pod.get("name") for s in chosen} if chosen else set(),
        "prefix": len(chosen) > 1,
        "since_choices": SINCE_CHOICES,
        "lines": [],
        "problems": [],
        "max_sources": MAX_SOURCES,
    }
    if chosen and read_lines and not query.follow:
        data["lines"], data["problems"] = read(ctx, chosen, query)
    return data


@require_GET
@argocd_errors
def download(request: HttpRequest, instance: str, name: str) -> HttpResponse:
    """The logs tab's selection as a text file: a plain GET under the same `logs` permission as the tab (a refusal
    is audited by `load()`), never following."""
    ctx = load(request, instance, name, "logs")
    data = context(ctx, request, read_lines=False)
    if not data["sources"]:
        return HttpResponse("This application has no pods to read logs from.", status=404, content_type="text/plain")
    query = data["q"]
    lines, problems = read(ctx, data["sources"], query)
    body = "".join(line.text(prefix=data["prefix"], timestamps=query.timestamps) + "\n" for line in lines)
    body += "".join(f"# could not read {problem}\n" for problem in problems)
    response = HttpResponse(body, content_type="text/plain; charset=utf-8")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    filename = slugify(f"{ctx.instance.name}-{ctx.name}-logs-{stamp}")
    response["Content-Disposition"] = f'attachment; filename="{filename}.log"'
    return response

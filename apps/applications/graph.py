"""The resource tree as Argo CD draws it: left-to-right columns (app, top-level resources, their children by
parentRefs), laid out here on the server so the page gets plain SVG coordinates and needs no JavaScript.

A simple layered layout (a tree drawn with leaves on consecutive rows and each parent centred on its children)
is enough for Argo CD's trees, which are forests by construction (first parent wins). A graph library such as
networkx or grandalf would bring a general DAG layout the page does not need, and a dependency for it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import urlencode

from django.utils.safestring import SafeString, mark_safe

JSON = dict[str, Any]

NODE_W, NODE_H = 250, 56
GAP_X, GAP_Y = 70, 14
PAD = 10
# Siblings of one kind under one parent beyond this many are drawn as one group node until it is expanded.
GROUP_AT = 6
HEALTH_STATES = ["Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"]
SYNC_STATES = ["Synced", "OutOfSync", "Unknown"]
VIEWS = [("graph", "Graph"), ("list", "List"), ("pods", "Pods"), ("network", "Network")]

# Short labels Argo CD's UI prints in its kind icons; anything else gets the kind's capitals.
KIND_LABELS = {
    "Application": "app",
    "Deployment": "deploy",
    "ReplicaSet": "rs",
    "Pod": "pod",
    "Service": "svc",
    "Ingress": "ing",
    "ConfigMap": "cm",
    "Secret": "secret",
    "StatefulSet": "sts",
    "DaemonSet": "ds",
    "Job": "job",
    "CronJob": "cj",
    "PersistentVolumeClaim": "pvc",
    "ServiceAccount": "sa",
    "Namespace": "ns",
    "Endpoints": "ep",
    "EndpointSlice": "eps",
    "HorizontalPodAutoscaler": "hpa",
    "Role": "role",
    "RoleBinding": "rb",
    "ClusterRole": "crole",
    "ClusterRoleBinding": "crb",
    "NetworkPolicy": "netpol",
}
WORKLOADS = {"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"}


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind) or ("".join(c for c in kind if c.isupper()).lower() or kind[:4].lower())


def res_key(obj: JSON) -> tuple[str, str, str, str]:
    return (obj.get("group") or "", obj.get("kind") or "", obj.get("namespace") or "", obj.get("name") or "")


@dataclass
class Filters:
    kinds: list[str] = field(default_factory=list)
    health: list[str] = field(default_factory=list)
    sync: list[str] = field(default_factory=list)
    name: str = ""
    view: str = "graph"
    collapse: set[str] = field(default_factory=set)
    expand: set[str] = field(default_factory=set)
    group_by: str = "node"
    app_namespace: str = ""  # an app outside the control plane's namespace keeps it in every link

    @classmethod
    def from_query(cls, q: Any) -> Filters:
        def many(key: str) -> list[str]:
            return [v for raw in q.getlist(key) for v in raw.split(",") if v][:50]

        view = q.get("view", "graph")
        return cls(
            kinds=many("kind"),
            health=many("health"),
            sync=many("sync"),
            name=q.get("name", "").strip()[:200],
            view=view if view in dict(VIEWS) else "graph",
            collapse=set(many("collapse")),
            expand=set(many("expand")),
            group_by="parent" if q.get("group") == "parent" else "node",
        )

    @property
    def active(self) -> bool:
        return bool(self.kinds or self.health or self.sync or self.name)

    def matches(self, item: Item) -> bool:
        if self.kinds and item.kind not in self.kinds:
            return False
        if self.health and item.health not in self.health:
            return False
        if self.sync and item.sync not in self.sync:
            return False
        return not self.name or self.name.lower() in item.name.lower()

    def query(self, **change: Any) -> str:
        """This view's query string (the URL keeps the filters), with `change` applied."""
        values: dict[str, Any] = {
            "tab": "tree",
            "view": self.view,
            "kind": ",".join(self.kinds),
            "health": ",".join(self.health),
            "sync": ",".join(self.sync),
            "name": self.name,
            "collapse": ",".join(sorted(self.collapse)),
            "expand": ",".join(sorted(self.expand)),
            "group": self.group_by if self.view == "pods" else "",
            "appNamespace": self.app_namespace,
        }
        values.update(change)
        return urlencode({k: v for k, v in values.items() if v})


@dataclass
class Item:
    """One box of the graph: a resource, the app itself, or a group of same-kind siblings."""

    id: str
    kind: str
    name: str
    namespace: str = ""
    group: str = ""
    version: str = "v1"
    health: str = ""
    health_message: str = ""
    sync: str = ""
    info: list[JSON] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    node: JSON | None = None
    children: list[Item] = field(default_factory=list)
    parent: Item | None = None
    members: list[Item] = field(default_factory=list)  # a group node's resources
    group_key: str = ""
    collapsed: bool = False
    hidden: int = 0  # descendants not drawn (collapsed)
    depth: int = 0
    x: int = 0
    y: int = 0
    toggle_query: str = ""

    @property
    def panel_query(self) -> str:
        """The resource panel's query for this resource (computed only for what is drawn: urlencode is slow)."""
        return urlencode(
            {
                "group": self.group,
                "version": self.version,
                "kind": self.kind,
                "namespace": self.namespace,
                "resource_name": self.name,
            }  # fmt: skip
        )

    @property
    def label(self) -> str:
        return kind_label(self.kind)

    @property
    def short_name(self) -> str:
        return self.name if len(self.name) <= 30 else self.name[:29] + "…"

    @property
    def is_group(self) -> bool:
        return bool(self.members)

    @property
    def health_counts(self) -> list[tuple[str, int]]:
        return sorted(Counter(m.health or "Unknown" for m in self.members).items())

    @property
    def is_workload(self) -> bool:
        return self.kind in WORKLOADS

    def descendants(self) -> int:
        return sum(1 + c.descendants() for c in self.children) + len(self.members)


def _item(node: JSON, sync: dict[tuple, str]) -> Item:
    health = node.get("health") or {}
    status = health.get("status") or ("" if node.get("uid") else "Missing")
    return Item(
        id=node.get("uid") or "/".join(res_key(node)),
        kind=node.get("kind") or "",
        name=node.get("name") or "",
        namespace=node.get("namespace") or "",
        group=node.get("group") or "",
        version=node.get("version") or "v1",
        health=status,
        health_message=health.get("message") or "",
        sync=sync.get(res_key(node), ""),
        info=list(node.get("info") or []),
        images=list(node.get("images") or []),
        node=node,
    )


def items_of(tree: JSON, app: JSON) -> tuple[Item, list[Item]]:
    """The app as the root item over its top-level resources, and every resource item in tree order.

    Resources Argo CD manages but that are not live yet (in status.resources, absent from the tree) are added
    as Missing, as Argo CD's UI does.
    """
    status = app.get("status") or {}
    sync = {res_key(r): r.get("status") or "" for r in status.get("resources") or []}
    nodes = list(tree.get("nodes") or [])
    seen = {res_key(n) for n in nodes}
    for res in status.get("resources") or []:
        if res_key(res) not in seen and not res.get("hook"):
            nodes.append({k: res.get(k) for k in ("group", "version", "kind", "namespace", "name")})
    items = [_item(n, sync) for n in nodes]
    by_uid = {i.node.get("uid"): i for i in items if i.node and i.node.get("uid")}
    root = Item(
        id="app",
        kind="Application",
        name=(app.get("metadata") or {}).get("name", ""),
        namespace=(app.get("metadata") or {}).get("namespace", ""),
        group="argoproj.io",
        health=(status.get("health") or {}).get("status", "Unknown"),
        sync=(status.get("sync") or {}).get("status", "Unknown"),
    )
    for item in items:
        parents = [p.get("uid") for p in (item.node or {}).get("parentRefs") or [] if p.get("uid") in by_uid]
        parent = by_uid[parents[0]] if parents and parents[0] != item.id else root
        item.parent = parent
        parent.children.append(item)
    # parentRefs may loop in a broken answer: an item that cannot reach the root hangs under the app instead.
    for item in items:
        seen_ids, walk = set(), item
        while walk.parent is not None and walk.id not in seen_ids:
            seen_ids.add(walk.id)
            walk = walk.parent
        if walk is not root:
            item.parent.children.remove(item)
            item.parent = root
            root.children.append(item)
    return root, items


def _order(children: list[Item]) -> list[Item]:
    return sorted(children, key=lambda i: (i.kind, i.namespace, i.name))


def _prune(item: Item, f: Filters) -> bool:
    """Keep the items that match the filters and the ancestors of such items; True if `item` stays."""
    item.children = [c for c in item.children if _prune(c, f)]
    return bool(item.children) or f.matches(item)


def _shape(item: Item, f: Filters, depth: int = 0) -> None:
    """Order children, apply collapse, and group same-kind siblings into one group node unless expanded."""
    item.depth = depth
    item.children = _order(item.children)
    if item.children and item.id in f.collapse:
        item.hidden = item.descendants()
        item.collapsed = True
        item.children = []
        return
    by_kind: dict[str, list[Item]] = defaultdict(list)
    for child in item.children:
        by_kind[child.kind].append(child)
    shaped: list[Item] = []
    for kind, kids in by_kind.items():
        key = f"{item.id}:{kind}"
        leafy = all(not k.children for k in kids)
        # Generated children (a ReplicaSet's pods) are grouped; the app's own resources always show.
        if item.kind != "Application" and len(kids) > GROUP_AT and leafy and key not in f.expand:
            group = Item(id=key, kind=kind, name=f"{len(kids)} {kind}s", members=kids, group_key=key, parent=item)
            group.depth = depth + 1
            group.health = "Healthy" if all(k.health == "Healthy" for k in kids) else ""
            shaped.append(group)
        else:
            for kid in kids:
                _shape(kid, f, depth + 1)
                shaped.append(kid)
    item.children = shaped


def _place(item: Item, next_row: list[int]) -> float:
    """Leaves take consecutive rows; a parent sits centred on its first and last child. Returns its row."""
    item.x = PAD + item.depth * (NODE_W + GAP_X)
    if not item.children:
        row = float(next_row[0])
        next_row[0] += 1
    else:
        rows = [_place(c, next_row) for c in item.children]
        row = (rows[0] + rows[-1]) / 2
    item.y = PAD + round(row * (NODE_H + GAP_Y))
    return row


def _edges(item: Item, out: list[str]) -> None:
    x1, y1 = item.x + NODE_W, item.y + NODE_H // 2
    for child in item.children:
        x2, y2 = child.x, child.y + NODE_H // 2
        mid = (x1 + x2) // 2
        out.append(f"M{x1} {y1} C{mid} {y1} {mid} {y2} {x2} {y2}")
        _edges(child, out)


def _flatten(item: Item, out: list[Item]) -> list[Item]:
    out.append(item)
    for child in item.children:
        _flatten(child, out)
    return out


def graph(tree: JSON, app: JSON, f: Filters) -> JSON:
    """Everything the tree tab draws: items with coordinates, edge paths, the canvas size and the filter options."""
    root, items = items_of(tree, app)
    kinds = sorted({i.kind for i in items})
    if f.active:
        root.children = [c for c in root.children if _prune(c, f)]
    _shape(root, f)
    rows = [0]
    _place(root, rows)
    drawn = _flatten(root, [])
    for item in drawn:
        if item.is_group:
            item.toggle_query = f.query(expand=",".join(sorted(f.expand | {item.group_key})))
        elif item.collapsed:
            item.toggle_query = f.query(collapse=",".join(sorted(f.collapse - {item.id})))
        elif item.children and item is not root:
            item.toggle_query = f.query(collapse=",".join(sorted(f.collapse | {item.id})))
    paths: list[str] = []
    _edges(root, paths)
    depth = max(i.depth for i in drawn)
    return {
        "items": drawn,
        "resources": items,
        "edges": paths,
        "width": 2 * PAD + (depth + 1) * NODE_W + depth * GAP_X,
        "height": 2 * PAD + max(rows[0], 1) * (NODE_H + GAP_Y) - GAP_Y,
        "kinds": kinds,
        "shown": sum(1 for i in drawn if i is not root and not i.is_group) + sum(len(i.members) for i in drawn),
        "total": len(items),
        "node_w": NODE_W,
        "node_h": NODE_H,
    }


def flat_list(tree: JSON, app: JSON, f: Filters) -> list[Item]:
    """The list view: every resource that passes the filters, in tree order with its depth (no grouping)."""
    root, _items = items_of(tree, app)
    out: list[Item] = []

    def walk(item: Item, depth: int) -> None:
        for child in _order(item.children):
            child.depth = depth
            if f.matches(child):
                out.append(child)
            walk(child, depth + 1)

    walk(root, 0)
    return out


def pods_view(tree: JSON, app: JSON, f: Filters) -> list[tuple[str, list[Item], list[str]]]:
    """Pods grouped by the node they run on (the Node info) or by their parent, as Argo CD's pod view does."""
    _root, items = items_of(tree, app)
    groups: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        if item.kind != "Pod" or item.group or not f.matches(item):
            continue
        if f.group_by == "parent":
            parent = item.parent
            label = f"{parent.kind} {parent.name}" if parent and parent.kind != "Application" else "(no parent)"
        else:
            label = next((i.get("value") for i in item.info if i.get("name") == "Node"), "") or "(not scheduled)"
        groups[label].append(item)
    hosts = {h.get("name"): h for h in tree.get("hosts") or []} if f.group_by == "node" else {}
    return [
        (label, sorted(pods, key=lambda p: p.name), _host_usage(hosts.get(label)))
        for label, pods in sorted(groups.items())
    ]


def _host_usage(host: JSON | None) -> list[str]:
    """What Argo CD's pod view prints about a node: the app's and its neighbours' requests against capacity."""
    out = []
    for r in (host or {}).get("resourcesInfo") or []:
        name = r.get("resourceName", "")
        scale, unit = (1, "m") if name == "cpu" else (1024 * 1024, " MiB")
        try:
            app, others, cap = (
                int(r.get(k) or 0) // scale for k in ("requestedByApp", "requestedByNeighbors", "capacity")
            )
        except (TypeError, ValueError):
            continue
        out.append(f"{name}: {app}{unit} by this app, {others}{unit} by others, of {cap}{unit}")
    info = (host or {}).get("systemInfo") or {}
    if info.get("kubeletVersion"):
        out.append(
            f"kubelet {info['kubeletVersion']}, {info.get('operatingSystem', '')}/{info.get('architecture', '')}"
        )
    return out


def network_view(tree: JSON, app: JSON, f: Filters) -> JSON | None:
    """Ingresses → Services → Pods from networkingInfo (targetRefs, targetLabels, labels); None without it."""
    _root, items = items_of(tree, app)
    info = {i.id: (i.node or {}).get("networkingInfo") or {} for i in items}
    if not any(info.values()):
        return None
    pods = [i for i in items if i.kind == "Pod" and info[i.id].get("labels") is not None]
    services = [i for i in items if i.kind == "Service" and info[i.id].get("targetLabels")]
    ingresses = [i for i in items if i.kind == "Ingress"]
    links: list[tuple[Item, Item]] = []
    for svc in services:
        wanted = info[svc.id]["targetLabels"].items()
        links += [(svc, p) for p in pods if wanted <= (info[p.id].get("labels") or {}).items()]
    by_name = {(s.namespace, s.name): s for s in services}
    for ing in ingresses:
        for ref in info[ing.id].get("targetRefs") or []:
            svc = by_name.get((ref.get("namespace") or ing.namespace, ref.get("name")))
            if svc is not None and ref.get("kind", "Service") == "Service":
                links.append((ing, svc))
    linked = {i.id for pair in links for i in pair}
    columns = [
        [i for i in ingresses if f.matches(i) or i.id in linked],
        [s for s in services if f.matches(s) or s.id in linked],
        [p for p in pods if p.id in linked and f.matches(p)],
    ]
    columns = [c for c in columns if c]
    if not columns:
        return {"items": [], "edges": [], "width": 0, "height": 0, "node_w": NODE_W, "node_h": NODE_H}
    tallest = max(len(c) for c in columns)
    placed: dict[str, Item] = {}
    for depth, column in enumerate(columns):
        offset = (tallest - len(column)) / 2
        for row, item in enumerate(sorted(column, key=lambda i: (i.namespace, i.name))):
            item.x = PAD + depth * (NODE_W + GAP_X)
            item.y = PAD + round((row + offset) * (NODE_H + GAP_Y))
            placed[item.id] = item
    edges = []
    for a, b in links:
        if a.id in placed and b.id in placed:
            x1, y1, x2, y2 = a.x + NODE_W, a.y + NODE_H // 2, b.x, b.y + NODE_H // 2
            mid = (x1 + x2) // 2
            edges.append(f"M{x1} {y1} C{mid} {y1} {mid} {y2} {x2} {y2}")
    return {
        "items": list(placed.values()),
        "edges": edges,
        "width": 2 * PAD + len(columns) * NODE_W + (len(columns) - 1) * GAP_X,
        "height": 2 * PAD + tallest * (NODE_H + GAP_Y) - GAP_Y,
        "node_w": NODE_W,
        "node_h": NODE_H,
    }


def _badge(state: str, text: str = "") -> str:
    return f'<span class="badge {escape(state)}">{escape(text or state)}</span>'


def boxes_html(items: list[Item], panel_url: str, g: JSON) -> SafeString:
    """The graph's boxes as HTML, every value escaped.

    Written here rather than as a template loop: Django's template engine spends about a millisecond per box,
    which alone would take a 500-resource tree past its 300 ms budget (bench/tree.py); this is ~20× faster.
    The markup is that of templates/applications/tabs/_graph.html's comment.
    """
    w, h, panel = g["node_w"], g["node_h"], escape(panel_url)
    out = []
    for i in items:
        kind, name, health = escape(i.kind), escape(i.name), escape(i.health or "none")
        where = f" · {escape(i.namespace)}" if i.namespace and i.kind != "Application" else ""
        if i.is_group:
            q = escape(i.toggle_query)
            link = (f'<a class="gname" href="?{q}" hx-get="?{q}" hx-target="#tab" hx-push-url="true" '
                    f'title="Show each of them">{name}</a>')  # fmt: skip
            badges = "".join(_badge(s, f"{n} {s}") for s, n in i.health_counts)
        else:
            if i.kind == "Application":
                link = f'<strong class="gname" title="{name}">{escape(i.short_name)}</strong>'
            else:
                q = escape(i.panel_query)
                link = (f'<a class="gname" href="{panel}{q}" hx-get="{panel}{q}" hx-target="#resource-panel" '
                        f'title="{name}">{escape(i.short_name)}</a>')  # fmt: skip
            badges = (_badge(i.health) if i.health else "") + (" " + _badge(i.sync) if i.sync else "")
        if i.hidden:
            badges += f' <span class="badge">+{i.hidden}</span>'
        toggle = ""
        if i.toggle_query and not i.is_group:
            q, verb = escape(i.toggle_query), "Expand" if i.collapsed else "Collapse"
            sign = "+" if i.collapsed else "−"
            toggle = (f'<a class="gtoggle" href="?{q}" hx-get="?{q}" hx-target="#tab" hx-push-url="true" '
                      f'title="{verb} {name}" aria-label="{verb} {kind} {name}">{sign}</a>')  # fmt: skip
        out.append(
            f'<foreignObject x="{i.x}" y="{i.y}" width="{w}" height="{h}">'
            f'<div class="gnode{" ggroup" if i.is_group else ""} h-{health}" data-kind="{kind}" data-name="{name}">'
            f'<span class="kind-icon k-{escape(i.label)}" title="{kind}">{escape(i.label)}</span>'
            f'<span class="gbody"><small class="gkind">{kind}{where}</small>{link}'
            f'<span class="gbadges">{badges}</span></span>{toggle}</div></foreignObject>'
        )
    edges = "".join(f'<path d="{d}"></path>' for d in g["edges"])
    return mark_safe(f'<g class="tree-edges">{edges}</g>' + "\n".join(out))  # noqa: S308 - every value above went through escape()

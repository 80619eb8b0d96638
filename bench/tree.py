"""Resource tree benchmark: the tree tab of an application with ~500 resources, server time.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench REDIS_URL=redis://127.0.0.1:6379/13 \\
        .venv/bin/python bench/tree.py [--resources 500] [--rounds 15]

Measures, in one process (a throw-away test_<name> database, one SimServer over HTTP):
  (a) the whole HTMX request for the tree tab through Django's test Client as a platform admin: session, the
      app and its tree read from the simulator, layout, template — with every pod drawn (`expand`), and with
      the default grouping (the pods of one ReplicaSet as one group node)
  (b) the same app: layout and template only (the tree already read), every pod drawn
  (c) a synthetic tree of the same size with many top-level resources (Deployments with a ReplicaSet and 3 pods
      each, Services, ConfigMaps, Secrets, Jobs): layout and template only, every node drawn
Median and p95 wall time of the rounds, and the median CPU time of the request's own thread. The simulator's
app gets `replicaCount` so its tree has the wanted size.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")


def timed(fn, rounds: int) -> tuple[float, float, float]:
    """Median and p95 wall time, and the median CPU time of this thread (the portal's own work: the simulator
    answers from its own threads, and on a busy machine the wall time also counts other processes' turns)."""
    fn()  # warm: template loading, connections
    times, cpu = [], []
    for _ in range(rounds):
        t0, c0 = time.perf_counter(), time.thread_time()
        fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))], statistics.median(cpu)


def synthetic(resources: int) -> dict:
    nodes: list[dict] = []
    i = 0
    while len(nodes) < resources:
        i += 1
        dep = {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "bench", "name": f"svc-{i}",
               "uid": f"d{i}", "health": {"status": "Healthy"}, "images": [f"example.com/svc-{i}:1"]}  # fmt: skip
        rs = {"group": "apps", "version": "v1", "kind": "ReplicaSet", "namespace": "bench", "name": f"svc-{i}-abc",
              "uid": f"r{i}", "parentRefs": [{"uid": f"d{i}"}], "health": {"status": "Healthy"}}  # fmt: skip
        pods = [{"version": "v1", "kind": "Pod", "namespace": "bench", "name": f"svc-{i}-abc-{p}", "uid": f"p{i}-{p}",
                 "parentRefs": [{"uid": f"r{i}"}], "health": {"status": "Healthy"},
                 "info": [{"name": "Node", "value": f"node-{p}"}, {"name": "Containers", "value": "1/1"}]}
                for p in range(3)]  # fmt: skip
        others = [{"version": "v1", "kind": k, "namespace": "bench", "name": f"svc-{i}", "uid": f"{k}{i}"}
                  for k in ("Service", "ConfigMap", "Secret", "Job")]  # fmt: skip
        nodes += [dep, rs, *pods, *others]
    nodes = nodes[:resources]
    status = {"resources": [{"group": n.get("group", ""), "kind": n["kind"], "namespace": "bench", "name": n["name"],
                             "status": "Synced"} for n in nodes if not n.get("parentRefs")]}  # fmt: skip
    return {"nodes": nodes}, {"metadata": {"name": "bench"}, "status": status}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resources", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        print("needs DATABASE_URL (PostgreSQL)", file=sys.stderr)
        return 2

    import django

    django.setup()
    from django.test.utils import setup_databases, teardown_databases

    old_config = setup_databases(verbosity=0, interactive=False)
    sim = None
    try:
        from django.contrib.auth import get_user_model
        from django.template.loader import render_to_string
        from django.test import Client, RequestFactory
        from django.urls import reverse

        from apps.applications import graph
        from apps.applications.services import AppContext, tree_context
        from apps.argocd import ArgoCDClient
        from apps.instances.models import Instance
        from apps.simulator.server import SimServer

        sim = SimServer(port=0, name="bench-tree", apps=4, projects=2, seed=3, sync_seconds=0.0).start()
        instance = Instance.objects.create(name=sim.name, url=sim.url, token=sim.portal_token(), verify_tls=False)
        argo = ArgoCDClient(sim.url, token=sim.portal_token())
        model = argo.list_applications()[0]
        body = {"metadata": {"name": "big", "namespace": model["metadata"]["namespace"]}, "spec": model["spec"]}
        source = body["spec"]["source"]
        replicas = args.resources - 4  # Deployment, ReplicaSet, Service, ConfigMap and the pods
        source["helm"] = {"parameters": [{"name": "replicaCount", "value": str(replicas)}]}
        body["spec"].pop("syncPolicy", None)
        argo.create_application(body)
        argo.sync_application("big")
        deadline = time.monotonic() + 60
        while True:
            tree = argo.get_resource_tree("big")
            if len(tree.get("nodes") or []) >= args.resources or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        app = argo.get_application("big")
        nodes = tree.get("nodes") or []
        rs = next(n for n in nodes if n["kind"] == "ReplicaSet")

        user = get_user_model().objects.create_superuser("bench", "bench@example.com", "bench-password-1")
        client = Client()
        client.force_login(user)
        url = reverse("applications:detail", args=[instance.name, "big"])

        def view(expand: bool):
            def go():
                params = {"tab": "tree", **({"expand": f"{rs['uid']}:Pod"} if expand else {})}
                response = client.get(url, params, HTTP_HX_REQUEST="true")
                assert response.status_code == 200 and b"gnode" in response.content

            return go

        class Fixed:
            def __init__(self, tree):
                self.tree = tree

            def get_resource_tree(self, *a, **kw):
                return self.tree

        factory = RequestFactory()

        def layout(tree_doc: dict, app_doc: dict, query: str):
            request = factory.get(f"{url}?{query}")
            request.user = user
            ctx = AppContext(instance, Fixed(tree_doc), app_doc)

            def go():
                data = {"ctx": ctx, "request": request, **tree_context(ctx, request)}
                html = render_to_string("applications/tabs/tree.html", data, request=request)
                assert html.count('class="gnode') >= len(tree_doc["nodes"]) // 2

            return go

        drawn = len(graph.graph(tree, app, graph.Filters(expand={f"{rs['uid']}:Pod"}))["items"])
        print(f"simulator app 'big': {len(nodes)} resources in its tree ({drawn} boxes drawn with every pod)")
        rows = [
            ("(a) whole request, every pod drawn", view(True)),
            ("(a) whole request, pods grouped (default)", view(False)),
            ("(b) layout + template, every pod drawn", layout(tree, app, f"tab=tree&expand={rs['uid']}:Pod")),
        ]
        syn_tree, syn_app = synthetic(len(nodes))
        drawn = len(graph.graph(syn_tree, syn_app, graph.Filters())["items"])
        print(f"synthetic tree: {len(syn_tree['nodes'])} resources, {drawn} boxes drawn")
        rows.append(("(c) synthetic, layout + template", layout(syn_tree, syn_app, "tab=tree")))
        for label, fn in rows:
            median, p95, cpu = timed(fn, args.rounds)
            print(
                f"{label:<44} wall median {median * 1000:6.1f} ms, p95 {p95 * 1000:6.1f} ms; CPU {cpu * 1000:6.1f} ms"
            )
        print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        argo.close()
    finally:
        if sim is not None:
            sim.stop()
        teardown_databases(old_config, verbosity=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())

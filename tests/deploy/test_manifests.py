"""The Kubernetes manifests under deploy/: every overlay renders with `kubectl kustomize`, every object is valid
for Kubernetes (kubernetes-validate, strict), and the properties the portal relies on hold in what is rendered."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from django.test import Client, override_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
OVERLAYS = ["dev", "production"]
# A Kubernetes version kubernetes-validate bundles (requirements-dev.txt pins it).
KUBERNETES_VERSION = "1.35.0"
SECRET_NAME = "argocd-portal"
SECRET_KEYS = {"SECRET_KEY", "FIELD_ENCRYPTION_KEY", "DATABASE_URL", "REDIS_URL", "AUDIT_CHECKPOINT_KEY"}
WORKLOADS = {"web", "worker", "beat", "indexer"}
# The part of Argo CD's API description (swagger.json) that describes an Application.
ARGOCD_APPLICATION_SCHEMA = Path(__file__).with_name("argocd-application.swagger.json")

kubectl = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(kubectl is None, reason="kubectl is not installed: the manifests cannot be rendered")


@cache
def kustomize_version() -> tuple[int, ...]:
    out = subprocess.run([kubectl, "version", "--client"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"Kustomize Version: v(\d+)\.(\d+)", out)
    return tuple(int(n) for n in found.groups()) if found else (0, 0)


@cache
def rendered(path: str) -> tuple[tuple[dict, ...], str]:
    """The objects `kubectl kustomize deploy/<path>` prints, and what it wrote to stderr."""
    if kustomize_version() < (4, 0):
        pytest.skip(
            f"kubectl at {kubectl} bundles kustomize {kustomize_version()}, older than v4: it cannot render "
            "`resources:` directories and `patches:`"
        )
    done = subprocess.run([kubectl, "kustomize", str(DEPLOY / path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc), done.stderr


def objects(overlay: str, kind: str | None = None) -> list[dict]:
    return [obj for obj in rendered(f"overlays/{overlay}")[0] if kind is None or obj["kind"] == kind]


def named(overlay: str, kind: str, name: str) -> dict:
    matches = [obj for obj in objects(overlay, kind) if obj["metadata"]["name"] == name]
    assert len(matches) == 1, f"{overlay}: expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def workload(overlay: str, component: str) -> dict:
    return named(overlay, "Deployment", f"argocd-portal-{component}")


def pod_specs(overlay: str) -> list[tuple[str, dict]]:
    """(object name, pod template spec) of every Deployment and Job."""
    return [
        (obj["metadata"]["name"], obj["spec"]["template"]["spec"])
        for obj in objects(overlay)
        if obj["kind"] in {"Deployment", "Job"}
    ]


def containers(overlay: str) -> list[tuple[str, dict]]:
    return [(name, c) for name, spec in pod_specs(overlay) for c in spec.get("initContainers", []) + spec["containers"]]


def overlay_tag(overlay: str) -> str:
    kustomization = yaml.safe_load((DEPLOY / "overlays" / overlay / "kustomization.yaml").read_text())
    (image,) = kustomization["images"]
    return f"{image['newName']}:{image['newTag']}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_without_warnings_and_every_object_is_valid_kubernetes(overlay):
    objs, stderr = rendered(f"overlays/{overlay}")
    assert "warning" not in stderr.lower(), stderr
    kinds = {obj["kind"] for obj in objs}
    assert {"Deployment", "Service", "PodDisruptionBudget", "Job", "ConfigMap"} <= kinds
    for obj in objs:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_strict_validation_rejects_a_misspelt_field():
    deployment = copy.deepcopy(workload("production", "web"))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {"httpGet": {"path": "/healthz"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_runs_the_portal_command_it_is_named_for(overlay):
    commands = {
        c: " ".join(workload(overlay, c)["spec"]["template"]["spec"]["containers"][0]["command"]) for c in WORKLOADS
    }
    assert commands["web"].startswith(
        "gunicorn portal.asgi:application -k uvicorn_worker.UvicornWorker --bind 0.0.0.0:8000"
    )
    assert commands["worker"].startswith("celery -A portal worker --pool=threads")
    assert commands["beat"].startswith("celery -A portal beat")
    assert commands["indexer"] == "python manage.py run_indexer"
    job = named(overlay, "Job", "argocd-portal-migrate")
    assert "manage.py migrate --noinput" in " ".join(job["spec"]["template"]["spec"]["containers"][0]["command"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_resources_and_a_locked_down_security_context(overlay):
    for name, spec in pod_specs(overlay):
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert isinstance(spec["securityContext"]["runAsUser"], int), f"{name}: the image's user is a name"
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec.get("automountServiceAccountToken") is False, name
    for name, container in containers(overlay):
        resources = container["resources"]
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources.get(bound, {})), f"{name}: {bound}"
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True, name
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["capabilities"] == {"drop": ["ALL"]}, name
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
        # gunicorn, celery and tempfile need a writable /tmp beside the read-only image
        assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}, name


def test_pods_run_as_the_user_the_image_creates():
    uid = re.search(r"useradd [^&]*--uid (\d+)", (ROOT / "Dockerfile").read_text())
    assert uid, "the Dockerfile creates its user without a fixed UID"
    assert {spec["securityContext"]["runAsUser"] for _, spec in pod_specs("production")} == {int(uid.group(1))}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_long_running_container_has_a_liveness_probe_and_web_is_ready_on_readyz(overlay):
    for component in WORKLOADS:
        (container,) = workload(overlay, component)["spec"]["template"]["spec"]["containers"]
        assert container.get("livenessProbe"), f"{component} has no liveness probe"
    (web,) = workload(overlay, "web")["spec"]["template"]["spec"]["containers"]
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz?skip=workers"
    (worker,) = workload(overlay, "worker")["spec"]["template"]["spec"]["containers"]
    assert "inspect ping" in " ".join(worker["livenessProbe"]["exec"]["command"])


def probe_headers(probe: dict) -> dict[str, str]:
    return {h["name"]: h["value"] for h in probe["httpGet"].get("httpHeaders", [])}


@pytest.mark.django_db
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_web_probes_pass_the_host_and_https_checks_of_the_rendered_settings(overlay):
    """The kubelet sends the pod IP as Host over plain HTTP; the probes' headers must get a 200, not 400 or 301."""
    config = named(overlay, "ConfigMap", "argocd-portal-config")["data"]
    assert config["DEBUG"] == "0"
    (web,) = workload(overlay, "web")["spec"]["template"]["spec"]["containers"]
    production_like = override_settings(
        DEBUG=False,
        ALLOWED_HOSTS=[h.strip() for h in config["ALLOWED_HOSTS"].split(",") if h.strip()],
        SECURE_SSL_REDIRECT=config["SECURE_SSL_REDIRECT"] == "1",
        SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
    )
    with production_like:
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            response = Client().get(web[probe]["httpGet"]["path"], headers=probe_headers(web[probe]))
            assert response.status_code == 200, f"{probe}: {response.status_code} {response.content[:200]!r}"
        bare = Client().get("/healthz", headers={"Host": "10.1.2.3:8000"})
        assert bare.status_code == 400  # what a probe without the Host header would get


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_only_referenced_never_written(overlay):
    objs = objects(overlay)
    assert not [obj for obj in objs if obj["kind"] == "Secret"]
    for name, container in containers(overlay):
        env = {e["name"]: e for e in container.get("env", [])}
        assert set(env) >= SECRET_KEYS, f"{name} lacks {SECRET_KEYS - set(env)}"
        for key in SECRET_KEYS:
            assert "value" not in env[key], f"{name}: {key} is a literal"
            assert env[key]["valueFrom"]["secretKeyRef"] == {"name": SECRET_NAME, "key": key}, name
        literal = [
            e["name"] for e in env.values() if "value" in e and re.search(r"KEY|SECRET|PASSWORD|TOKEN|_URL", e["name"])
        ]
        assert not literal, f"{name}: literal secrets {literal}"
        for source in container.get("envFrom", []):
            assert set(source) == {"configMapRef"}, name
    config = named(overlay, "ConfigMap", "argocd-portal-config")["data"]
    assert not SECRET_KEYS & set(config)
    text = json.dumps(objs)
    assert not re.search(r"(postgres|postgresql|redis)://", text), "a connection URL is written in the manifests"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_migrations_run_as_an_argocd_presync_hook(overlay):
    job = named(overlay, "Job", "argocd-portal-migrate")
    annotations = job["metadata"]["annotations"]
    assert annotations["argocd.argoproj.io/hook"] == "PreSync"
    assert annotations["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation"
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    # hooks run before the Sync phase creates the ConfigMap, so the Job must not depend on it
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert "envFrom" not in container


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_beat_is_one_replica_replaced_never_overlapped(overlay):
    beat = workload(overlay, "beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_disruption_budgets_and_the_service_select_the_pods_they_are_for(overlay):
    pods = {
        obj["metadata"]["name"]: obj["spec"]["template"]["metadata"]["labels"]
        for obj in objects(overlay)
        if obj["kind"] in {"Deployment", "Job"}
    }
    budgets = {pdb["metadata"]["name"]: pdb for pdb in objects(overlay, "PodDisruptionBudget")}
    assert set(budgets) == {"argocd-portal-web", "argocd-portal-worker"}
    for name, pdb in budgets.items():
        chosen = {pod for pod, labels in pods.items() if selects(pdb["spec"]["selector"]["matchLabels"], labels)}
        assert chosen == {name}, f"{name} selects {chosen}"
    for deployment in objects(overlay, "Deployment"):
        assert selects(
            deployment["spec"]["selector"]["matchLabels"], deployment["spec"]["template"]["metadata"]["labels"]
        )
    service = named(overlay, "Service", "argocd-portal-web")
    chosen = {pod for pod, labels in pods.items() if selects(service["spec"]["selector"], labels)}
    assert chosen == {"argocd-portal-web"}
    (web,) = workload(overlay, "web")["spec"]["template"]["spec"]["containers"]
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= {p["name"] for p in web["ports"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlays_set_the_image_tag_of_every_container(overlay):
    base_images = {
        c["image"]
        for obj in rendered("base")[0]
        if "template" in obj.get("spec", {})
        for c in obj["spec"]["template"]["spec"]["containers"]
    }
    assert base_images == {"argocd-portal"}
    expected = overlay_tag(overlay)
    assert not expected.endswith(":latest")
    assert {c["image"] for _, c in containers(overlay)} == {expected}


def test_production_scales_out_and_is_reached_through_a_tls_ingress():
    assert workload("production", "web")["spec"]["replicas"] >= 2
    assert workload("production", "worker")["spec"]["replicas"] >= 2
    assert not objects("dev", "Ingress")
    (ingress,) = objects("production", "Ingress")
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] in ingress["spec"]["tls"][0]["hosts"]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    service = named("production", "Service", backend["name"])
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
    config = named("production", "ConfigMap", "argocd-portal-config")["data"]
    assert rule["host"] in config["ALLOWED_HOSTS"].split(",")
    assert f"https://{rule['host']}" in config["CSRF_TRUSTED_ORIGINS"].split(",")


def strict_application_schema() -> dict:
    """Argo CD's Application as its API describes it (swagger.json), with unknown fields refused."""
    definitions = copy.deepcopy(json.loads(ARGOCD_APPLICATION_SCHEMA.read_text())["definitions"])
    for definition in definitions.values():
        if definition.get("type") == "object" and definition.get("properties"):
            definition["additionalProperties"] = False
    application = definitions["v1alpha1Application"]
    application["properties"]["apiVersion"] = {"const": "argoproj.io/v1alpha1"}
    application["properties"]["kind"] = {"const": "Application"}
    application["required"] = ["apiVersion", "kind", "metadata", "spec"]
    definitions["v1alpha1ApplicationSpec"]["required"] = ["destination", "project"]
    definitions["v1alpha1ApplicationSource"]["required"] = ["repoURL"]
    return {"$ref": "#/definitions/v1alpha1Application", "definitions": definitions}


def test_argocd_application_matches_argocds_schema_and_deploys_the_production_overlay():
    application = yaml.safe_load((DEPLOY / "argocd" / "application.yaml").read_text())
    schema = strict_application_schema()
    jsonschema.Draft7Validator(schema).validate(application)
    misspelt = copy.deepcopy(application)
    misspelt["spec"]["syncPolicy"]["automatic"] = misspelt["spec"]["syncPolicy"].pop("automated")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema).validate(misspelt)

    spec = application["spec"]
    assert spec["source"]["path"] == "deploy/overlays/production"
    assert (ROOT / spec["source"]["path"] / "kustomization.yaml").exists()
    assert spec["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    assert {obj["metadata"].get("namespace") for obj in objects("production")} == {spec["destination"]["namespace"]}
    assert application["metadata"]["namespace"] == "argocd"

"""Everything in deploy/ is checked offline: every Kubernetes manifest against the Kubernetes
schemas (kubernetes-validate, strict: an unknown field is an error), the compose file against
the Compose specification (the schema vendored by check-jsonschema), the Grafana dashboard's
queries against the metrics we export; images are pinned by version and the API and the worker
have probes on endpoints that check something."""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from check_jsonschema.builtin_schemas import get_builtin_schema

pytestmark = pytest.mark.unit

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S_VERSION = "1.33.0"  # the oldest Kubernetes these manifests are written for
MANIFESTS = sorted([*DEPLOY.glob("k8s/*.yaml"), *DEPLOY.glob("k8s/*.yaml.example")])


def documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.mark.parametrize("path", MANIFESTS, ids=[p.name for p in MANIFESTS])
def test_kubernetes_manifests_are_valid(path):
    docs = documents(path)
    assert docs, f"{path.name} holds no resource"
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as err:
            where = "/".join(map(str, getattr(err, "path", []) or []))
            pytest.fail(f"{path.name}: {doc.get('kind')} {doc['metadata'].get('name')}: {err.message} (at {where})")


def _containers(doc: dict) -> list[dict]:
    spec = doc.get("spec", {})
    pod = spec.get("template", {}).get("spec") or spec.get("jobTemplate", {}).get("spec", {}).get("template", {})
    return [*pod.get("containers", []), *pod.get("initContainers", [])] if isinstance(pod, dict) else []


PINNED = re.compile(r"^[\w.\-/:]+:(?!latest$)[\w][\w.\-]*(@sha256:[0-9a-f]{64})?$")


def test_images_are_pinned_by_version():
    images = [c["image"] for p in MANIFESTS for d in documents(p) for c in _containers(d)]
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    images += [s["image"] for s in compose["services"].values() if "image" in s and "build" not in s]
    assert images
    loose = [i for i in images if not PINNED.match(i)]
    assert not loose, f"images without a version tag (or :latest): {loose}"
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", (DEPLOY / "Dockerfile").read_text(), re.M)
    assert base and PINNED.match(base.group(1)), "the Dockerfile's base image is pinned"


def _deployment(name: str) -> dict:
    for path in MANIFESTS:
        for doc in documents(path):
            if doc.get("kind") == "Deployment" and doc["metadata"]["name"] == name:
                return doc
    raise AssertionError(f"no Deployment {name}")


@pytest.mark.parametrize(("name", "port_name"), [("camlights-api", "http"), ("camlights-worker", "health")])
def test_api_and_worker_have_probes_that_check_something(name, port_name):
    (container,) = _deployment(name)["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    assert port_name in ports, f"{name} names no {port_name} port"
    ready = container.get("readinessProbe", {}).get("httpGet")
    assert ready and ready["path"] == "/health" and ready["port"] in (port_name, ports[port_name]), name
    live = container.get("livenessProbe", {})
    assert live, f"{name} has no liveness probe"
    if name == "camlights-worker":  # the worker still polls (a dependency outage restarts nothing)
        assert live["httpGet"]["path"] == "/live" and live["httpGet"]["port"] == port_name


def test_the_worker_exposes_its_metrics_and_health_ports_as_configured():
    (container,) = _deployment("camlights-worker")["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    assert env.get("WORKER_OBSERVE_HOST") == "0.0.0.0"
    assert str(ports["metrics"]) == env.get("WORKER_METRICS_PORT", "9464")
    assert str(ports["health"]) == env.get("WORKER_HEALTH_PORT", "8081")


def test_compose_file_follows_the_compose_specification():
    schema = get_builtin_schema("vendor.compose-spec")
    doc = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)
    worker = doc["services"]["worker"]
    assert "/health" in " ".join(worker["healthcheck"]["test"]), "the compose worker has a health check"


def test_the_grafana_dashboard_queries_series_we_export():
    dashboard = json.loads((DEPLOY / "grafana" / "camlights-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert exprs
    names = set(re.findall(r"\b(camlights_\w+|temporal_\w+)", " ".join(exprs)))
    ours = {
        "camlights_api_request_duration_seconds_bucket",
        "camlights_api_request_duration_seconds_count",
        "camlights_journeys_started",
        "camlights_journeys_ended",
        "camlights_decisions",
        "camlights_decision_latency_bucket",
        "camlights_emails",
        "camlights_webhook_deliveries",
        "camlights_crm_events_total",
        "temporal_workflow_completed",
        "temporal_workflow_failed",
        "temporal_activity_execution_failed",
        "temporal_activity_schedule_to_start_latency_bucket",
        "temporal_workflow_task_schedule_to_start_latency_bucket",
    }
    assert names <= ours, f"the dashboard queries series nobody exports: {sorted(names - ours)}"


def test_only_the_api_is_published_beyond_this_host():
    """Temporal's gRPC (start and signal any journey), its UI (no login) and the mail sink (shows
    sign-in links) are published on 127.0.0.1 only; the API's load balancer is the one public port."""
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    published = {name: s.get("ports", []) for name, s in compose["services"].items() if s.get("ports")}
    assert {"temporal", "temporal-ui", "mailpit", "lb"} <= set(published)
    for name, ports in published.items():
        for port in ports:
            if name != "lb":
                assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


@pytest.mark.parametrize("name", ["camlights-api", "camlights-worker"])
def test_api_and_worker_run_several_replicas_with_a_disruption_budget(name):
    """The multi-replica shape: 2+ replicas, a rollout that never goes below them, a
    PodDisruptionBudget selecting exactly this Deployment's pods (a drain evicts one at a time),
    probes and resources on the container."""
    deployment = _deployment(name)
    spec = deployment["spec"]
    assert spec["replicas"] >= 2, f"{name} runs one replica"
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod_labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= pod_labels.items()
    budgets = [
        d
        for p in MANIFESTS
        for d in documents(p)
        if d.get("kind") == "PodDisruptionBudget" and d["metadata"]["name"] == name
    ]
    assert len(budgets) == 1, f"{name} has no PodDisruptionBudget"
    (budget,) = budgets
    assert budget["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    assert budget["spec"]["selector"]["matchLabels"] == spec["selector"]["matchLabels"]
    allowed = budget["spec"].get("maxUnavailable", 0)
    if "minAvailable" in budget["spec"]:
        allowed = spec["replicas"] - budget["spec"]["minAvailable"]
    assert 1 <= allowed < spec["replicas"], f"{name}'s budget lets a drain take {allowed} of {spec['replicas']} pods"
    (container,) = spec["template"]["spec"]["containers"]
    assert container.get("readinessProbe") and container.get("livenessProbe")
    resources = container.get("resources", {})
    assert {"cpu", "memory"} <= set(resources.get("requests", {})), f"{name} requests no cpu/memory"
    assert "memory" in resources.get("limits", {}), f"{name} has no memory limit"


def test_compose_runs_two_apis_behind_one_port_and_two_workers():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in ("api", "worker"):
        assert services[name]["deploy"]["replicas"] >= 2, f"compose runs one {name}"
        assert "ports" not in services[name], f"a fixed host port on {name} stops it scaling"
    lb = services["lb"]
    conf = (DEPLOY / "nginx" / "camlights.conf").read_text()
    mount = next(v for v in lb["volumes"] if "camlights.conf" in v)
    assert mount.split(":")[0] == "./nginx/camlights.conf"
    assert re.search(r"proxy_pass\s+\$api;", conf) and "http://api:8000" in conf
    assert "X-Forwarded-For $proxy_add_x_forwarded_for" in conf
    # The API trusts the load balancer's (fixed) address and nothing else for X-Forwarded-For.
    address = lb["networks"]["default"]["ipv4_address"]
    trusted = json.loads(services["api"]["environment"]["TRUSTED_PROXIES"])
    assert trusted == [f"{address}/32"]
    (subnet,) = compose["networks"]["default"]["ipam"]["config"]
    assert ipaddress.ip_address(address) in ipaddress.ip_network(subnet["subnet"])
    (config,) = documents(DEPLOY / "k8s" / "configmap.yaml")
    assert [ipaddress.ip_network(c) for c in json.loads(config["data"]["TRUSTED_PROXIES"])], "k8s trusts its ingress"


def test_every_deploy_runs_in_production():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    assert compose["x-camlights-env"]["ENVIRONMENT"] == "production"
    (config,) = documents(DEPLOY / "k8s" / "configmap.yaml")
    assert config["data"]["ENVIRONMENT"] == "production"
    assert re.search(r"^\s+ENVIRONMENT=production \\$", (DEPLOY / "Dockerfile").read_text(), re.M)

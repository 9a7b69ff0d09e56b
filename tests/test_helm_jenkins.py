"""The chart beside the official Jenkins chart (issue 12, section 3): what `helm install` prints for the Jenkins side
(NOTES.txt), the values snippet for jenkins/jenkins (examples/jenkins-values.yaml), and the NetworkPolicy admitting
that chart's controller pod. Rendered with the real helm binary; addresses and Secret names are checked against
the objects the chart really renders, not against copies of the names."""

from __future__ import annotations

import re
import shutil
import subprocess

import kubernetes_validate
import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.test_helm_chart import CHART, RELEASE, by_kind, documented_install_flags, helm_binary, render

NAMESPACE = "jenkins"
EXAMPLE = CHART / "examples" / "jenkins-values.yaml"
JAVA_CLIENT = REPO_ROOT / "clients" / "java" / "src" / "main" / "java" / "io" / "jenkins" / "plugins" / "assistant" \
    / "grpc" / "AssistantClient.java"
# The labels jenkins/jenkins puts on its controller pod with default values (charts/jenkins/templates/
# jenkins-controller-statefulset.yaml: name = nameOverride or the chart name, component = controller.componentName,
# default "jenkins-controller"), here for a release named "jenkins".
JENKINS_CONTROLLER_POD = {
    "app.kubernetes.io/name": "jenkins",
    "app.kubernetes.io/managed-by": "Helm",
    "app.kubernetes.io/instance": "jenkins",
    "app.kubernetes.io/component": "jenkins-controller",
}
# The build agents the kubernetes plugin starts for that controller: they run users' builds, so they are not let in.
JENKINS_AGENT_POD = {"jenkins/jenkins-jenkins-agent": "true", "jenkins/label": "jenkins-jenkins-agent",
                     "kubernetes.io/os": "linux"}

AUTH_VARIANTS = {
    "no auth": [],
    "shared token": ["--set", "auth.token=s3cret"],
    "existing secret": ["--set", "auth.existingSecret=assistant-auth"],
    "a credential per client": ["--set", "auth.required=true", "--set", "auth.clientsSecret=assistant-clients"],
}


@pytest.fixture(scope="module")
def notes_chart(tmp_path_factory):
    """A copy of the chart whose NOTES.txt renders as a ConfigMap: `helm template` skips NOTES.txt and `helm install
    --dry-run` needs a cluster, so the notes become a named template rendered into an object instead."""
    chart = tmp_path_factory.mktemp("notes") / "jenkins-assistant"
    shutil.copytree(CHART, chart)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "NOTES.txt").unlink()
    (chart / "templates" / "notes-under-test.yaml").write_text(
        '{{- define "test.notes" }}' + notes + "{{- end }}\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n"
        'data:\n  notes: {{ include "test.notes" . | toJson }}\n')
    return chart


def rendered_notes(chart, *flags: str) -> str:
    out = subprocess.run([helm_binary(), "template", RELEASE, str(chart), "--namespace", NAMESPACE,
                          "--show-only", "templates/notes-under-test.yaml", *flags],
                         check=True, capture_output=True, text=True).stdout
    return yaml.safe_load(out)["data"]["notes"]


def notes_values_snippet(notes: str) -> dict:
    """The jenkins/jenkins values the notes print (from `controller:` to the next blank line)."""
    start = notes.index("\ncontroller:\n") + 1
    end = notes.find("\n\n", start)
    return yaml.safe_load(notes[start:end if end != -1 else None])


def env_of(values: dict) -> dict[str, dict]:
    return {entry["name"]: entry for entry in values["controller"]["containerEnv"]}


def check_target(target: str, docs: list[dict]) -> None:
    """A dns:/// target naming a headless Service of this release, fully qualified in NAMESPACE, on its gRPC port."""
    match = re.fullmatch(r"dns:///([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local:(\d+)", target)
    assert match, target
    service = by_kind(docs, "Service")[match.group(1)]
    assert service["spec"].get("clusterIP") == "None"  # headless: round_robin sees every pod
    assert match.group(2) == NAMESPACE
    assert int(match.group(3)) in {port["port"] for port in service["spec"]["ports"] if port["name"] == "grpc"}
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "inference"


@pytest.mark.parametrize("flags", AUTH_VARIANTS.values(), ids=AUTH_VARIANTS.keys())
def test_the_notes_say_what_to_configure_on_the_jenkins_side(notes_chart, flags):
    docs = render("--namespace", NAMESPACE, *flags)
    notes = rendered_notes(notes_chart, *flags)
    env = env_of(notes_values_snippet(notes))
    check_target(env["JENKINS_ASSISTANT_TARGET"]["value"], docs)
    assert re.search(r"^     dns:///\S+:50051$", notes, re.MULTILINE)  # the address and port, in words
    assert "port 50051" in notes

    if not flags:
        assert "WITHOUT AUTH" in notes and "JENKINS_ASSISTANT_TOKEN" not in env
        return
    secret_ref = env["JENKINS_ASSISTANT_TOKEN"]["valueFrom"]["secretKeyRef"]
    if "auth.clientsSecret=assistant-clients" in flags:
        # The plugin's own credential: its entry needs assert-owner, and its token a Secret the notes say to create.
        assert '"scopes": ["assert-owner"]' in notes
        assert f"create secret generic {secret_ref['name']} --from-literal=token=" in notes
        return
    # The shared token: the Secret every server of this release reads its token from.
    inference = by_kind(docs, "Deployment")[f"{RELEASE}-jenkins-assistant-inference"]
    server_refs = [e["valueFrom"]["secretKeyRef"] for c in inference["spec"]["template"]["spec"]["containers"]
                   for e in c.get("env", []) if e["name"] == "INFERENCE_AUTH_TOKEN"]
    assert server_refs and {"name": secret_ref["name"], "key": secret_ref["key"]} == \
        {"name": server_refs[0]["name"], "key": server_refs[0]["key"]}
    assert f"get secret {secret_ref['name']} -o jsonpath='{{.data.token}}'" in notes


def test_the_example_values_are_what_the_notes_print_for_the_documented_install(notes_chart):
    flags = documented_install_flags()
    docs = render("--namespace", NAMESPACE, *flags)
    example = yaml.safe_load(EXAMPLE.read_text())
    assert env_of(example) == env_of(notes_values_snippet(rendered_notes(notes_chart, *flags)))

    env = env_of(example)
    check_target(env["JENKINS_ASSISTANT_TARGET"]["value"], docs)
    secret = by_kind(docs, "Secret")[env["JENKINS_ASSISTANT_TOKEN"]["valueFrom"]["secretKeyRef"]["name"]]
    assert env["JENKINS_ASSISTANT_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] in secret["stringData"]
    # Valid container env for Kubernetes, and the names the Java client reads.
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "jenkins-0"},
           "spec": {"containers": [{"name": "jenkins", "image": "jenkins/jenkins:lts",
                                    "env": example["controller"]["containerEnv"]}]}}
    kubernetes_validate.validate(pod, kubernetes_validate.latest_version(), strict=True)
    java = JAVA_CLIENT.read_text()
    for name in env:
        assert re.search(rf'public static final String ENV_\w+ = "{name}";', java), name


def controller_peers(docs: list[dict]) -> list[dict]:
    policy = by_kind(docs, "NetworkPolicy")[f"{RELEASE}-jenkins-assistant"]
    [rule] = policy["spec"]["ingress"]
    return [peer for peer in rule["from"] if peer.get("podSelector", {}).get("matchLabels", {}).get(
        "app.kubernetes.io/instance") != RELEASE]


def admits(peer: dict, pod_labels: dict[str, str], namespace_labels: dict[str, str]) -> bool:
    """Whether a NetworkPolicy peer (matchLabels only, as the chart renders) selects this pod."""
    def matches(selector: dict | None, labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in (selector or {}).get("matchLabels", {}).items())
    in_namespace = matches(peer.get("namespaceSelector"), namespace_labels) if "namespaceSelector" in peer \
        else namespace_labels.get("kubernetes.io/metadata.name") == NAMESPACE
    return in_namespace and matches(peer.get("podSelector"), pod_labels)


def test_the_network_policy_admits_the_jenkins_charts_controller_and_not_its_agents():
    same_namespace = {"kubernetes.io/metadata.name": NAMESPACE}
    [peer] = controller_peers(render("--namespace", NAMESPACE))
    assert admits(peer, JENKINS_CONTROLLER_POD, same_namespace)
    assert not admits(peer, JENKINS_AGENT_POD, same_namespace)
    assert not admits(peer, JENKINS_CONTROLLER_POD, {"kubernetes.io/metadata.name": "elsewhere"})

    # A controller in another namespace: one peer with both selectors (that namespace AND those labels).
    ci = {"kubernetes.io/metadata.name": "ci"}
    docs = render("--namespace", NAMESPACE, "--set", "jenkinsController.namespaceLabels.kubernetes\\.io/metadata\\.name=ci")
    for doc in docs:
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)
    [peer] = controller_peers(docs)
    assert admits(peer, JENKINS_CONTROLLER_POD, ci)
    assert not admits(peer, JENKINS_CONTROLLER_POD, same_namespace)
    assert not admits(peer, JENKINS_AGENT_POD, ci)

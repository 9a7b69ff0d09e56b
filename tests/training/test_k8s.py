"""The Kubernetes Job manifest validates against the Kubernetes schema and asks for what the training needs."""

from __future__ import annotations

import kubernetes_validate
import yaml

from tests.conftest import REPO_ROOT

JOB_FILE = REPO_ROOT / "training-job" / "k8s" / "job.yaml"
CONFIG_DIR = REPO_ROOT / "training-job" / "config"


def documents() -> list[dict]:
    return [doc for doc in yaml.safe_load_all(JOB_FILE.read_text()) if doc]


def test_every_document_validates_against_the_kubernetes_schema():
    version = kubernetes_validate.latest_version()
    for doc in documents():
        kubernetes_validate.validate(doc, version, strict=True)  # strict: unknown fields are errors too


def test_schema_validation_catches_a_broken_job():
    """The check above can fail: a misspelled field and a wrong type are rejected."""
    import pytest

    job = next(doc for doc in documents() if doc["kind"] == "Job")
    job["spec"]["template"]["spec"]["restartPolicyy"] = "OnFailure"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, kubernetes_validate.latest_version(), strict=True)
    job = next(doc for doc in documents() if doc["kind"] == "Job")
    job["spec"]["backoffLimit"] = "six"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, kubernetes_validate.latest_version(), strict=True)


def test_job_runs_on_a_gpu_node_and_resumes_from_its_checkpoint_volume():
    job = next(doc for doc in documents() if doc["kind"] == "Job")
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "OnFailure" and job["spec"]["backoffLimit"] >= 1
    assert pod["nodeSelector"] and any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
    assert {"checkpoints", "models"} <= set(claims)
    args = dict(arg.removeprefix("--").split("=", 1) for arg in container["args"])
    assert args["output_dir"].startswith(mounts["checkpoints"] + "/")  # checkpoints survive a Pod restart
    assert args["publish_dir"].startswith(mounts["models"] + "/")
    config = yaml.safe_load((CONFIG_DIR / args["config"].rsplit("/", 1)[1]).read_text())
    assert config["resume"] == "auto" and config["mode"] == "auto"
    pvcs = {doc["metadata"]["name"] for doc in documents() if doc["kind"] == "PersistentVolumeClaim"}
    assert {claims["checkpoints"], claims["models"]} <= pvcs

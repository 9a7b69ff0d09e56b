"""The project's answer-quality harness (`jenkins-assistant eval`, services/evaluation/) on a model, from the job.

The stack is started the way `make eval` starts it (deploy/local/run.sh): a local redis-server unless REDIS_URL is
set, the memory and the inference service on free loopback ports with INFERENCE_MODEL_PATH set to the model and the
retrieval index given, health checks, then `jenkins-assistant eval` asks the golden questions through the real gRPC
API, and everything is stopped. Done here in Python rather than through run.sh so that it also runs from the
training image, where the console scripts live in the image's venv and not in a checkout's .venv.
One run per model (new and base) on the same questions, index and answer length, so that the two `keyfact_recall`
figures compare; that setup is recorded with the scores for the next run's publish gate.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .config import TrainArguments

log = logging.getLogger(__name__)

# The figures kept in the manifest (the report has more; it stays beside the run's output).
KEPT = ("keyfact_recall", "retrieval_reach", "abstention", "false_abstention", "citation_valid", "sourced",
        "ttft_p50_s", "tokens_per_s", "errors", "items")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_serving(port: int, timeout_s: float, process: subprocess.Popen, log_file: Path) -> None:
    from jenkins_assistant.common.healthcheck import wait_until_serving

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if wait_until_serving(f"127.0.0.1:{port}", 5.0):
            return
    raise RuntimeError(f"service on port {port} not SERVING: {log_file.read_text()[-2000:]}")


def harness_setup(train_args: TrainArguments) -> dict:
    return {"split": train_args.harness_split, "limit": train_args.harness_limit,
            "max_tokens": train_args.harness_max_tokens, "index": str(Path(train_args.harness_index_dir).resolve())}


def run_harness(model_path: str | Path, label: str, out: Path, train_args: TrainArguments,
                timeout_s: float = 3600.0) -> dict:
    """Ask the golden questions of the harness setup through a fresh stack serving `model_path` (a .gguf or a
    published directory with its manifest.json); returns the report's summary figures and the seconds taken."""
    index = Path(train_args.harness_index_dir)
    if not (index / "manifest.json").is_file():
        raise FileNotFoundError(f"harness index {index} has no manifest.json (build it: make index)")
    out.parent.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent  # the console scripts of this installation
    state = Path(tempfile.mkdtemp(prefix=f"harness-{label}-", dir=out.parent))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "LOG_LEVEL": os.environ.get("HARNESS_LOG_LEVEL", "WARNING")}
    processes: list[subprocess.Popen] = []

    def start(args: list[str], name: str, extra: dict) -> tuple[subprocess.Popen, Path]:
        log_file = state / f"{name}.log"
        with log_file.open("w") as handle:
            process = subprocess.Popen(args, env={**env, **extra}, stdout=handle, stderr=subprocess.STDOUT)
        processes.append(process)
        return process, log_file

    started = time.perf_counter()
    log.info("harness: %s on %s (%d questions)", label, model_path, train_args.harness_limit)
    try:
        if not env.get("REDIS_URL"):
            redis = shutil.which("redis-server")
            if redis is None:
                raise FileNotFoundError("redis-server not found for the harness: install it or set REDIS_URL")
            redis_port = _free_port()
            start([redis, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                   "--dir", str(state)], "redis", {})
            env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        memory_port, inference_port = _free_port(), _free_port()
        memory, memory_log = start([str(bin_dir / "jenkins-assistant-memory")], "memory",
                                   {"MEMORY_PORT": str(memory_port), "MEMORY_METRICS_PORT": "0"})
        inference, inference_log = start([str(bin_dir / "jenkins-assistant-inference")], "inference", {
            "INFERENCE_PORT": str(inference_port), "INFERENCE_METRICS_PORT": "0",
            "INFERENCE_MODEL_PATH": str(Path(model_path).resolve()), "INFERENCE_INDEX_DIR": str(index.resolve()),
            "INFERENCE_MEMORY_TARGET": f"127.0.0.1:{memory_port}"})
        _wait_serving(memory_port, 60, memory, memory_log)
        _wait_serving(inference_port, 600, inference, inference_log)
        command = [str(bin_dir / "jenkins-assistant"), "eval", "--target", f"127.0.0.1:{inference_port}",
                   "--out", str(out), "--label", label, "--limit", str(train_args.harness_limit),
                   "--max-tokens", str(train_args.harness_max_tokens)]
        if train_args.harness_split:
            command += ["--split", train_args.harness_split]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout_s, check=False)
        if done.returncode != 0 or not out.is_file():
            raise RuntimeError(f"harness on {model_path} failed (exit {done.returncode}):\n{done.stdout[-2000:]}"
                               f"\n{done.stderr[-2000:]}")
    finally:
        for process in reversed(processes):  # only the processes started here
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    seconds = time.perf_counter() - started
    summary = json.loads(out.read_text(encoding="utf-8"))["summary"]
    figures = {k: summary[k] for k in KEPT if k in summary}
    log.info("harness %s: %s (%.0f s)", label, " ".join(f"{k}={v}" for k, v in figures.items()), seconds)
    return {**figures, "model_path": str(model_path), "seconds": round(seconds, 1)}

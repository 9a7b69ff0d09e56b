"""Fixtures of the inference tests: a real index of sampled shared data, the real SmolLM2 model, the memory service and
the inference service as processes, all on loopback."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest

from jenkins_assistant.common.auth import bearer_metadata
from jenkins_assistant.common.clients import token_sha256
from jenkins_assistant.inference.config import InferenceSettings, RetrievalSettings
from jenkins_assistant.v1 import common_pb2, inference_pb2, inference_pb2_grpc
from tests.conftest import REPO_ROOT, ServiceProcess, free_port, memory_service_process

# The tests' own small index, built in var/test-index from a fixed sample of ../shared/data: every page labelled as
# an answer in retrieval_questions.py (so recall@5 keeps its meaning) plus deterministic distractors from each source
# folder (jenkins_assistant.inference.index_cli.sample_shared_data_documents). About 2k chunks: a minute or so on 2
# cores the first time, incremental afterwards (nothing to do when the sample is unchanged). The full index
# (`make index`, var/index) is for `make run` / `make ui` / benchmarks only.
# INFERENCE_TEST_INDEX_DIR points the tests at another, prebuilt index as it is (no rebuild), e.g. var/index.
TEST_INDEX_DIR = REPO_ROOT / "var" / "test-index"
PREBUILT_INDEX_DIR = os.environ.get("INFERENCE_TEST_INDEX_DIR", "")
TEST_TOKEN = "inference-test-token"
# A second credential, of a client not trusted to name owners (like the CLI or the scraper): its owners stay inside
# its own name. TEST_TOKEN is the single shared token, trusted as it always was.
BOUND_CLIENT, BOUND_TOKEN = "cli", "inference-cli-token"
# The console log limit of the inference process (BUILD_LOG_MAX_LOG_BYTES).
# Over gRPC's default 4 MiB message limit, so the over-limit test also proves the server takes such a request.
BUILD_LOG_LIMIT_BYTES = 4_718_592


def explain_cache_url(redis_server) -> str:
    """The explanation cache's database on the tests' redis-server: not db 0, which the memory tests flush."""
    return f"redis://127.0.0.1:{redis_server.port}/1"


def labelled_urls() -> set[str]:
    """The pages the labelled retrieval questions accept as answers."""
    from tests.inference.retrieval_questions import QUESTIONS

    return {url for _question, pages in QUESTIONS for url in pages}


@pytest.fixture(scope="session")
def sample_index(shared_data: Path) -> Path:
    if PREBUILT_INDEX_DIR:
        return Path(PREBUILT_INDEX_DIR)
    from jenkins_assistant.inference.index_cli import sample_shared_data_documents
    from jenkins_assistant.inference.retrieval.builder import build_index
    from jenkins_assistant.inference.retrieval.embeddings import load_embedder

    settings = RetrievalSettings(index_dir=str(TEST_INDEX_DIR), embedding_threads=2, hybrid=True)
    documents = sample_shared_data_documents(shared_data, labelled_urls())
    build_index(documents, TEST_INDEX_DIR, settings, load_embedder(settings))
    return TEST_INDEX_DIR


@pytest.fixture(scope="session")
def memory_process(redis_server) -> Iterator[ServiceProcess]:
    """The memory service for the whole inference session (tests may stop and restart it)."""
    service = memory_service_process(redis_server.url)
    service.start()
    yield service
    service.stop()


@pytest.fixture(scope="session")
def inference_process(sample_index: Path, memory_process: ServiceProcess, redis_server, shared_data: Path,
                      tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """The inference service as in production, small settings: one slot and a one-chat queue, so queueing,
    overflow and slot release are observable; short answers keep the suite quick on 2 cores."""
    port, metrics_port = free_port(), free_port()
    clients_file = tmp_path_factory.mktemp("auth") / "clients.json"
    clients_file.write_text(json.dumps({BOUND_CLIENT: {"token_sha256": token_sha256(BOUND_TOKEN), "scopes": []}}))
    env = {
        "INFERENCE_HOST": "127.0.0.1",
        "INFERENCE_PORT": str(port),
        "INFERENCE_METRICS_PORT": str(metrics_port),
        "INFERENCE_AUTH_TOKEN": TEST_TOKEN,
        "INFERENCE_AUTH_CLIENTS_FILE": str(clients_file),
        "INFERENCE_INDEX_DIR": str(sample_index),
        "INFERENCE_PACKAGED_MODEL": "smollm2-135m",  # the fast model; the default answers better but slower
        "INFERENCE_MEMORY_TARGET": memory_process.target,
        "INFERENCE_PARALLEL_SLOTS": "1",
        "INFERENCE_MAX_QUEUE": "1",
        # One thread: on a shared 2-core machine a 2-thread llama.cpp context slows down 5x when another
        # process takes a core (measured: 155 vs 32 prompt tokens/s), and CI runs other processes beside it.
        "INFERENCE_N_THREADS": "1",
        "INFERENCE_N_CTX": "2048",
        "INFERENCE_RETRIEVAL_K": "3",
        "INFERENCE_DEFAULT_MAX_TOKENS": "48",
        "INFERENCE_GRACE_S": "1",
        # ExplainBuildLog: a log limit (4.5 MiB) just over gRPC's default message size, and a short excerpt, so an
        # explanation's prompt stays quick on 2 cores.
        "BUILD_LOG_MAX_LOG_BYTES": str(BUILD_LOG_LIMIT_BYTES),
        "BUILD_LOG_MAX_EXCERPT_CHARS": "3000",
        "BUILD_LOG_CACHE_REDIS_URL": explain_cache_url(redis_server),
        # The real update center document: plugin findings in answers' metadata and CheckPlugins.
        "INFERENCE_UPDATE_CENTER_PATH": str(shared_data / "jenkins-update-center" / "update-center.json"),
    }
    service = ServiceProcess(args=[sys.executable, "-m", "jenkins_assistant.inference.server"], env=env, port=port)
    service.metrics_port = metrics_port  # type: ignore[attr-defined]
    service.start(timeout_s=180)
    yield service
    service.stop()


@pytest.fixture
def channel(inference_process: ServiceProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(inference_process.target) as ch:
        yield ch


@pytest.fixture
def auth() -> tuple[tuple[str, str], ...]:
    return bearer_metadata(TEST_TOKEN)


def scrape_metric(process: ServiceProcess, name: str, labels: str = "") -> float:
    """A sample of the service's Prometheus endpoint (0 when absent); `labels` ('rating="helpful"') may name some of
    the sample's labels only, and then the samples that have them are summed."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{process.metrics_port}/metrics", timeout=5).read().decode()
    wanted = set(labels.split(",")) if labels else set()
    total = 0.0
    for line in text.splitlines():
        sample, _, value = line.rpartition(" ")
        metric, _, tail = sample.partition("{")
        if metric == name and wanted <= set(filter(None, tail.rstrip("}").split(","))):
            total += float(value)
    return total


def wait_for_metric(process, name: str, labels: str, value: float, timeout_s: float = 120) -> float:
    """Polls the metrics endpoint until the sample equals value (bounded wait, not a timing assertion)."""
    deadline = time.monotonic() + timeout_s
    current = scrape_metric(process, name, labels)
    while current != value and time.monotonic() < deadline:
        time.sleep(0.1)
        current = scrape_metric(process, name, labels)
    return current


def ignore_cancel(call):
    """The responses of a streaming call, ending quietly when the test cancels it."""
    try:
        yield from call
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.CANCELLED:
            raise


@contextmanager
def inference_queue_filled(process: ServiceProcess, attempts: int = 3) -> Iterator[None]:
    """Holds the service's only slot with one long sampled chat and fills its one-chat queue with another.

    A sampled answer can still end early (end of sequence) and free the slot before the second chat queues;
    then both are cancelled and it tries again with other seeds (each attempt is reproducible by its seed)."""
    def long_chat(question: str, seed: int) -> inference_pb2.ChatRequest:
        options = common_pb2.GenerationOptions(max_tokens=1500, temperature=0.7, seed=seed)
        return inference_pb2.ChatRequest(question=question, owner="tester", options=options)

    metadata = bearer_metadata(TEST_TOKEN)
    with grpc.insecure_channel(process.target) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        for attempt in range(attempts):
            running = stub.Chat(long_chat("Explain Jenkins agents in detail.", 11 + attempt), metadata=metadata)
            next(iter(running))  # metadata: it is admitted, and takes the only slot right after its sources
            wait_for_metric(process, "jenkins_assistant_inference_active_slots", "", 1.0, 60)
            queued = stub.Chat(long_chat("Explain Jenkins security in detail.", 23 + attempt), metadata=metadata)
            consumer = threading.Thread(target=lambda call=queued: list(ignore_cancel(call)), daemon=True)
            consumer.start()
            try:
                if wait_for_metric(process, "jenkins_assistant_inference_queue_depth", "", 1.0, 60) == 1.0:
                    yield
                    return
            finally:
                running.cancel()
                queued.cancel()
                consumer.join(timeout=30)
            wait_for_metric(process, "jenkins_assistant_inference_active_slots", "", 0.0)
    pytest.fail(f"in {attempts} attempts the long chat always ended before a second one queued")


@pytest.fixture(scope="session")
def smollm2_settings() -> InferenceSettings:
    return InferenceSettings(parallel_slots=1, n_threads=1, n_ctx=2048, require_index=False,
                             packaged_model="smollm2-135m")

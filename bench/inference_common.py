"""Shared by the inference benchmarks: starting our service, the prompt both sides generate from, timing helpers."""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc

from jenkins_assistant.inference.config import ChatTemplate
from jenkins_assistant.inference.model_source import packaged_gguf
from jenkins_assistant.inference.prompts import answer_messages
from jenkins_assistant.inference.templates import formatter_for_model
from jenkins_assistant.inference.trimming import TURN_STOP_SEQUENCES
from jenkins_assistant.v1 import common_pb2, inference_pb2, inference_pb2_grpc
from tests.conftest import RedisServer, ServiceProcess, free_port, memory_service_process

QUESTION = "Explain step by step how to write a declarative Jenkins pipeline that builds, tests and deploys a Java app."
REPEAT_PENALTY = 1.1  # the service's default; the baselines use the same


def model_path() -> str:
    return os.environ.get("INFERENCE_MODEL_PATH") or str(packaged_gguf())


def raw_prompt(llama) -> tuple[str, list[str]]:
    """The exact prompt text and stop sequences the service builds for QUESTION without retrieval or history."""
    formatter = formatter_for_model(llama, ChatTemplate.AUTO, ChatTemplate.AUTO)
    prompt = formatter.format(answer_messages(QUESTION, [], [], 0))
    return prompt.text, list(dict.fromkeys([*prompt.stop, *TURN_STOP_SEQUENCES]))


def start_inference(env: dict[str, str], timeout_s: float = 180) -> ServiceProcess:
    """Our service as its own process, SERVING; `.target` to call it, `.stop()` when done."""
    port = free_port()
    service = ServiceProcess(
        args=[sys.executable, "-m", "jenkins_assistant.inference.server"],
        env={"INFERENCE_HOST": "127.0.0.1", "INFERENCE_PORT": str(port), "INFERENCE_MODEL_PATH": model_path(),
             "INFERENCE_REQUIRE_INDEX": "false", "INFERENCE_INDEX_DIR": tempfile.mkdtemp(prefix="no-index-"),
             "INFERENCE_LOG_LEVEL": "WARNING", **env},
        port=port,
    )
    service.start(timeout_s)
    return service


def chat_request(max_tokens: int) -> inference_pb2.ChatRequest:
    return inference_pb2.ChatRequest(question=QUESTION, options=common_pb2.GenerationOptions(
        max_tokens=max_tokens, temperature=0.0, disable_retrieval=True))


def stream_chat(target: str, max_tokens: int) -> dict:
    """One streamed chat; client-side timings."""
    with grpc.insecure_channel(target) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        started = time.perf_counter()
        first = None
        text = []
        completion_tokens = 0
        for event in stub.Chat(chat_request(max_tokens), timeout=600):
            kind = event.WhichOneof("event")
            if kind == "delta":
                first = first or time.perf_counter()
                text.append(event.delta.text)
            elif kind == "finished":
                completion_tokens = event.finished.usage.completion_tokens
        ended = time.perf_counter()
    return {"ttft_s": (first or ended) - started, "total_s": ended - started, "tokens": completion_tokens,
            "text": "".join(text)}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


@contextmanager
def memory_service() -> Iterator[str]:
    """A redis-server and the memory service on loopback for the benchmark's run; yields the memory target."""
    redis = RedisServer(port=free_port(), workdir=Path(tempfile.mkdtemp(prefix="bench-redis-")))
    redis.start()
    memory = memory_service_process(redis.url)
    memory.start()
    try:
        yield memory.target
    finally:
        memory.stop()
        redis.stop()


def timed_chat(stub, question: str, max_tokens: int) -> dict[str, float]:
    """One greedy chat in a new session (history read and the exchange stored, as for a user's first question);
    client-side times in ms from sending the request to the sources, the first text and the finish event."""
    request = inference_pb2.ChatRequest(question=question, session_id=f"bench-{uuid.uuid4().hex[:12]}", owner="bench",
                                        options=common_pb2.GenerationOptions(max_tokens=max_tokens, temperature=0.0))
    started = time.perf_counter()
    sources_at = first_delta_at = None
    sources = 0
    for event in stub.Chat(request, timeout=900):
        kind = event.WhichOneof("event")
        if kind == "sources" and sources_at is None:
            sources_at = time.perf_counter()
            sources = len(event.sources.sources)
        elif kind == "delta" and first_delta_at is None:
            first_delta_at = time.perf_counter()
        elif kind == "finished":
            finished_at = time.perf_counter()
            warnings = list(event.finished.warnings)
            prompt_tokens = event.finished.usage.prompt_tokens
    if warnings:
        print(f"  warnings: {warnings}", flush=True)
    return {"sources_ms": (sources_at - started) * 1000, "ttft_ms": ((first_delta_at or finished_at) - started) * 1000,
            "finished_ms": (finished_at - started) * 1000, "sources": sources, "prompt_tokens": prompt_tokens}

"""Asking the golden questions through the real gRPC API of a running inference service.

Each question is asked once, one at a time (so time to first token is not inflated by queueing), with a fixed
seed, in a fresh session of its own (a follow-up's session holds its earlier questions and their answers). Greedy
by default (temperature 0), so that two runs differ only by what changed; `temperature=None` leaves sampling to
the service's defaults, as users get it.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field

from tqdm import tqdm

from jenkins_assistant.common.records import SourceRef
from jenkins_assistant.evaluation.golden import GoldenItem
from jenkins_assistant.evaluation.scoring import AnswerScore, score_answer

MODES = ("full", "bare")  # full: retrieval + generation; bare: the model alone (retrieval disabled)


@dataclass
class ItemResult:
    id: str
    category: str
    split: str
    answerable: bool
    question: str
    answer: str  # the whole text, quoted excerpts included
    quoted: str  # the excerpts of the sources quoted after the generated text
    sources: list[dict]  # SourceRef fields: the numbered passages the model was given
    prompt_tokens: int
    completion_tokens: int
    ttft_s: float  # server-side: request received -> first answer text (includes retrieval and the prompt)
    tokens_per_s: float
    finish_reason: str
    warnings: list[str]
    score: AnswerScore
    error: str = ""
    standalone: str = ""  # what the service searched for (a follow-up's rewrite, or the questions joined)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RunConfig:
    target: str
    token: str = ""
    mode: str = "full"
    max_tokens: int = 0  # the server's default, as users get it
    temperature: float | None = 0.0  # greedy; None = the server's default
    seed: int = 1
    retrieval_k: int = 0  # 0 = the server's default
    quotes: bool = True  # False: the generated text only (GenerationOptions.disable_quotes)
    timeout_s: float = 600.0
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])


def _request(question: str, session_id: str, config: RunConfig):
    from jenkins_assistant.v1 import common_pb2, inference_pb2

    return inference_pb2.ChatRequest(
        question=question, session_id=session_id, owner="eval",
        options=common_pb2.GenerationOptions(max_tokens=config.max_tokens, temperature=config.temperature,
                                             seed=config.seed,
                                             retrieval_k=config.retrieval_k,
                                             disable_retrieval=config.mode == "bare",
                                             disable_quotes=not config.quotes),
    )


def ask_item(stub, item: GoldenItem, config: RunConfig) -> ItemResult:
    import grpc

    from jenkins_assistant.common.auth import bearer_metadata
    from jenkins_assistant.v1 import common_pb2

    session_id = f"eval-{config.run_id}-{item.id}"
    metadata = bearer_metadata(config.token or None)
    parts: list[str] = []
    quoted: list[str] = []
    sources: list[dict] = []
    usage = None
    finish_reason = ""
    warnings: list[str] = []
    standalone = ""
    error = ""
    try:
        # A follow-up's earlier questions are answered first, in the same session, so the service reads them from
        # memory as it would in a conversation; only the follow-up's answer is scored.
        for earlier in item.earlier:
            for _event in stub.Chat(_request(earlier, session_id, config), timeout=config.timeout_s,
                                    metadata=metadata):
                pass
        for event in stub.Chat(_request(item.question, session_id, config), timeout=config.timeout_s,
                               metadata=metadata):
            kind = event.WhichOneof("event")
            if kind == "metadata":
                warnings = list(event.metadata.warnings)
                standalone = event.metadata.standalone_question
            elif kind == "delta":
                (quoted if event.delta.quoted else parts).append(event.delta.text)
            elif kind == "sources":
                sources = [asdict(SourceRef.from_pb(s)) for s in event.sources.sources]
            elif kind == "finished":
                usage = event.finished.usage
                finish_reason = common_pb2.FinishReason.Name(event.finished.finish_reason)
    except grpc.RpcError as exc:  # recorded, not raised: one failed item must not lose the run
        error = f"{exc.code().name}: {exc.details()}"
    generated, quotes = "".join(parts), "".join(quoted)
    answer = generated + quotes  # the quotes come after the generated text
    passages = [source["passage"] for source in sources]
    return ItemResult(
        id=item.id, category=item.category, split=item.split, answerable=item.answerable, question=item.question,
        answer=answer, quoted=quotes, sources=sources,
        prompt_tokens=usage.prompt_tokens if usage else 0, completion_tokens=usage.completion_tokens if usage else 0,
        ttft_s=usage.time_to_first_token_ms / 1000 if usage else 0.0,
        tokens_per_s=usage.tokens_per_s if usage else 0.0, finish_reason=finish_reason, warnings=warnings,
        score=score_answer(item, answer, passages, len(sources), generated), error=error, standalone=standalone,
    )


def run(items: list[GoldenItem], config: RunConfig, progress: bool = True) -> tuple[list[ItemResult], float]:
    import grpc

    from jenkins_assistant.v1 import inference_pb2_grpc

    if config.mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    started = time.perf_counter()
    with grpc.insecure_channel(config.target) as channel:
        grpc.channel_ready_future(channel).result(timeout=60)
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        results = [ask_item(stub, item, config) for item in tqdm(items, desc=f"eval {config.mode}", unit="q",
                                                                 disable=not progress)]
    return results, time.perf_counter() - started

"""The inference core called directly (no gRPC): prompt budgeting, history handling and feedback (kept by a real
memory service), with the real SmolLM2 model and no retrieval index."""

from __future__ import annotations

import asyncio

import pytest

from jenkins_assistant.common.errors import FailedPrecondition, InvalidInput, NotFound
from jenkins_assistant.inference.config import InferenceSettings
from jenkins_assistant.inference.core import (
    AnswerMetadata,
    ChatOptions,
    ChatQuery,
    Finished,
    Generated,
    InferenceCore,
    SourceList,
    TextDelta,
)
from jenkins_assistant.inference.model import ChatModel
from jenkins_assistant.inference.model_source import resolve_model
from jenkins_assistant.inference.prompts import Exchange, Passage


@pytest.fixture(scope="module")
def core(tmp_path_factory) -> InferenceCore:
    settings = InferenceSettings(parallel_slots=1, n_threads=1, n_ctx=1024, require_index=False,
                                 packaged_model="smollm2-135m")
    model = ChatModel(settings, resolve_model(settings))
    loaded = InferenceCore(settings, model, index=None, memory=None)
    yield loaded
    asyncio.run(loaded.close())
    model.close()


def collect(core: InferenceCore, query: ChatQuery) -> list:
    async def run():
        return [event async for event in core.chat(query)]

    return asyncio.run(run())


def answer_text(events: list) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


def collect_with_memory(settings: InferenceSettings, model: ChatModel, query: ChatQuery) -> list:
    """The events of one chat on a core of its own that reads and writes the memory service at settings'
    memory_target; close() is awaited, so the exchange is stored when this returns."""
    from jenkins_assistant.inference.memory_client import MemoryClient

    async def run() -> list:
        answering = InferenceCore(settings, model, index=None,
                                  memory=MemoryClient(settings.memory_target, None, settings.memory_timeout_s))
        try:
            return [event async for event in answering.chat(query)]
        finally:
            await answering.close()

    return asyncio.run(run())


def test_chat_without_index_or_memory_warns_and_answers(core):
    events = collect(core, ChatQuery(question="What is Jenkins?", session_id="s1", owner="ann",
                                     options=ChatOptions(max_tokens=12, temperature=0.0)))
    metadata = events[0]
    assert isinstance(metadata, AnswerMetadata) and not metadata.memory_available
    assert any("no memory service" in w for w in metadata.warnings)
    assert any("no retrieval index" in w for w in metadata.warnings)
    # The sources (none without an index) come right after the metadata, before the text.
    assert isinstance(events[1], SourceList) and events[1].sources == []
    assert len(events) > 3 and all(isinstance(e, TextDelta) for e in events[2:-1])
    finished = events[-1]
    assert isinstance(finished, Finished) and 0 < finished.usage.completion_tokens <= 12
    assert finished.warnings == []  # nothing to store without a memory service, so nothing failed


# Greedy SmolLM2 answers this by writing one list line ("- Pipelines:") again and again until max_tokens.
LOOPING_QUESTION = "Write a numbered list of 100 Jenkins plugins, one per line."


def repeats(text: str, chars: int) -> bool:
    """Whether some `chars` characters of text occur twice in it."""
    return any(text.find(text[i:i + chars], i + 1) >= 0 for i in range(len(text) - chars + 1))


def test_an_answer_that_starts_repeating_itself_stops_where_the_repeat_began(core):
    options = ChatOptions(max_tokens=160, temperature=0.0)
    never_stops = InferenceCore(core.settings.model_copy(update={"repetition_stop_chars": 0}), core.model,
                                index=None, memory=None)
    try:
        unguarded = collect(never_stops, ChatQuery(question=LOOPING_QUESTION, options=options))
    finally:
        asyncio.run(never_stops.close())
    looped = answer_text(unguarded)
    assert unguarded[-1].finish_reason == "length" and repeats(looped, 200)  # the model does loop here

    events = collect(core, ChatQuery(question=LOOPING_QUESTION, options=options))
    answer, finished = answer_text(events), events[-1]
    assert isinstance(finished, Finished) and finished.finish_reason == "repetition"
    # The same greedy answer up to the repeat, without it, and generation ended there.
    assert looped.startswith(answer) and len(answer) < len(looped) and not repeats(answer, 200)
    assert 0 < finished.usage.completion_tokens < unguarded[-1].usage.completion_tokens == 160


# Two passages written as greedy SmolLM2 answers STAGES_QUESTION without them: given them, it copies the first and
# goes on with the second, as the 0.5B model reads its real passages out.
STAGES_QUESTION = "How do I define stages in a declarative Jenkins pipeline?"
LISTED_PASSAGES = [
    Passage("Pipeline syntax", "https://www.jenkins.io/doc/book/pipeline/syntax/",
            "- The first part of the passage is about the pipeline syntax."),
    Passage("Pipeline syntax", "https://www.jenkins.io/doc/book/pipeline/syntax/",
            "- The second part is about the definition of a pipeline in Jenkins.\n"
            "- The third part is about the definition of a pipeline in Jenkins."),
]


def generate(core: InferenceCore, guarded_passages: list[Passage]) -> Generated:
    """STAGES_QUESTION answered from LISTED_PASSAGES, with the answer path's guards knowing `guarded_passages`."""
    async def run() -> Generated:
        prompt, _, _ = core._build_prompt(STAGES_QUESTION, LISTED_PASSAGES, [], 160)
        params = core.sampling(ChatOptions(max_tokens=160, temperature=0.0), 160, prompt.stop)
        out, turn = Generated(), core.turn()
        try:
            async for _delta in core.generate(turn, prompt, params, out, guarded_passages):
                pass
        finally:
            turn.close()
        return out

    return asyncio.run(run())


def test_an_answer_that_reads_its_passages_out_stops_where_it_had_copied_the_first(core):
    unguarded = generate(core, [])  # the same prompt, but the guards know no passages
    first, second = (p.text for p in LISTED_PASSAGES)
    # The model does read them out here, the prompt's "[1] Pipeline syntax" header included.
    assert first + "\n" + second in unguarded.text

    guarded = generate(core, LISTED_PASSAGES)
    assert guarded.result.finish_reason == "readout" and guarded.text == first
    assert 0 < guarded.result.completion_tokens < unguarded.result.completion_tokens


def test_prompt_drops_passages_then_history_to_leave_room_for_the_answer(core):
    passage = Passage("Pipeline syntax", "https://www.jenkins.io/doc/book/pipeline/syntax/", "stage steps " * 150)
    history = [Exchange("What is an agent?", "A machine that runs builds. " * 20)] * 3
    prompt, passages_used, history_used = core._build_prompt("How do stages work?", [passage] * 4, history, 256)
    assert prompt.n_tokens == len(prompt.tokens) and prompt.n_tokens + 256 <= core.model.n_ctx
    assert passages_used < 4 and history_used == 3  # passages go first, history is kept while it fits
    assert "<|im_end|>" in prompt.stop
    with pytest.raises(InvalidInput):
        core.model.fit(len(core.model.tokenize("word " * 2000)), 256)


def test_feedback_is_refused_without_a_memory_service_to_keep_it(core):
    events = collect(core, ChatQuery(question="How do I restart Jenkins?", owner="ann",
                                     options=ChatOptions(max_tokens=4, disable_retrieval=True)))
    with pytest.raises(FailedPrecondition, match="no memory service"):
        asyncio.run(core.submit_feedback(events[0].answer_id, "", "ann", "helpful", "clear"))
    with pytest.raises(InvalidInput):  # bad input is still named as such
        asyncio.run(core.submit_feedback(events[0].answer_id, "", "ann", "", ""))


def test_an_answer_rated_right_after_it_finishes_is_recorded_and_only_its_owner_rates_it(core, memory_service):
    """The record is written in the background; a rating sent at once on the same process waits for it."""
    import grpc

    from jenkins_assistant.inference.memory_client import MemoryClient
    from jenkins_assistant.v1 import common_pb2, memory_pb2, memory_pb2_grpc

    settings = core.settings.model_copy(update={"memory_target": memory_service.target})
    query = ChatQuery(question="How do I restart Jenkins?", owner="ann",
                      options=ChatOptions(max_tokens=6, temperature=0.0, disable_retrieval=True))

    async def run() -> tuple[str, str]:
        answering = InferenceCore(settings, core.model, index=None,
                                  memory=MemoryClient(memory_service.target, None, settings.memory_timeout_s))
        try:
            events = [event async for event in answering.chat(query)]
            answer_id = events[0].answer_id
            await answering.submit_feedback(answer_id, "", "ann", "not_helpful", "too vague",
                                            "Use Manage Jenkins > Reload, or `safe-restart`.")
            with pytest.raises(NotFound):
                await answering.submit_feedback(answer_id, "", "bob", "helpful", "")  # not bob's answer
            with pytest.raises(NotFound):
                await answering.submit_feedback("no-such-answer", "", "ann", "helpful", "")
            with pytest.raises(InvalidInput, match="corrected_answer"):
                await answering.submit_feedback(answer_id, "", "ann", "helpful", "", "x" * 32_001)
            return answer_id, answer_text(events)
        finally:
            await answering.close()

    answer_id, text = asyncio.run(run())
    with grpc.insecure_channel(memory_service.target) as channel:
        [rated] = memory_pb2_grpc.MemoryServiceStub(channel).ListRatedAnswers(
            memory_pb2.ListRatedAnswersRequest()).answers
    assert rated.answer.answer_id == answer_id and rated.answer.question == query.question
    assert rated.answer.answer_text == text and rated.answer.model == core.model.name
    assert rated.answer.model_quant == "Q4_1" and rated.answer.corpus_sha256 == ""  # no index loaded
    assert rated.feedback.rating == common_pb2.RATING_NOT_HELPFUL and rated.feedback.comment == "too vague"


def test_the_answer_finishes_before_its_exchange_is_stored_and_close_completes_the_write(core, memory_service):
    """memory_finish_wait_s=0: the finish event never waits for memory, says the exchange is not stored yet, and the
    write still happens: close() waits for it."""
    import grpc

    from jenkins_assistant.v1 import memory_pb2, memory_pb2_grpc

    settings = core.settings.model_copy(update={"memory_target": memory_service.target, "memory_finish_wait_s": 0.0})
    query = ChatQuery(question="How do I restart Jenkins?", session_id="finish-first", owner="ann",
                      options=ChatOptions(max_tokens=6, temperature=0.0, disable_retrieval=True))

    events = collect_with_memory(settings, core.model, query)
    finished = events[-1]
    assert isinstance(finished, Finished)
    assert any("not stored yet" in warning for warning in finished.warnings), finished.warnings
    answer = answer_text(events)
    with grpc.insecure_channel(memory_service.target) as channel:
        history = memory_pb2_grpc.MemoryServiceStub(channel).GetHistory(
            memory_pb2.GetHistoryRequest(session_id="finish-first", owner="ann", k=5))
    assert [(turn.user_text, turn.assistant_text) for turn in history.turns] == [(query.question, answer)]


def test_past_answers_reach_the_prompt_without_their_quotes(core, memory_service):
    """Memory keeps the answer as the user read it, quotes included; the model is shown only its own words, so it
    never learns to write quote blocks of its own."""
    import grpc

    from jenkins_assistant.inference.quoting import Quote, quotes_markdown
    from jenkins_assistant.v1 import memory_pb2, memory_pb2_grpc

    generated = "Run `systemctl restart jenkins` [1]."
    shown = generated + quotes_markdown([Quote(1, "Managing systemd services", "Restarting services",
                                               "```bash\n# systemctl restart jenkins\n```")])
    # Two sessions with the same past exchange: one stored as the user read it (with quotes), one as the model
    # wrote it. The same follow-up in each must give the model the same prompt, seen through chat() only.
    with grpc.insecure_channel(memory_service.target) as channel:
        stub = memory_pb2_grpc.MemoryServiceStub(channel)
        for session, answer in (("quoted", shown), ("generated-only", generated)):
            stub.AppendTurn(memory_pb2.AppendTurnRequest(
                session_id=session, owner="ann",
                turn=memory_pb2.Turn(user_text="How do I restart Jenkins?", assistant_text=answer)))
    settings = core.settings.model_copy(update={"memory_target": memory_service.target})

    def ask(session: str) -> list:
        query = ChatQuery("And stop it?", session, "ann", ChatOptions(max_tokens=8, temperature=0.0))
        return collect_with_memory(settings, core.model, query)

    quoted, plain = ask("quoted"), ask("generated-only")
    assert quoted[0].history_turns_used == plain[0].history_turns_used == 1
    assert quoted[0].standalone_question == plain[0].standalone_question
    # The quote block is about 40 tokens: had it reached the prompt, the counts would differ.
    assert quoted[-1].usage.prompt_tokens == plain[-1].usage.prompt_tokens > 0
    assert answer_text(quoted) == answer_text(plain)

"""The gateway core against the real inference service (SmolLM2 on the tests' sample index)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
from pydantic import SecretStr

from jenkins_assistant.common.errors import InvalidInput, NotFound, Unauthenticated, Unavailable
from jenkins_assistant.gateway.config import GatewaySettings
from jenkins_assistant.gateway.core import ChatEvent, GatewayCore
from jenkins_assistant.gateway.render import answer_html
from tests.conftest import free_port
from tests.inference.fixtures import scrape_metric

T = TypeVar("T")
OWNER = "gateway-tester"


def with_core(settings: GatewaySettings, use: Callable[[GatewayCore], Awaitable[T]]) -> T:
    """Runs `use` with a core made on a fresh event loop (grpc.aio channels belong to one loop)."""

    async def main() -> T:
        core = GatewayCore(settings)
        try:
            return await use(core)
        finally:
            await core.close()

    return asyncio.run(main())


async def collect(core: GatewayCore, question: str, session_id: str) -> list[ChatEvent]:
    return [event async for event in core.chat(question, session_id, OWNER)]


def new_session() -> str:
    return f"gw-{uuid.uuid4().hex[:12]}"


def test_chat_streams_metadata_sources_deltas_then_done_and_takes_feedback(gateway_settings, inference_process):
    session = new_session()
    helpful_before = scrape_metric(inference_process, "jenkins_assistant_inference_feedback_total", 'rating="helpful"')

    async def use(core: GatewayCore) -> list[ChatEvent]:
        events = await collect(core, "How do I archive artifacts in a declarative pipeline?", session)
        await core.submit_feedback(events[0].data["answer_id"], session, OWNER, "helpful", "clear answer")
        return events

    events = with_core(gateway_settings, use)
    names = [event.name for event in events]
    assert names[:2] == ["metadata", "sources"] and names[-1] == "done"
    assert len(names) > 3 and set(names[2:-1]) == {"delta"}
    assert events[0].data["answer_id"] and events[0].data["model"]
    text = "".join(event.data["text"] for event in events if event.name == "delta")
    assert text.strip()
    # The excerpts of the sources that close the answer reach the page marked as quoted, after the generated text.
    quoted = [event.data["quoted"] for event in events if event.name == "delta"]
    assert quoted[-1] and not any(quoted[:-1])
    sources = events[1].data["sources"]
    assert sources and all(source["url"].startswith("https://") and source["title"] for source in sources)
    done = events[-1].data
    assert done["html"] == answer_html(text)
    assert done["finish_reason"] in {"stop", "length"} and done["usage"]["completion_tokens"] > 0
    assert done["warnings"] == []  # the exchange was stored
    # The rating reached the inference service.
    assert scrape_metric(inference_process, "jenkins_assistant_inference_feedback_total",
                         'rating="helpful"') == helpful_before + 1


@pytest.mark.parametrize(
    ("question", "session", "message"),
    [
        ("   ", "", "question is empty"),
        ("x" * 101, "", "the limit is 100"),
        ("What is Jenkins?", "bad session id!", "session_id"),  # checked by the inference service
    ],
)
def test_bad_questions_are_invalid_input(gateway_settings, question, session, message):
    settings = gateway_settings.model_copy(update={"max_question_chars": 100})
    with pytest.raises(InvalidInput, match=message):
        with_core(settings, lambda core: collect(core, question, session))


def test_feedback_for_an_unknown_answer_is_not_found_and_a_bad_rating_is_invalid(gateway_settings):
    with pytest.raises(NotFound):
        with_core(gateway_settings, lambda core: core.submit_feedback("no-such-answer", "s1", OWNER, "helpful", ""))
    with pytest.raises(InvalidInput, match="rating"):
        with_core(gateway_settings, lambda core: core.submit_feedback("a", "s1", OWNER, "great", ""))


def test_model_info_and_readiness_come_from_the_inference_service(gateway_settings):
    async def use(core: GatewayCore):
        return await core.inference_ready(), await core.model_info()

    ready, info = with_core(gateway_settings, use)
    assert ready
    assert info["model"] and info["indexed_documents"] > 0 and info["indexed_chunks"] >= info["indexed_documents"]


def test_a_wrong_token_is_unauthenticated(gateway_settings):
    settings = gateway_settings.model_copy(update={"inference_token": SecretStr("not-the-token")})
    with pytest.raises(Unauthenticated):
        with_core(settings, lambda core: collect(core, "What is Jenkins?", ""))


def test_an_unreachable_inference_service_is_unavailable_and_not_ready():
    settings = GatewaySettings(inference_target=f"127.0.0.1:{free_port()}", call_timeout_s=2)
    assert with_core(settings, lambda core: core.inference_ready()) is False
    with pytest.raises(Unavailable):
        with_core(settings, lambda core: collect(core, "What is Jenkins?", ""))
    with pytest.raises(Unavailable):
        with_core(settings, lambda core: core.model_info())

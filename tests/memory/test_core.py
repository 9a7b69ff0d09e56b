"""The memory core called directly against a real Redis (no gRPC)."""

from __future__ import annotations

import asyncio

import pytest
import redis

from jenkins_assistant.common.errors import InvalidInput, NotFound, Unavailable
from jenkins_assistant.common.records import SourceRef
from jenkins_assistant.memory.config import MemorySettings
from jenkins_assistant.memory.core import MemoryStore, Turn


def run(coro):
    return asyncio.run(coro)


async def _with_store(settings: MemorySettings, body):
    store = MemoryStore(settings)
    try:
        return await body(store)
    finally:
        await store.close()


def test_round_trip_keeps_every_field(redis_url):
    settings = MemorySettings(redis_url=redis_url)
    turn = Turn(
        user_text="How do I restart Jenkins safely?",
        assistant_text="Use `safeRestart` from the CLI:\n```sh\njava -jar jenkins-cli.jar safe-restart\n```",
        sources=[SourceRef(url="https://www.jenkins.io/doc/book/managing/cli/", title="Jenkins CLI", score=0.8)],
        asked_at=1_700_000_000.25,
        answered_at=1_700_000_003.5,
    )

    async def body(store):
        stored, ttl = await store.append_turn("alice", "s-1", turn)
        turns, count = await store.get_history("alice", "s-1")
        return stored, ttl, turns, count

    stored, ttl, turns, count = run(_with_store(settings, body))
    assert (stored, ttl, count) == (1, settings.ttl_s, 1)
    assert turns == [turn]


def test_window_returns_last_k_oldest_first_and_cap_bounds_storage(redis_url):
    settings = MemorySettings(redis_url=redis_url, default_k=5, max_turns=8)

    async def body(store):
        for i in range(12):
            await store.append_turn("bob", "chat", Turn(user_text=f"q{i}", assistant_text=f"a{i}"))
        default_window, stored = await store.get_history("bob", "chat")
        wide, _ = await store.get_history("bob", "chat", k=8)
        return default_window, wide, stored

    default_window, wide, stored = run(_with_store(settings, body))
    assert [t.user_text for t in default_window] == ["q7", "q8", "q9", "q10", "q11"]
    assert [t.user_text for t in wide] == [f"q{i}" for i in range(4, 12)]
    assert stored == 8
    raw = redis.Redis.from_url(redis_url)
    assert raw.llen(MemoryStore(settings).key("bob", "chat")) == 8


@pytest.mark.parametrize(
    ("owner", "session_id", "turn", "message"),
    [
        ("", "s", Turn("q", "a"), "owner"),
        ("x" * 257, "s", Turn("q", "a"), "owner"),
        ("eve\n", "s", Turn("q", "a"), "owner"),
        ("alice", "", Turn("q", "a"), "session_id"),
        ("alice", "has:colon", Turn("q", "a"), "session_id"),
        ("alice", "s" * 129, Turn("q", "a"), "session_id"),
        ("alice", "s", Turn("   ", "a"), "user_text is empty"),
        ("alice", "s", Turn("q" * 32_001, "a"), "user_text has 32001"),
        ("alice", "s", Turn("q", "a" * 32_001), "assistant_text has"),
        ("alice", "s", Turn("q", "a", asked_at=-1), "negative"),
        ("alice", "s", Turn("q", "a", asked_at=10, answered_at=5), "before asked_at"),
        ("alice", "s", Turn("q", "a", answered_at=253_402_300_800), "in the future"),
        ("alice", "s", Turn("q", "a", answered_at=float(2**63 - 1)), "in the future"),
        ("alice", "s", Turn("q", "a", sources=[SourceRef(url="u", passage="p" * 32_001)]), "passage too long"),
        ("alice", "s", Turn("q", "a", sources=[SourceRef(url="")]), "source url"),
        ("alice", "s", Turn("q", "a", sources=[SourceRef(url="u")] * 21), "21 sources"),
    ],
)
def test_bad_input_is_rejected_and_nothing_is_stored(redis_url, owner, session_id, turn, message):
    settings = MemorySettings(redis_url=redis_url)
    with pytest.raises(InvalidInput, match=message):
        run(_with_store(settings, lambda store: store.append_turn(owner, session_id, turn)))
    assert redis.Redis.from_url(redis_url).dbsize() == 0


def test_invalid_k_and_missing_session(redis_url):
    settings = MemorySettings(redis_url=redis_url, max_turns=10)
    with pytest.raises(InvalidInput, match="negative"):
        run(_with_store(settings, lambda s: s.get_history("alice", "s", k=-1)))
    with pytest.raises(InvalidInput, match="exceeds"):
        run(_with_store(settings, lambda s: s.get_history("alice", "s", k=11)))
    with pytest.raises(NotFound):
        run(_with_store(settings, lambda s: s.get_history("alice", "never-written")))
    with pytest.raises(NotFound):
        run(_with_store(settings, lambda s: s.clear("alice", "never-written")))


def test_redis_down_is_unavailable(redis_server, redis_url):
    settings = MemorySettings(redis_url=redis_url, redis_timeout_s=0.5)
    redis_server.stop()
    try:
        with pytest.raises(Unavailable, match="Redis"):
            run(_with_store(settings, lambda s: s.append_turn("alice", "s", Turn("q", "a"))))
    finally:
        redis_server.start()

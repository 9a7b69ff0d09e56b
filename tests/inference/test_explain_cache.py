"""The explanation cache on a real redis-server: entries round-trip with their TTL, keys separate models and
answers without documentation, and a Redis that is down or holds garbage is a miss, never an error."""

from __future__ import annotations

import asyncio
import time

import redis

from jenkins_assistant.common.records import SourceRef
from jenkins_assistant.inference.config import ExplanationCacheSettings
from jenkins_assistant.inference.explain_cache import CachedExplanation, ExplanationCache
from tests.conftest import free_port

FINGERPRINT = "maven-compile-error:0123456789abcdef0123456789abcdef"


def run(coro):
    return asyncio.run(coro)


def entry() -> CachedExplanation:
    source = SourceRef(url="https://www.jenkins.io/doc/book/pipeline/", title="Pipeline", snippet="A pipeline …",
                       score=0.5, citation=1, section="Pipeline", passage="A pipeline is …")
    return CachedExplanation(text="**Summary**: it failed [1].", sources=[source], model="smollm2-135m",
                             completion_tokens=9)


async def put_then_get(settings: ExplanationCacheSettings, key_args=(FINGERPRINT, "smollm2-135m", True)):
    cache = ExplanationCache(settings)
    try:
        key = cache.key(*key_args)
        stored = await cache.put(key, entry())
        return key, stored, await cache.get(key)
    finally:
        await cache.close()


def test_an_entry_round_trips_with_its_ttl(redis_url):
    settings = ExplanationCacheSettings(redis_url=redis_url, ttl_s=3600)
    key, stored, got = run(put_then_get(settings))
    assert stored
    assert got is not None and got.text == entry().text and got.sources == entry().sources
    assert got.model == "smollm2-135m" and got.completion_tokens == 9
    assert abs(got.explained_at - time.time()) < 60
    client = redis.Redis.from_url(redis_url)
    assert 3500 < client.ttl(key) <= 3600
    assert key.startswith("jenkins-assistant:explain:v1:") and key.endswith(FINGERPRINT)


def test_a_new_cache_object_reads_what_another_stored(redis_url):
    """What a restarted (or another) inference process sees: the entry lives in Redis, not in the object."""
    settings = ExplanationCacheSettings(redis_url=redis_url)
    key, _stored, _got = run(put_then_get(settings))

    async def read():
        cache = ExplanationCache(settings)
        try:
            return await cache.get(key)
        finally:
            await cache.close()

    assert run(read()).text == entry().text


def test_keys_separate_models_and_answers_without_documentation():
    cache = ExplanationCache(ExplanationCacheSettings(redis_url="redis://127.0.0.1:1/0"))
    keys = {cache.key(FINGERPRINT, "smollm2-135m", True), cache.key(FINGERPRINT, "qwen2.5-coder-0.5b", True),
            cache.key(FINGERPRINT, "smollm2-135m", False), cache.key("unknown:00", "smollm2-135m", True)}
    assert len(keys) == 4
    run(cache.close())


def test_no_url_is_no_cache():
    assert ExplanationCache.from_settings(ExplanationCacheSettings(redis_url="")) is None


def test_a_redis_that_is_down_is_a_miss_not_an_error():
    settings = ExplanationCacheSettings(redis_url=f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.3)
    started = time.monotonic()
    _key, stored, got = run(put_then_get(settings))
    assert stored is False and got is None
    assert time.monotonic() - started < 5


def test_an_unreadable_entry_is_a_miss(redis_url):
    settings = ExplanationCacheSettings(redis_url=redis_url)

    async def garbage():
        cache = ExplanationCache(settings)
        try:
            key = cache.key(FINGERPRINT, "m", True)
            await cache.redis.set(key, b"\xff not json")
            first = await cache.get(key)
            await cache.redis.set(key, '{"no_text": 1}')
            return first, await cache.get(key)
        finally:
            await cache.close()

    assert run(garbage()) == (None, None)

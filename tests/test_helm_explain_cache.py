"""The chart's explanation cache: inference gets memory's Redis (URL, password, CA) as BUILD_LOG_CACHE_*, settings
the service accepts; turned off, nothing of it is rendered."""

from __future__ import annotations

from jenkins_assistant.inference.config import ExplanationCacheSettings
from tests.test_helm_chart import FULLNAME, VARIANTS, by_kind, container_env, render


def test_inference_caches_explanations_in_memorys_redis_by_default():
    docs = render("--set", "inference.explanationCache.ttlSeconds=86400")
    env = container_env(docs, "inference")
    assert env["BUILD_LOG_CACHE_REDIS_URL"]["value"] == container_env(docs, "memory")["REDIS_URL"]["value"]
    settings = ExplanationCacheSettings(redis_url=env["BUILD_LOG_CACHE_REDIS_URL"]["value"],
                                        ttl_s=env["BUILD_LOG_CACHE_TTL_S"]["value"])
    assert settings.ttl_s == 86400 and settings.redis_url.startswith("redis://")


def test_the_cache_follows_an_external_tls_redis_with_its_password_and_ca():
    docs = render(*VARIANTS["gpu engine, autoscaled, external TLS redis"])
    env = container_env(docs, "inference")
    spec = by_kind(docs, "Deployment")[f"{FULLNAME}-inference"]["spec"]["template"]["spec"]
    mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "redis-ca")
    assert env["BUILD_LOG_CACHE_REDIS_URL"]["value"].endswith(f"?ssl_ca_certs={mount['mountPath']}/ca.crt")
    assert next(v for v in spec["volumes"] if v["name"] == "redis-ca")["secret"]["secretName"] == "redis-ca"
    assert env["BUILD_LOG_CACHE_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "redis-auth"


def test_a_disabled_cache_renders_nothing():
    docs = render("--set", "inference.explanationCache.enabled=false")
    assert not [name for name in container_env(docs, "inference") if name.startswith("BUILD_LOG_CACHE_")]
    spec = by_kind(docs, "Deployment")[f"{FULLNAME}-inference"]["spec"]["template"]["spec"]
    assert all(v["name"] != "redis-ca" for v in spec["volumes"])

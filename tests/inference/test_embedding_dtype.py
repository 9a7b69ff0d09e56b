"""The embedder's precision (INFERENCE_EMBEDDING_DTYPE): auto's choice, bfloat16 vectors against float32's with the
packaged all-MiniLM-L6-v2, the manifest's record, and an index of one dtype served and rebuilt with the other."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from jenkins_assistant.common.records import CorpusDocument
from jenkins_assistant.inference.config import EmbeddingDtype, RetrievalSettings
from jenkins_assistant.inference.retrieval.builder import build_index
from jenkins_assistant.inference.retrieval.embeddings import load_embedder, resolve_embedding_dtype
from jenkins_assistant.inference.retrieval.index import MANIFEST, RetrievalIndex

PASSAGES = [
    "How do I restart Jenkins safely?",
    "# Using agents\n\nAgents run builds on other machines over SSH or inbound TCP. " * 4,
    ("pipeline {\n  agent { docker { image 'maven:3-eclipse-temurin-17' } }\n  stages { stage('Build') "
    "{ steps { sh 'mvn -B package' } } }\n}"),
    "Store passwords, SSH keys and tokens for jobs to use with the Credentials plugin.",
]


def test_auto_is_bfloat16_only_on_a_cpu_with_native_bfloat16():
    assert resolve_embedding_dtype("auto", native_bf16=True) == "bfloat16"
    assert resolve_embedding_dtype(EmbeddingDtype.AUTO, native_bf16=False) == "float32"
    for native in (True, False):
        assert resolve_embedding_dtype("float32", native_bf16=native) == "float32"
        assert resolve_embedding_dtype("bfloat16", native_bf16=native) == "bfloat16"
    assert resolve_embedding_dtype("auto") in {"float32", "bfloat16"}  # this machine's answer
    with pytest.raises(ValueError):
        resolve_embedding_dtype("float16")


def test_the_setting_comes_from_the_environment(monkeypatch):
    assert RetrievalSettings().embedding_dtype is EmbeddingDtype.AUTO
    monkeypatch.setenv("INFERENCE_EMBEDDING_DTYPE", "float32")
    assert RetrievalSettings().embedding_dtype is EmbeddingDtype.FLOAT32


@pytest.fixture(scope="module")
def embedders():
    return {dtype: load_embedder(RetrievalSettings(embedding_threads=1, embedding_dtype=dtype))
            for dtype in ("float32", "bfloat16")}


def test_bfloat16_vectors_agree_with_float32(embedders):
    fp32 = embedders["float32"].embed(PASSAGES)
    bf16 = embedders["bfloat16"].embed(PASSAGES)
    assert embedders["bfloat16"].dtype == "bfloat16" and embedders["float32"].dtype == "float32"
    assert bf16.dtype == np.float32 and bf16.shape == fp32.shape == (len(PASSAGES), 384)
    np.testing.assert_allclose(np.linalg.norm(bf16, axis=1), 1, atol=1e-5)
    cosine = (fp32 * bf16).sum(axis=1)
    assert cosine.min() > 0.999, cosine


def _docs() -> list[CorpusDocument]:
    return [CorpusDocument(id=f"docs:{i}", url=f"https://www.jenkins.io/doc/book/{i}/", title=f"Page {i}",
                           source="jenkins_docs", license="CC-BY-SA-4.0", text=f"# Page {i}\n\n{text}")
            for i, text in enumerate(PASSAGES)]


def test_manifest_records_the_dtype_and_the_other_dtype_serves_and_reuses_the_index(tmp_path: Path, embedders):
    settings = RetrievalSettings(embedding_threads=1, hybrid=False)
    out = tmp_path / "index"
    build_index(_docs(), out, settings, embedders["bfloat16"])
    assert json.loads((out / MANIFEST).read_text())["embedding_dtype"] == "bfloat16"

    # float32 queries on the bfloat16 index: accepted, same top hit
    index = RetrievalIndex(out, embedders["float32"], faiss_threads=1, hybrid=False)
    assert index.search("How do build agents connect?", 1)[0].chunk.url.endswith("/1/")

    # a float32 rebuild of a changed corpus re-embeds only the changed document, and records its own dtype
    docs = _docs()
    docs[0] = dataclasses.replace(docs[0], text=docs[0].text + " Use safeRestart.", content_sha256="")
    report = build_index(docs, out, settings, embedders["float32"])
    assert report.embedded_chunks == 1 and report.reused_chunks == report.chunks - 1
    assert json.loads((out / MANIFEST).read_text())["embedding_dtype"] == "float32"


def test_token_counts_are_truncated_like_the_embedding(embedders):
    counts = embedders["bfloat16"].token_counts(["Jenkins", "word " * 1000])
    assert counts == [3, 256]  # [CLS] jenkins [SEP]; truncated to MAX_SEQ_TOKENS


def test_batches_are_grouped_by_token_count_when_the_embedder_counts_tokens(tmp_path: Path):
    class Counting:
        name, backend, dim, dtype = "counting/model", "sentence-transformers", 4, "float32"

        def __init__(self) -> None:
            self.batches: list[list[str]] = []

        def token_counts(self, texts: list[str]) -> list[int]:
            return [text.count("x") for text in texts]  # unlike the character count

        def embed(self, texts: list[str]) -> np.ndarray:
            self.batches.append(texts)
            return np.tile(np.array([[1, 0, 0, 0]], dtype=np.float32), (len(texts), 1))

    texts = ["x x x", "long prose without the letter", "x x x x x x", "short", "x x x x"]
    docs = [CorpusDocument(id=f"d{i}", url=f"https://example.org/{i}", title="T", source="jenkins_docs",
                           license="MIT", text=text) for i, text in enumerate(texts)]
    embedder = Counting()
    build_index(docs, tmp_path / "index", RetrievalSettings(embedding_batch=2, hybrid=False), embedder)
    counts = [[text.count("x") for text in batch] for batch in embedder.batches]
    assert counts == sorted(counts, reverse=True) and [c for batch in counts for c in batch] == [6, 4, 3, 0, 0]

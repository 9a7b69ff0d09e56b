"""`jenkins-assistant-index`: build, inspect and query the retrieval index.

    jenkins-assistant-index build --corpus var/corpus/documents.jsonl --out var/index
    jenkins-assistant-index build --shared-data ../shared/data --out var/index   # every shared data source
    jenkins-assistant-index build --shared-data ../shared/data --source jenkins-docs --source jenkins-blog
    jenkins-assistant-index search "How do I restart Jenkins safely?" --index var/index
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Annotated

import typer

from jenkins_assistant.common.logging_setup import configure_logging

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n")[0])

# The distractors of a sample index (sample_shared_data_documents): about 24k characters (some 40 chunks) per source
# folder, from documents of at most 6k characters.
DISTRACTOR_CHARS = 24_000
MAX_DISTRACTOR_CHARS = 6_000


def shared_data_documents(shared_data: Path, sources: Sequence[str] | None = None) -> Iterator:
    """The documents of the shared data folders (default: all of them; an absent folder is skipped with a log
    line): jenkins.io docs and blog, plugin docs (jenkins-plugins, jenkins-plugins-more, the archived wiki), the
    Pipeline Steps Reference, the update center's plugin records and security warnings, Jenkins core field help."""
    from jenkins_assistant.scraper.shared_sources import SHARED_FOLDERS, iter_shared_documents

    return iter_shared_documents(shared_data, sources or SHARED_FOLDERS)


def sample_shared_data_documents(
    shared_data: Path,
    keep_urls: Iterable[str],
    distractor_chars: int = DISTRACTOR_CHARS,
    max_distractor_chars: int = MAX_DISTRACTOR_CHARS,
    sources: Sequence[str] | None = None,
) -> list:
    """A fixed sample of the shared data for a small index (the tests'): every document whose URL is in keep_urls
    (the pages labelled as answers), plus, per source folder, distractors up to distractor_chars of text, taken in
    the order of sha256(document id) among the documents of at most max_distractor_chars. Deterministic, no
    randomness: the same data gives the same sample (a document added to a folder can only displace distractors
    after it in that order)."""
    from jenkins_assistant.scraper.shared_sources import SHARED_FOLDERS, iter_shared_source

    wanted = set(keep_urls)
    sample = []
    for folder in sources or SHARED_FOLDERS:
        documents = list(iter_shared_source(shared_data, folder))
        sample.extend(doc for doc in documents if doc.url in wanted)
        others = [doc for doc in documents if doc.url not in wanted and len(doc.text) <= max_distractor_chars]
        others.sort(key=lambda doc: hashlib.sha256(doc.id.encode()).hexdigest())
        budget = distractor_chars
        for doc in others:
            if len(doc.text) > budget:
                continue
            sample.append(doc)
            budget -= len(doc.text)
    return sample


def corpus_documents(corpus: list[Path], shared_data: Path | None, sources: Sequence[str] | None = None) -> Iterator:
    from jenkins_assistant.common.records import read_documents_jsonl

    for path in corpus:
        yield from read_documents_jsonl(path)
    if shared_data is not None:
        yield from shared_data_documents(shared_data, sources)


@app.command()
def build(
    out: Annotated[Path, typer.Option(envvar="INFERENCE_INDEX_DIR",
                                      help="Index directory (rebuilt incrementally when it exists).")] = Path("var/index"),
    corpus: Annotated[list[Path], typer.Option(envvar="INFERENCE_CORPUS_PATH",
                                               help="Corpus JSONL (one Document per line); repeatable.")] = [],  # noqa: B006
    shared_data: Annotated[Path | None, typer.Option(help="Also index the Jenkins material of this shared data folder "
                                                          "(docs, blog, plugin docs, steps reference, update center, "
                                                          "core help, plugin wiki).")] = None,
    source: Annotated[list[str], typer.Option(help="Only these folders of --shared-data (repeatable; default all: "
                                                   "jenkins-docs, jenkins-blog, jenkins-plugins, jenkins-plugins-more, "
                                                   "jenkins-pipeline-steps, jenkins-update-center, jenkins-core-text, "
                                                   "jenkins-plugins-wiki).")] = [],  # noqa: B006
    hybrid: Annotated[bool, typer.Option(help="Also build the BM25 keyword index.")] = True,
    embedding_backend: Annotated[str, typer.Option(envvar="INFERENCE_EMBEDDING_BACKEND",
                                                   help="sentence-transformers or llama-cpp.")] = "sentence-transformers",
    embedding_model: Annotated[str, typer.Option(envvar="INFERENCE_EMBEDDING_MODEL",
                                                 help="Model directory or GGUF; empty = packaged MiniLM.")] = "",
    threads: Annotated[int, typer.Option(envvar="INFERENCE_INDEX_THREADS", help="Embedding threads.")] = 2,
    chunk_chars: Annotated[int | None, typer.Option(help="Default: RetrievalSettings' (what the tests and the "
                                                         "server's settings assume).")] = None,
    chunk_overlap_chars: Annotated[int | None, typer.Option(help="Default: RetrievalSettings'.")] = None,
) -> None:
    configure_logging()
    from jenkins_assistant.inference.config import RetrievalSettings
    from jenkins_assistant.inference.retrieval.builder import build_index
    from jenkins_assistant.inference.retrieval.embeddings import load_embedder
    from jenkins_assistant.scraper.shared_sources import SHARED_FOLDERS

    if not corpus and shared_data is None:
        raise typer.BadParameter("give --corpus and/or --shared-data")
    unknown = sorted(set(source) - set(SHARED_FOLDERS))
    if unknown:
        raise typer.BadParameter(f"unknown --source {unknown}; expected some of {list(SHARED_FOLDERS)}")
    chunking = {key: value for key, value in (("chunk_chars", chunk_chars), ("chunk_overlap_chars", chunk_overlap_chars))
                if value is not None}
    settings = RetrievalSettings(
        index_dir=str(out), hybrid=hybrid, embedding_backend=embedding_backend, embedding_model=embedding_model,
        embedding_threads=threads, faiss_threads=threads, **chunking,
    )
    report = build_index(corpus_documents(corpus, shared_data, source or None), out, settings, load_embedder(settings),
                         progress=True)
    typer.echo(json.dumps(report.__dict__, indent=1))


@app.command()
def info(index: Annotated[Path, typer.Option(envvar="INFERENCE_INDEX_DIR", help="Index directory.")] = Path("var/index")) -> None:
    from jenkins_assistant.inference.retrieval.index import read_manifest

    manifest = read_manifest(index)
    if manifest is None:
        raise typer.Exit(f"no index in {index}")
    manifest.pop("document_fingerprints", None)
    typer.echo(json.dumps(manifest, indent=1, sort_keys=True))


@app.command()
def search(
    query: str,
    index: Annotated[Path, typer.Option(envvar="INFERENCE_INDEX_DIR", help="Index directory.")] = Path("var/index"),
    k: Annotated[int, typer.Option(min=1, max=50)] = 5,
) -> None:
    configure_logging("WARNING")
    from jenkins_assistant.inference.config import RetrievalSettings
    from jenkins_assistant.inference.retrieval.embeddings import load_embedder
    from jenkins_assistant.inference.retrieval.index import RetrievalIndex, read_manifest

    manifest = read_manifest(index) or {}
    settings = RetrievalSettings(index_dir=str(index))
    hybrid = settings.hybrid and bool(manifest.get("hybrid"))
    retrieval = RetrievalIndex.from_settings(settings, load_embedder(settings), hybrid, index)
    hits, elapsed_ms = retrieval.timed_search(query, k)
    for hit in hits:
        named = f"  (served for `{hit.named}`)" if hit.named else ""
        typer.echo(f"{hit.score:.4f}  {hit.chunk.title} > {hit.chunk.section}{named}\n        {hit.chunk.url}")
    typer.echo(f"({elapsed_ms:.1f} ms)")


def main() -> None:
    app()


if __name__ == "__main__":
    main()

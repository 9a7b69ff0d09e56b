"""`jenkins-assistant-index`: build, inspect and query the retrieval index.

    jenkins-assistant-index build --corpus var/corpus/documents.jsonl --out var/index
    jenkins-assistant-index build --shared-data ../shared/data --out var/index   # docs + blog + plugin docs
    jenkins-assistant-index search "How do I restart Jenkins safely?" --index var/index
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from jenkins_assistant.common.logging_setup import configure_logging

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n")[0])


def shared_data_documents(shared_data: Path) -> Iterator:
    """Jenkins docs, blog and plugin docs from the shared data folders, cleaned by the scraper's converter."""
    from jenkins_assistant.scraper.local_sources import iter_local_documents

    return iter_local_documents(shared_data / "jenkins-docs", shared_data / "jenkins-blog", shared_data / "jenkins-plugins")


def corpus_documents(corpus: list[Path], shared_data: Path | None) -> Iterator:
    from jenkins_assistant.common.records import read_documents_jsonl

    for path in corpus:
        yield from read_documents_jsonl(path)
    if shared_data is not None:
        yield from shared_data_documents(shared_data)


@app.command()
def build(
    out: Annotated[Path, typer.Option(envvar="INFERENCE_INDEX_DIR",
                                      help="Index directory (rebuilt incrementally when it exists).")] = Path("var/index"),
    corpus: Annotated[list[Path], typer.Option(envvar="INFERENCE_CORPUS_PATH",
                                               help="Corpus JSONL (one Document per line); repeatable.")] = [],  # noqa: B006
    shared_data: Annotated[Path | None, typer.Option(help="Also index jenkins-docs, jenkins-blog and jenkins-plugins "
                                                          "from this shared data folder.")] = None,
    hybrid: Annotated[bool, typer.Option(help="Also build the BM25 keyword index.")] = True,
    embedding_backend: Annotated[str, typer.Option(envvar="INFERENCE_EMBEDDING_BACKEND",
                                                   help="sentence-transformers or llama-cpp.")] = "sentence-transformers",
    embedding_model: Annotated[str, typer.Option(envvar="INFERENCE_EMBEDDING_MODEL",
                                                 help="Model directory or GGUF; empty = packaged MiniLM.")] = "",
    threads: Annotated[int, typer.Option(envvar="INFERENCE_INDEX_THREADS", help="Embedding threads.")] = 2,
    chunk_chars: Annotated[int, typer.Option()] = 1000,
    chunk_overlap_chars: Annotated[int, typer.Option()] = 150,
) -> None:
    configure_logging()
    from jenkins_assistant.inference.config import RetrievalSettings
    from jenkins_assistant.inference.retrieval.builder import build_index
    from jenkins_assistant.inference.retrieval.embeddings import load_embedder

    if not corpus and shared_data is None:
        raise typer.BadParameter("give --corpus and/or --shared-data")
    settings = RetrievalSettings(
        index_dir=str(out), hybrid=hybrid, embedding_backend=embedding_backend, embedding_model=embedding_model,
        embedding_threads=threads, faiss_threads=threads, chunk_chars=chunk_chars,
        chunk_overlap_chars=chunk_overlap_chars,
    )
    report = build_index(corpus_documents(corpus, shared_data), out, settings, load_embedder(settings), progress=True)
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
    retrieval = RetrievalIndex(index, load_embedder(settings), settings.faiss_threads, hybrid,
                               settings.keyword_weight, settings.rrf_k)
    hits, elapsed_ms = retrieval.timed_search(query, k)
    for hit in hits:
        typer.echo(f"{hit.score:.4f}  {hit.chunk.title} > {hit.chunk.section}\n        {hit.chunk.url}")
    typer.echo(f"({elapsed_ms:.1f} ms)")


def main() -> None:
    app()


if __name__ == "__main__":
    main()

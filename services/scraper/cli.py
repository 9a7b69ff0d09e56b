"""`jenkins-assistant-scraper`: batch scrapes for the Kubernetes CronJob, and the corpus export.

    jenkins-assistant-scraper corpus --docs-root ../shared/data/jenkins-docs \
        --blog-root ../shared/data/jenkins-blog --plugins-root ../shared/data/jenkins-plugins \
        --out corpus.jsonl
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from jenkins_assistant.common.logging_setup import configure_logging

app = typer.Typer(add_completion=False, help="Build Jenkins knowledge datasets (corpus JSONL + Q&A CSV).")
log = logging.getLogger(__name__)


@app.callback()
def _commands() -> None:
    """Subcommands: `run` (a full scrape into a versioned dataset) and `corpus` (local sources only)."""


@app.command()
def corpus(
    out: Annotated[Path, typer.Option(help="Documents JSONL to write (atomically).")],
    docs_root: Annotated[Path | None, typer.Option(help="docs.jenkins.io checkout.")] = None,
    blog_root: Annotated[Path | None, typer.Option(help="jenkins.io blog folder (content/blog).")] = None,
    plugins_root: Annotated[Path | None, typer.Option(help="Plugin docs folder with MANIFEST.tsv.")] = None,
    log_level: Annotated[str, typer.Option(help="Logging level.")] = "WARNING",
) -> None:
    """Convert the local docs, blog and plugin docs into the document corpus (one Document per line)."""
    configure_logging(log_level)
    from jenkins_assistant.common.records import write_documents_jsonl
    from jenkins_assistant.scraper.local_sources import iter_local_documents
    from tqdm import tqdm

    if docs_root is None and blog_root is None and plugins_root is None:
        raise typer.BadParameter("give at least one of --docs-root, --blog-root, --plugins-root")
    documents = tqdm(iter_local_documents(docs_root, blog_root, plugins_root), desc="documents", unit="doc")
    count = write_documents_jsonl(out, documents)
    typer.echo(f"wrote {count} documents to {out}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()

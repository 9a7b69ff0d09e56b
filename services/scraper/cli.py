"""`jenkins-assistant-scraper`: batch scrapes for the Kubernetes CronJob, and the corpus export.

    # A full run into a new dataset version (settings also come from SCRAPER_* variables):
    jenkins-assistant-scraper run --output-dir data/datasets --state-dir data/scraper-state \
        --docs-root ../shared/data/jenkins-docs --blog-root ../shared/data/jenkins-blog \
        --plugins-root ../shared/data/jenkins-plugins --source jenkins_docs --source jenkins_blog \
        --source plugin_docs

    # Only the local sources, as one documents JSONL:
    jenkins-assistant-scraper corpus --docs-root ../shared/data/jenkins-docs \
        --blog-root ../shared/data/jenkins-blog --plugins-root ../shared/data/jenkins-plugins \
        --out corpus.jsonl
"""

from __future__ import annotations

import json
import logging
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from jenkins_assistant.common.logging_setup import configure_logging

app = typer.Typer(add_completion=False, help="Build Jenkins knowledge datasets (corpus JSONL + Q&A CSV).")
log = logging.getLogger(__name__)


@app.callback()
def _commands() -> None:
    """Subcommands: `run` (a full scrape into a versioned dataset) and `corpus` (local sources only)."""


class Source(str, Enum):
    jenkins_docs = "jenkins_docs"
    jenkins_blog = "jenkins_blog"
    plugin_docs = "plugin_docs"
    discourse = "discourse"
    stackexchange = "stackexchange"
    qa_file = "qa_file"


class TqdmProgress:
    """One tqdm bar per source, created when the source reports first."""

    def __init__(self) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self._bars: dict = {}

    def update(self, source: str, done: int, total: int, kept: int, dropped: int) -> None:
        bar = self._bars.get(source)
        if bar is None:
            bar = self._bars[source] = self._tqdm(desc=source, unit="item", total=total or None, leave=True)
        if total and bar.total != total:
            bar.total = total
        bar.set_postfix(kept=kept, dropped=dropped, refresh=False)
        bar.update(max(0, done - bar.n))

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()


@app.command()
def run(
    source: Annotated[list[Source] | None, typer.Option(help="Source to ingest (repeat); default: all configured.")]
    = None,
    output_dir: Annotated[Path | None, typer.Option(help="Dataset folder [SCRAPER_OUTPUT_DIR].")] = None,
    state_dir: Annotated[Path | None, typer.Option(help="Resumable state folder [SCRAPER_STATE_DIR].")] = None,
    docs_root: Annotated[Path | None, typer.Option(help="docs.jenkins.io checkout [SCRAPER_DOCS_ROOT].")] = None,
    blog_root: Annotated[Path | None, typer.Option(help="Blog folder [SCRAPER_BLOG_ROOT].")] = None,
    plugins_root: Annotated[Path | None, typer.Option(help="Plugin docs folder [SCRAPER_PLUGINS_ROOT].")] = None,
    qa_csv: Annotated[list[Path] | None, typer.Option(help="Q&A CSV to import (repeat) [SCRAPER_QA_CSV_FILES].")]
    = None,
    text_only: Annotated[bool | None, typer.Option("--text-only/--keep-code",
                                                   help="Drop Q&A rows with code [SCRAPER_TEXT_ONLY].")] = None,
    force: Annotated[bool, typer.Option(help="Ignore cached state and conditional requests; always write.")] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    log_level: Annotated[str, typer.Option(help="Logging level.")] = "INFO",
) -> None:
    """Scrape the sources into a new dataset version (nothing is written when nothing changed)."""
    configure_logging(log_level)
    from jenkins_assistant.common.errors import ServiceError
    from jenkins_assistant.scraper.config import ScrapeSettings
    from jenkins_assistant.scraper.core import run_scrape

    overrides = {
        "output_dir": output_dir, "state_dir": state_dir, "docs_root": docs_root, "blog_root": blog_root,
        "plugins_root": plugins_root, "qa_csv_files": qa_csv or None,
    }
    settings = ScrapeSettings(**{key: value for key, value in overrides.items() if value is not None})
    sink = TqdmProgress() if progress else None
    try:
        result = run_scrape(settings, sources=[s.value for s in source or []], text_only=text_only, force=force,
                            progress=sink)
    except ServiceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    finally:
        if sink is not None:
            sink.close()
    typer.echo(json.dumps(result.report, indent=2, sort_keys=True))
    typer.echo(f"dataset {result.dataset.version} at {result.dataset.path} "
               f"({'written' if result.written else 'unchanged: nothing written'})")


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
    from tqdm import tqdm

    from jenkins_assistant.common.records import write_documents_jsonl
    from jenkins_assistant.scraper.local_sources import iter_local_documents

    if docs_root is None and blog_root is None and plugins_root is None:
        raise typer.BadParameter("give at least one of --docs-root, --blog-root, --plugins-root")
    documents = tqdm(iter_local_documents(docs_root, blog_root, plugins_root), desc="documents", unit="doc")
    count = write_documents_jsonl(out, documents)
    typer.echo(f"wrote {count} documents to {out}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()

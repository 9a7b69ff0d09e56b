"""Versioned, atomic dataset output from a real local run (plugin docs + the seed's Q&A file)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pandas as pd
import pytest

from jenkins_assistant.common.errors import InvalidInput
from jenkins_assistant.common.records import read_documents_jsonl
from jenkins_assistant.scraper.config import ScrapeSettings
from jenkins_assistant.scraper.core import run_scrape
from jenkins_assistant.scraper.dataset import LATEST, list_datasets, remove_stale_staging
from jenkins_assistant.scraper.qa import QA_COLUMNS
from tests.scraper.test_remote_sources import tree_snapshot

# No production remote: every source of these tests is a local folder.
OFFLINE = {"discourse_url": "", "stackexchange_url": "", "docs_git_url": "", "blog_git_url": "",
           "plugins_update_center_url": ""}
SEED_QA = "qa/nouralmulhem-Enhancing-LLM-with-Jenkins-Knowledge/jenkins_docs_qa_pairs.csv"


@pytest.fixture
def local_settings(tmp_path: Path, shared_data: Path) -> ScrapeSettings:
    return ScrapeSettings(
        output_dir=tmp_path / "datasets",
        state_dir=tmp_path / "state",
        plugins_root=shared_data / "jenkins-plugins",
        qa_csv_files=[shared_data / SEED_QA],
        qa_csv_license="MIT",
        **OFFLINE,
    )


def test_dataset_files_report_and_latest_link(local_settings):
    result = run_scrape(local_settings)
    path = result.dataset.path
    assert (local_settings.output_dir / LATEST).resolve() == path.resolve()
    assert sorted(p.name for p in path.iterdir()) == [
        "documents.jsonl", "qa.csv", "qa_train.csv", "qa_validation.csv", "report.json"]
    documents = list(read_documents_jsonl(path / "documents.jsonl"))
    assert len(documents) == 108 and all(doc.source == "plugin_docs" for doc in documents)
    qa = pd.read_csv(path / "qa.csv", keep_default_na=False)
    train = pd.read_csv(path / "qa_train.csv", keep_default_na=False)
    validation = pd.read_csv(path / "qa_validation.csv", keep_default_na=False)
    assert list(qa.columns) == QA_COLUMNS == list(train.columns) == list(validation.columns)
    assert len(train) + len(validation) == len(qa) and 0 < len(validation) < len(qa) / 4
    assert not set(train["question"]) & set(validation["question"])
    report = json.loads((path / "report.json").read_text())
    assert report["counts"]["documents"] == 108 and report["counts"]["qa_pairs"] == len(qa)
    assert report["sources"]["qa_file"]["qa_rows_in"] == 765
    assert report["dropped"]["duplicate_exact"] == report["sources"]["qa_file"]["dropped"]["duplicate_exact"] > 0
    assert set(report["dropped"]) == {"empty", "too_long", "non_english", "contains_code", "duplicate_exact",
                                      "duplicate_near"}
    assert report["duration_s"] > 0
    assert report["files"]["qa.csv"] == hashlib.sha256((path / "qa.csv").read_bytes()).hexdigest()
    assert result.dataset.qa_csv_sha256 == report["files"]["qa.csv"]


def test_unchanged_rerun_writes_nothing_and_a_change_makes_a_new_version(local_settings, tmp_path, shared_data):
    first = run_scrape(local_settings)
    before = tree_snapshot(local_settings.output_dir, local_settings.state_dir)
    time.sleep(0.01)
    second = run_scrape(local_settings)
    assert not second.written and second.dataset.version == first.dataset.version
    assert tree_snapshot(local_settings.output_dir, local_settings.state_dir) == before

    # Text-only mode changes the Q&A set: a second version, newest first, the first one untouched.
    third = run_scrape(local_settings, text_only=True)
    assert third.written and third.report["dropped"]["contains_code"] > 0
    versions = [info.version for info in list_datasets(local_settings.output_dir)]
    assert versions == [third.dataset.version, first.dataset.version]
    assert (first.dataset.path / "qa.csv").is_file()


def test_edited_local_file_invalidates_the_cache(tmp_path, shared_data):
    plugins = tmp_path / "plugins"
    (plugins / "git").mkdir(parents=True)
    manifest = (shared_data / "jenkins-plugins" / "MANIFEST.tsv").read_text().splitlines()
    (plugins / "MANIFEST.tsv").write_text("\n".join([manifest[0], *[l for l in manifest if l.startswith("git\t")]]))
    readme = plugins / "git" / "README.adoc"
    readme.write_text((shared_data / "jenkins-plugins" / "git" / "README.adoc").read_text())
    settings = ScrapeSettings(output_dir=tmp_path / "out", state_dir=tmp_path / "state", plugins_root=plugins,
                              **OFFLINE)
    first = run_scrape(settings)
    readme.write_text(readme.read_text() + "\n\n== Added section\n\nNew text about sparse checkout.\n")
    second = run_scrape(settings)
    assert second.written and second.dataset.version != first.dataset.version
    [doc] = read_documents_jsonl(second.dataset.documents_path)
    assert "## Added section\n\nNew text about sparse checkout." in doc.text


def test_leftover_staging_folder_is_never_listed_and_is_cleaned_when_old(local_settings):
    result = run_scrape(local_settings)
    staging = local_settings.output_dir / ".20990101T000000Z-deadbeef.abc"
    staging.mkdir()
    (staging / "documents.jsonl").write_text('{"id": "half"')  # what a killed writer leaves
    assert [info.version for info in list_datasets(local_settings.output_dir)] == [result.dataset.version]
    assert remove_stale_staging(local_settings.output_dir) == 0  # young: may belong to a running job
    old = time.time() - 7200
    os.utime(staging, (old, old))
    assert remove_stale_staging(local_settings.output_dir) == 1 and not staging.exists()


def test_unconfigured_or_unknown_sources_are_rejected(local_settings):
    with pytest.raises(InvalidInput, match="not configured"):
        run_scrape(local_settings, sources=["discourse"])
    with pytest.raises(InvalidInput, match="unknown source"):
        run_scrape(local_settings, sources=["wiki"])

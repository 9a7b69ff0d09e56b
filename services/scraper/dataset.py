"""Versioned dataset folders, written atomically; an unchanged dataset is not written again.

Layout under the output folder:

    <version>/documents.jsonl      one jenkins_assistant.v1.Document per line (protobuf JSON)
    <version>/qa.csv               question, answer, source, url, license, score, created_at, tags
    <version>/qa_train.csv         the deterministic train split (same columns)
    <version>/qa_validation.csv    the validation split
    <version>/report.json          counts per source, drops per reason, duration, sha256 of each file
    latest -> <version>            symlink, swapped atomically

The version is `<UTC timestamp>-<content hash>`. Everything is first written into a hidden temp
folder beside the versions and renamed into place in one step, so a killed run leaves either a
complete version or none. When the content hash equals the latest version's, nothing is written.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from jenkins_assistant.scraper.qa import QA_COLUMNS, QARow

log = logging.getLogger(__name__)

DOCUMENTS_FILE = "documents.jsonl"
QA_FILE = "qa.csv"
TRAIN_FILE = "qa_train.csv"
VALIDATION_FILE = "qa_validation.csv"
REPORT_FILE = "report.json"
LATEST = "latest"


@dataclass
class DatasetInfo:
    version: str
    path: Path
    created_at: str
    documents: int
    qa_pairs: int
    qa_csv_sha256: str
    content_sha256: str

    @property
    def documents_path(self) -> Path:
        return self.path / DOCUMENTS_FILE

    @property
    def qa_csv_path(self) -> Path:
        return self.path / QA_FILE


@dataclass
class WriteResult:
    dataset: DatasetInfo
    written: bool  # False: identical to the latest version, nothing was written


def qa_csv_text(rows: list[QARow]) -> str:
    frame = pd.DataFrame([row.csv_record() for row in rows], columns=QA_COLUMNS)
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_dataset(path: Path) -> DatasetInfo | None:
    report_path = Path(path) / REPORT_FILE
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return DatasetInfo(
        version=report["version"],
        path=Path(path),
        created_at=report["created_at"],
        documents=int(report["counts"]["documents"]),
        qa_pairs=int(report["counts"]["qa_pairs"]),
        qa_csv_sha256=report["files"][QA_FILE],
        content_sha256=report["content_sha256"],
    )


def list_datasets(output_dir: Path) -> list[DatasetInfo]:
    """Complete versions (with a readable report), newest first."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = []
    for child in output_dir.iterdir():
        if child.name.startswith(".") or child.name == LATEST or not child.is_dir():
            continue
        info = read_dataset(child)
        if info is not None:
            found.append(info)
    return sorted(found, key=lambda info: (info.created_at, info.version), reverse=True)


def latest_dataset(output_dir: Path) -> DatasetInfo | None:
    link = Path(output_dir) / LATEST
    if link.exists():
        info = read_dataset(link.resolve())
        if info is not None:
            return info
    datasets = list_datasets(output_dir)
    return datasets[0] if datasets else None


def _write_file(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())


def write_dataset(
    output_dir: Path,
    document_lines: list[str],
    qa_rows: list[QARow],
    train_rows: list[QARow],
    validation_rows: list[QARow],
    report: dict,
    *,
    force: bool = False,
) -> WriteResult:
    """Write a new version unless its content equals the latest one (then write nothing)."""
    output_dir = Path(output_dir)
    documents_text = "".join(line + "\n" for line in document_lines)
    files = {
        DOCUMENTS_FILE: documents_text,
        QA_FILE: qa_csv_text(qa_rows),
        TRAIN_FILE: qa_csv_text(train_rows),
        VALIDATION_FILE: qa_csv_text(validation_rows),
    }
    hashes = {name: _sha256(text) for name, text in files.items()}
    content_sha256 = _sha256("".join(f"{name}:{digest}\n" for name, digest in sorted(hashes.items())))
    previous = latest_dataset(output_dir)
    if previous is not None and previous.content_sha256 == content_sha256 and not force:
        log.info("dataset unchanged (content %s = version %s): nothing written", content_sha256[:12],
                 previous.version)
        return WriteResult(previous, written=False)

    now = datetime.now(UTC)
    created_at = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    version = f"{now.strftime('%Y%m%dT%H%M%SZ')}-{content_sha256[:12]}"
    suffix = 1
    while (output_dir / version).exists():  # a forced re-run within the same second
        suffix += 1
        version = f"{now.strftime('%Y%m%dT%H%M%SZ')}-{content_sha256[:12]}-{suffix}"
    report = {
        **report,
        "version": version,
        "created_at": created_at,
        "content_sha256": content_sha256,
        "files": hashes,
        "counts": {**report.get("counts", {}), "documents": len(document_lines), "qa_pairs": len(qa_rows),
                   "qa_train": len(train_rows), "qa_validation": len(validation_rows)},
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=output_dir))
    try:
        for name, text in files.items():
            _write_file(staging / name, text)
        _write_file(staging / REPORT_FILE, json.dumps(report, indent=2, sort_keys=True) + "\n")
        os.chmod(staging, 0o755)
        final = output_dir / version
        os.rename(staging, final)  # one atomic step: the version appears complete or not at all
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _point_latest(output_dir, version)
    info = read_dataset(final)
    assert info is not None
    return WriteResult(info, written=True)


def _point_latest(output_dir: Path, version: str) -> None:
    link = output_dir / LATEST
    tmp_link = output_dir / f".{LATEST}.{os.getpid()}"
    tmp_link.unlink(missing_ok=True)
    os.symlink(version, tmp_link)
    os.replace(tmp_link, link)


def remove_stale_staging(output_dir: Path, min_age_s: float = 3600.0) -> int:
    """Delete temp folders a killed run left behind (never a complete version).

    Only folders older than `min_age_s` go, so a run still writing on the same volume (the
    CronJob beside the service) keeps its staging folder.
    """
    removed = 0
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return 0
    now = time.time()
    for child in output_dir.iterdir():
        if (child.name.startswith(".") and child.is_dir() and child.name != f".{LATEST}"
                and now - child.stat().st_mtime >= min_age_s):
            shutil.rmtree(child, ignore_errors=True)
            removed += 1
    return removed

"""Versioned dataset folders, as the scraper writes its corpus (`jenkins_assistant.scraper.dataset`):

    <out>/<UTC timestamp>-<content hash>/<files> + report.json
    <out>/latest -> <version>

Written into a hidden temp folder and renamed into place in one step (a killed run leaves a complete version or
none); when the content equals the latest version's, nothing is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

REPORT_FILE = "report.json"
LATEST = "latest"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def content_sha256(files: dict[str, str]) -> str:
    return _sha256("".join(f"{name}:{_sha256(text)}\n" for name, text in sorted(files.items())))


def latest_version(out_dir: Path) -> Path | None:
    link = Path(out_dir) / LATEST
    return link.resolve() if link.exists() else None


def latest_report(out_dir: Path) -> dict | None:
    latest = latest_version(out_dir)
    try:
        return json.loads((latest / REPORT_FILE).read_text(encoding="utf-8")) if latest else None
    except (OSError, ValueError):
        return None


def write_version(out_dir: Path, files: dict[str, str], report: dict) -> tuple[Path, bool]:
    """(the version folder, whether it was written: False = identical to the latest, which is returned)."""
    out_dir = Path(out_dir)
    digest = content_sha256(files)
    previous = latest_report(out_dir)
    if previous is not None and previous.get("content_sha256") == digest:
        return latest_version(out_dir), False
    now = datetime.now(UTC)
    version = f"{now.strftime('%Y%m%dT%H%M%SZ')}-{digest[:12]}"
    report = {**report, "version": version, "created_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
              "content_sha256": digest, "files": {name: _sha256(text) for name, text in files.items()}}
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=out_dir))
    try:
        for name, text in {**files, REPORT_FILE: json.dumps(report, indent=2, sort_keys=True) + "\n"}.items():
            with open(staging / name, "w", encoding="utf-8", newline="") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
        os.chmod(staging, 0o755)
        final = out_dir / version
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    tmp_link = out_dir / f".{LATEST}.{os.getpid()}"
    tmp_link.unlink(missing_ok=True)
    os.symlink(version, tmp_link)
    os.replace(tmp_link, out_dir / LATEST)
    return final, True


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in rows)

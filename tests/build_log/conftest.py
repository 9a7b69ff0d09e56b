"""Fixture logs of tests/build_log/logs/ and their manifest (expected stage, step, signature, planted secrets)."""

from __future__ import annotations

import json
from pathlib import Path

LOGS = Path(__file__).parent / "logs"
MANIFEST: dict[str, dict] = json.loads((LOGS / "manifest.json").read_text(encoding="utf-8"))


def read_log(name: str) -> bytes:
    return (LOGS / name).read_bytes()

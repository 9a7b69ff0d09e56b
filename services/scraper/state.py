"""Resumable crawl state: one small JSON file per source, rewritten atomically after each step.

A run that is killed leaves the last saved state behind; the next run reads it and carries on
from the saved cursor instead of starting over. Saving is skipped when nothing changed, so an
unchanged re-run writes nothing here either.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from jenkins_assistant.common.files import atomic_write_text

log = logging.getLogger(__name__)


class StateFile:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.data: dict[str, Any] = {}
        self._saved = ""
        if self.path.is_file():
            try:
                text = self.path.read_text(encoding="utf-8")
                self.data = json.loads(text)
                self._saved = json.dumps(self.data, sort_keys=True, ensure_ascii=False)
            except (OSError, ValueError) as exc:
                # A corrupt state file only costs a full re-crawl; never crash on it.
                log.warning("ignoring unreadable state %s: %s", self.path, exc)
                self.data = {}

    def save(self) -> bool:
        text = json.dumps(self.data, sort_keys=True, ensure_ascii=False)
        if text == self._saved:
            return False
        atomic_write_text(self.path, text)
        self._saved = text
        return True

    def reset(self) -> None:
        self.data = {}

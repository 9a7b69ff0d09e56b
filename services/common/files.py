"""Atomic file writes: temp file in the same folder + fsync + rename.

Readers see the old file or the new one, never half of either, and a killed process leaves no
partial output (only a hidden temp file that the next write does not trip over).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


@contextlib.contextmanager
def atomic_open(path: Path | str, newline: str | None = None) -> Iterator[TextIO]:
    """Open a text file for writing that appears at `path` only when the block ends without error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path | str, text: str) -> None:
    with atomic_open(path) as out:
        out.write(text)

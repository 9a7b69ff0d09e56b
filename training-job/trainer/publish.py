"""Atomic publication of a trained model directory and its manifest.json (read by the inference service).

Layout of a published directory:
    manifest.json            format_version 1; see `build_manifest`
    <name>.<quant>.gguf      one per quantization, listed in manifest["gguf"]
    adapter/                 the LoRA adapter (peft format) for re-merging or further training
The directory is assembled in a hidden sibling and renamed into place; readers see the old or the new one, whole.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1


def sha256_file(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def file_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under root except the manifest, keyed by POSIX path relative to root."""
    return {
        path.relative_to(root).as_posix(): sha256_file(path)
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != MANIFEST_NAME
    }


def build_manifest(*, base_model: str, gguf: dict[str, str], default_gguf: str, chat_template: str,
                   files: dict[str, str], **fields) -> dict:
    """The contract with the inference service. `chat_template` is "gguf" (use the template in the GGUF metadata)
    or "llama-2" (Meta's [INST] format; `prompt_template` then holds the exact training prompt)."""
    if default_gguf not in gguf:
        raise ValueError(f"default_gguf {default_gguf!r} is not one of the published quants {sorted(gguf)}")
    if chat_template not in ("gguf", "llama-2"):
        raise ValueError(f"chat_template must be 'gguf' or 'llama-2', got {chat_template!r}")
    return {
        "format_version": FORMAT_VERSION,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "base_model": base_model,
        "gguf": gguf,
        "default_gguf": default_gguf,
        "chat_template": chat_template,
        **fields,
        "files": files,
    }


class PublishRefused(RuntimeError):
    """The harness scored the new model below the published one (and --force_publish was not given)."""


# The harness settings that must match for two keyfact_recall figures to be comparable.
HARNESS_SETUP_KEYS = ("split", "limit", "max_tokens", "index")


def publish_gate(new_harness: dict | None, current_manifest: dict | None, force: bool = False) -> dict:
    """Whether a model may replace the published one, from the harness scores alone (a pure function).

    `new_harness` and `current_manifest["harness"]` are the manifest's `harness` records: {"setup": {...},
    "model": {"keyfact_recall": ...}, "base": {...}}. A model whose key-fact recall is below the published model's,
    or whose figure cannot be compared with it (another question subset, answer length or index), is refused unless
    forced; with no published score, or no harness run now, there is nothing to compare and the gate is open.
    Returns {"allowed", "reason", "new_keyfact_recall", "current_keyfact_recall"}.
    """
    def recall(harness: dict | None) -> float | None:
        value = ((harness or {}).get("model") or {}).get("keyfact_recall")
        return float(value) if value is not None else None

    current = (current_manifest or {}).get("harness")
    new_recall, current_recall = recall(new_harness), recall(current)
    decision = {"new_keyfact_recall": new_recall, "current_keyfact_recall": current_recall, "forced": False}
    if new_recall is None:
        return {**decision, "allowed": True, "reason": "harness not run for this model"}
    if current_recall is None:
        return {**decision, "allowed": True, "reason": "no published model with a harness score"}
    new_setup = {k: (new_harness.get("setup") or {}).get(k) for k in HARNESS_SETUP_KEYS}
    current_setup = {k: (current.get("setup") or {}).get(k) for k in HARNESS_SETUP_KEYS}
    if new_setup != current_setup:
        problem = f"harness setups differ ({current_setup} published, {new_setup} now): scores not comparable"
    elif new_recall < current_recall:
        problem = f"keyfact_recall {new_recall:.3f} is below the published model's {current_recall:.3f}"
    else:
        return {**decision, "allowed": True,
                "reason": f"keyfact_recall {new_recall:.3f} >= published {current_recall:.3f}"}
    if force:
        return {**decision, "allowed": True, "forced": True, "reason": f"forced: {problem}"}
    return {**decision, "allowed": False, "reason": problem}


def publish_directory(staging_fill, publish_dir: str | Path) -> Path:
    """Call staging_fill(staging_dir) -> manifest dict, write it, and swap the result in as publish_dir.

    A crash leaves at most a hidden `.<name>.staging-*` sibling, never a half-written publish_dir.
    """
    target = Path(publish_dir).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
    old = None
    try:
        manifest = staging_fill(staging)
        manifest["files"] = file_hashes(staging)
        # No temp file needed: the whole staging directory becomes visible in one rename below.
        (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        os.chmod(staging, 0o755)  # mkdtemp makes it 0700; the inference service may run as another user
        if target.exists():
            # rename() cannot replace a non-empty directory: move the old one aside first (same filesystem).
            old = target.parent / f".{target.name}.old-{os.getpid()}-{time.time_ns()}"
            os.replace(target, old)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if old is not None and not target.exists():
            os.replace(old, target)  # put the previous model back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    log.info("published %s", target)
    return target


def read_manifest(publish_dir: str | Path) -> dict:
    manifest = json.loads((Path(publish_dir) / MANIFEST_NAME).read_text())
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"unsupported manifest format_version {manifest.get('format_version')!r}")
    return manifest


def verify_published(publish_dir: str | Path) -> dict:
    """Re-hash every file listed in the manifest; raises on a missing or changed file."""
    root = Path(publish_dir)
    manifest = read_manifest(root)
    for rel, expected in manifest["files"].items():
        path = root / rel
        if not path.is_file():
            raise FileNotFoundError(f"{path} listed in the manifest is missing")
        if sha256_file(path) != expected:
            raise ValueError(f"{path} does not match its sha256 in the manifest")
    return manifest

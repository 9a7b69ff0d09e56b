"""Training benchmark: CPU LoRA on SmolLM2-135M-Instruct over the 765 real Jenkins Q&A pairs.

    python bench/train_bench.py       # defaults below: up to 3 epochs of 8-pair steps, ~25 min on 2 idle cores
    python bench/train_bench.py --train-examples 128 --steps 16 --export

The defaults are the best of the schedules tried on this data (see training-job/README.md, "Measured"): a cosine
decay from 1e-3 over 3 epochs, validation every half epoch, early stop after two worse validations; the best
validation loss came at the end of epoch 2 in every run, epoch 3 overfits.

Baseline and result come from the same run: the held-out loss of the untouched base model (LoRA B = 0) is measured
first on the validation pairs, then the tuned adapter's on the same pairs. Ends with one `name=value` per figure:
heldout_loss_base, heldout_loss_tuned, heldout_loss_reduction (target >= 0.20), tokens_per_s (non-padding training
tokens per second of the LoRA optimizer steps, periodic evaluations excluded), train_runtime_s, peak_rss_mb (process peak resident memory) and, on CUDA,
peak_vram_mb.
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
QA_CSV = REPO_ROOT.parent / "shared" / "data" / "qa" / "nouralmulhem-Enhancing-LLM-with-Jenkins-Knowledge" / \
    "jenkins_docs_qa_pairs.csv"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=QA_CSV, help="Q&A CSV (question/answer columns)")
    parser.add_argument("--train-examples", type=int, default=689, help="training pairs (689 = the whole split)")
    parser.add_argument("--eval-examples", type=int, default=76, help="held-out pairs (76 = the whole split)")
    parser.add_argument("--epochs", type=float, default=3.0, help="passes over the training pairs")
    parser.add_argument("--steps", type=int, default=-1, help="optimizer steps (-1: --epochs)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--lr-scheduler", default="cosine", help="transformers scheduler name")
    parser.add_argument("--lora-r", type=int, default=16, help="LoRA rank (alpha = 2r)")
    parser.add_argument("--lora-dropout", type=float, default=0.05)
    parser.add_argument("--save-steps", type=int, default=43, help="evaluate/checkpoint every N steps (43: half an epoch)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--export", action="store_true", help="also merge, convert, quantize q8_0 and publish")
    parser.add_argument("--work-dir", type=Path, default=None, help="default: a temporary directory")
    args = parser.parse_args()

    from jenkins_assistant.common.logging_setup import configure_logging

    configure_logging("INFO")
    import torch

    from jenkins_assistant.inference.model_source import packaged_gguf
    from jenkins_assistant.training.cli import main as train_main
    from jenkins_assistant.training.config import DataArguments, ModelArguments, TrainArguments

    if args.threads:
        torch.set_num_threads(args.threads)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="train-bench-"))
    gguf = packaged_gguf()
    model_args = ModelArguments(
        base_model=str(gguf.parent), gguf_file=gguf.name, chat_template="model",
        mode="auto", lora_r=args.lora_r, lora_alpha=2 * args.lora_r, lora_dropout=args.lora_dropout,
        lora_target_modules=["all-linear"],
    )
    data_args = DataArguments(dataset_csv=str(args.csv), max_train_examples=args.train_examples,
                              max_eval_examples=args.eval_examples, max_length=256)
    train_args = TrainArguments(
        output_dir=str(work / "run"), publish_dir=str(work / "models" / "smollm2-jenkins"),
        num_train_epochs=args.epochs, max_steps=args.steps, per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=16, learning_rate=args.learning_rate, lr_scheduler_type=args.lr_scheduler,
        save_steps=args.save_steps,
        logging_steps=4, early_stopping_patience=2, report_to=["none"], resume="never",
        export_gguf=args.export, quantizations=["q8_0"], default_gguf="q8_0",
    )
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    outcome = train_main(data_args, train_args, model_args)
    result = outcome.training
    logging.getLogger("train_bench").info("work dir %s, best step %d of %d", work, result.best_step,
                                          result.global_step)

    print(f"cuda={int(torch.cuda.is_available())}")
    print(f"train_examples={len(result.trainer.train_dataset)}")
    print(f"eval_examples={len(result.trainer.eval_dataset)}")
    print(f"steps={result.global_step}")
    print(f"heldout_loss_base={result.heldout_loss_before:.4f}")
    print(f"heldout_loss_tuned={result.heldout_loss_after:.4f}")
    print(f"heldout_loss_reduction={outcome.manifest['heldout_loss']['reduction']:.4f}")
    print(f"train_runtime_s={result.train_runtime_s:.1f}")
    print(f"tokens_per_s={result.train_tokens / result.train_compute_s:.1f}")
    print(f"peak_rss_mb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")
    if torch.cuda.is_available():
        print(f"peak_vram_mb={torch.cuda.max_memory_allocated() / 2**20:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""SFT with trl's SFTTrainer + peft LoRA (periodic validation, early stopping, best checkpoint kept, resume), then an
optional DPO stage with trl's DPOTrainer on the same adapter, and the test loss no training choice saw."""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset
from transformers import EarlyStoppingCallback, TrainerCallback
from transformers.trainer_utils import get_last_checkpoint
from trl import SFTConfig, SFTTrainer

from jenkins_assistant.common.files import atomic_write_text

from .config import DataArguments, ModelArguments, TrainArguments
from .modeling import TrainingMode, lora_config

log = logging.getLogger(__name__)

BASELINE_FILE = "heldout_baseline.json"  # held-out loss of the untouched base, kept across Job restarts


@dataclass
class TrainingResult:
    trainer: SFTTrainer
    heldout_loss_before: float
    heldout_loss_after: float
    best_step: int
    best_checkpoint: str | None
    global_step: int
    resumed_from: str | None
    stopped_early: bool
    train_runtime_s: float  # wall time of trainer.train(), periodic evaluations included
    train_compute_s: float  # the same without the periodic evaluations: what tokens/s is measured against
    train_tokens: int  # non-padding tokens the model was trained on in this process
    train_curve: list[dict] = field(default_factory=list)  # [{"step", "loss"}]
    val_curve: list[dict] = field(default_factory=list)  # [{"step", "eval_loss"}]
    test_loss_before: float | None = None  # the base on the test split (None: no test split)
    test_loss_after: float | None = None  # the best SFT checkpoint on the test split
    eval_runtime_s: float = 0.0  # the periodic validations inside trainer.train()


@dataclass
class DPOResult:
    steps: int
    runtime_s: float
    loss_curve: list[dict]  # [{"step", "loss", "rewards/accuracies", "rewards/margins"}] as logged by trl
    pairs: int


def sft_config(train_args: TrainArguments, data_args: DataArguments, mode: TrainingMode) -> SFTConfig:
    on_cuda = mode.device == "cuda"
    optim = train_args.optim
    if not on_cuda and optim.startswith("paged_"):
        optim = "adamw_torch"  # paged optimizers live in bitsandbytes' CUDA code
    return SFTConfig(
        output_dir=train_args.output_dir,
        num_train_epochs=train_args.num_train_epochs,
        max_steps=train_args.max_steps,
        per_device_train_batch_size=train_args.per_device_train_batch_size,
        per_device_eval_batch_size=train_args.per_device_eval_batch_size,
        gradient_accumulation_steps=train_args.gradient_accumulation_steps,
        activation_checkpointing=train_args.gradient_checkpointing and mode.name == "qlora",
        optim=optim,
        learning_rate=train_args.learning_rate,
        weight_decay=train_args.weight_decay,
        max_grad_norm=train_args.max_grad_norm,
        warmup_steps=train_args.warmup_ratio,  # a float below 1 is a ratio of the total steps
        lr_scheduler_type=train_args.lr_scheduler_type,
        train_sampling_strategy="group_by_length" if train_args.group_by_length else "random",
        logging_steps=train_args.logging_steps,
        eval_strategy="steps",
        eval_steps=train_args.save_steps,  # equal to save_steps so every checkpoint has a validation loss
        save_strategy="steps",
        save_steps=train_args.save_steps,
        save_total_limit=train_args.save_total_limit,
        load_best_model_at_end=True,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        report_to=[r for r in train_args.report_to if r != "none"],
        seed=train_args.seed,
        bf16=mode.bf16,
        fp16=mode.fp16,
        use_cpu=not on_cuda,
        max_length=data_args.max_length,
        completion_only_loss=True,  # loss on the answer tokens only
        include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=0,
    )


def _curves(log_history: list[dict]) -> tuple[list[dict], list[dict]]:
    train = [{"step": e["step"], "loss": e["loss"]} for e in log_history if "loss" in e and "step" in e]
    val = [{"step": e["step"], "eval_loss": e["eval_loss"]} for e in log_history if "eval_loss" in e]
    return train, val


def checkpoint_step(checkpoint: str | None) -> int | None:
    match = re.search(r"checkpoint-(\d+)$", checkpoint or "")
    return int(match.group(1)) if match else None


def _tokens_seen_at(checkpoint: str | None) -> int:
    if not checkpoint:
        return 0
    state = json.loads((Path(checkpoint) / "trainer_state.json").read_text())
    return int(state.get("num_input_tokens_seen", 0))


def run_training(
    model,
    tokenizer,
    train_records: list[dict],
    eval_records: list[dict],
    model_args: ModelArguments,
    data_args: DataArguments,
    train_args: TrainArguments,
    mode: TrainingMode,
    callbacks: list[TrainerCallback] | None = None,
    test_records: list[dict] | None = None,
) -> TrainingResult:
    output_dir = Path(train_args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    args = sft_config(train_args, data_args, mode)
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(train_records),
        eval_dataset=Dataset.from_list(eval_records),
        processing_class=tokenizer,
        peft_config=lora_config(model_args),
        callbacks=[
            EarlyStoppingCallback(train_args.early_stopping_patience, train_args.early_stopping_threshold),
            *(callbacks or []),
        ],
    )
    if mode.name == "lora" and mode.device == "cpu":
        trainer.model.print_trainable_parameters()

    resumed_from = get_last_checkpoint(str(output_dir)) if train_args.resume == "auto" and output_dir.is_dir() else None
    baseline_path = output_dir / BASELINE_FILE
    baseline = json.loads(baseline_path.read_text()) if resumed_from and baseline_path.is_file() else {}
    if "eval_loss" in baseline:
        before, test_before = baseline["eval_loss"], baseline.get("test_loss")
    else:
        # LoRA's B matrices start at zero, so the fresh adapter model *is* the base model here.
        before = trainer.evaluate(metric_key_prefix="eval")["eval_loss"]
        test_before = test_loss(trainer, test_records)
        # A Job killed mid-write leaves no stub.
        atomic_write_text(baseline_path, json.dumps({"eval_loss": before, "test_loss": test_before}))
    log.info("held-out loss of the base model: %.4f", before)

    if resumed_from:
        log.info("resuming from %s (restarted Job)", resumed_from)
    started = time.perf_counter()
    resumed_tokens = _tokens_seen_at(resumed_from)  # read now: checkpoint rotation may delete it during training
    trainer.train(resume_from_checkpoint=resumed_from)
    runtime = time.perf_counter() - started

    state = trainer.state
    tokens = int(state.num_input_tokens_seen - resumed_tokens)
    new_entries = [e for e in state.log_history if e.get("step", 0) > (checkpoint_step(resumed_from) or 0)]
    eval_s = sum(e.get("eval_runtime", 0.0) for e in new_entries)
    max_steps = state.max_steps
    best_checkpoint = state.best_model_checkpoint
    train_curve, val_curve = _curves(state.log_history)
    if state.best_metric is not None:
        # load_best_model_at_end has put the best checkpoint's adapter back: its validation loss is best_metric.
        after = state.best_metric
    else:  # fewer steps than save_steps: no evaluation ran, the final adapter is exported
        after = trainer.evaluate(metric_key_prefix="eval")["eval_loss"]
        val_curve.append({"step": state.global_step, "eval_loss": after})
    if not val_curve or val_curve[0]["step"] != 0:
        val_curve.insert(0, {"step": 0, "eval_loss": before})
    best_step = checkpoint_step(best_checkpoint) or state.global_step
    stopped_early = state.global_step < max_steps
    log.info("training done: step %d/%d%s, best step %d, validation loss %.4f -> %.4f",
             state.global_step, max_steps, " (early stop)" if stopped_early else "", best_step, before, after)
    test_after = test_loss(trainer, test_records)
    if test_before is not None:
        log.info("test loss (split unseen by checkpoint choice and early stopping): base %.4f -> SFT %.4f",
                 test_before, test_after)
    return TrainingResult(
        trainer=trainer,
        heldout_loss_before=before,
        heldout_loss_after=after,
        best_step=best_step,
        best_checkpoint=best_checkpoint,
        global_step=state.global_step,
        resumed_from=resumed_from,
        stopped_early=stopped_early,
        train_runtime_s=runtime,
        train_compute_s=max(runtime - eval_s, 1e-9),
        train_tokens=tokens,
        train_curve=train_curve,
        val_curve=val_curve,
        test_loss_before=test_before,
        test_loss_after=test_after,
        eval_runtime_s=eval_s,
    )


def test_loss(trainer: SFTTrainer, test_records: list[dict] | None) -> float | None:
    """Mean answer-token loss of the trainer's current model on the test split, measured once per stage: never
    passed to the trainer as an eval set, so neither the best checkpoint nor early stopping depends on it."""
    if not test_records:
        return None
    # Early stopping listens to every evaluate(); this one is not a validation and must not count (or warn).
    stopping = [c for c in trainer.callback_handler.callbacks if isinstance(c, EarlyStoppingCallback)]
    for callback in stopping:
        trainer.remove_callback(callback)
    try:
        return trainer.evaluate(eval_dataset=Dataset.from_list(test_records), metric_key_prefix="test")["test_loss"]
    finally:
        for callback in stopping:
            trainer.add_callback(callback)


def dpo_config(train_args: TrainArguments, data_args: DataArguments, mode: TrainingMode):
    from trl import DPOConfig

    on_cuda = mode.device == "cuda"
    optim = train_args.optim if on_cuda or not train_args.optim.startswith("paged_") else "adamw_torch"
    return DPOConfig(
        output_dir=str(Path(train_args.output_dir) / "dpo"),
        num_train_epochs=train_args.dpo_num_train_epochs,
        max_steps=train_args.dpo_max_steps,
        per_device_train_batch_size=train_args.dpo_batch_size,
        gradient_accumulation_steps=train_args.gradient_accumulation_steps,
        activation_checkpointing=train_args.gradient_checkpointing and mode.name == "qlora",
        optim=optim,
        learning_rate=train_args.dpo_learning_rate,
        weight_decay=train_args.weight_decay,
        max_grad_norm=train_args.max_grad_norm,
        warmup_steps=train_args.warmup_ratio,
        lr_scheduler_type=train_args.lr_scheduler_type,
        beta=train_args.dpo_beta,
        max_length=data_args.max_length,
        logging_steps=1,  # a DPO stage on feedback is a few dozen steps: every step's loss goes in the manifest
        # No checkpoints or evaluation: the stage is short and starts again from the SFT adapter if the Job restarts.
        save_strategy="no",
        eval_strategy="no",
        report_to=[r for r in train_args.report_to if r != "none"],
        seed=train_args.seed,
        bf16=mode.bf16,
        fp16=mode.fp16,
        use_cpu=not on_cuda,
        dataloader_num_workers=0,
    )


def run_dpo(peft_model, tokenizer, dpo_records: list[dict], data_args: DataArguments, train_args: TrainArguments,
            mode: TrainingMode) -> DPOResult:
    """DPO on the SFT adapter, with the SFT adapter as the reference.

    trl's DPOTrainer, given a PeftModel that already carries a trained adapter and no ref_model nor peft_config,
    copies that adapter into a frozen second adapter named "ref" and computes the reference log-probs with it
    (trl/trainer/dpo_trainer.py: `model.add_adapter("ref", ...)`, `use_adapter(..., "ref")`). So the reference is
    exactly the SFT model, not the base with adapters disabled, and the same LoRA (or QLoRA) weights keep training.
    """
    from trl import DPOTrainer

    trainer = DPOTrainer(model=peft_model, ref_model=None, args=dpo_config(train_args, data_args, mode),
                         train_dataset=Dataset.from_list(dpo_records), processing_class=tokenizer)
    if "ref" not in peft_model.peft_config:
        raise RuntimeError("DPOTrainer did not add the SFT adapter as its 'ref' adapter: the reference would be the base")
    started = time.perf_counter()
    trainer.train()
    runtime = time.perf_counter() - started
    curve = [{k: e[k] for k in ("step", "loss", "rewards/accuracies", "rewards/margins") if k in e}
             for e in trainer.state.log_history if "loss" in e]
    # The frozen copy is not part of the model: drop it so that saving and merging see the one trained adapter.
    peft_model.delete_adapter("ref")
    peft_model.set_adapter("default")
    log.info("DPO done: %d steps on %d pairs in %.0f s, loss %s -> %s", trainer.state.global_step, len(dpo_records),
             runtime, curve[0]["loss"] if curve else None, curve[-1]["loss"] if curve else None)
    return DPOResult(trainer.state.global_step, runtime, curve, len(dpo_records))

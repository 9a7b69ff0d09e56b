"""Argument dataclasses of the training job: defaults from the seed (Llama-2-7b-chat QLoRA), overridable by YAML/CLI.

Parsed together by `make_parser()` (trl's `TrlParser`: defaults, then `--config file.yaml`, then flags; unknown keys
are rejected). Device-dependent choices (4-bit or not, fp16/bf16, paged optimizer) are resolved at run time from
`torch.cuda.is_available()` in `modeling.resolve_mode`, not stored here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# Where `python training-job/fetch_llama_cpp_tools.py` puts the converter; the image sets LLAMA_CPP_TOOLS_DIR.
DEFAULT_CONVERTER_DIR = os.environ.get("LLAMA_CPP_TOOLS_DIR", str(REPO_ROOT / ".cache" / "llama-cpp-tools"))
# Empty: the inference service's own system prompts (common.grounded_prompt), the grounded one for examples that
# carry passages, so the model is trained on exactly what it is served. A non-empty value is recorded in the
# manifest and the inference service then serves it instead.
DEFAULT_SYSTEM_PROMPT = ""


@dataclass
class ModelArguments:
    base_model: str = field(
        default="meta-llama/Llama-2-7b-chat-hf",
        metadata={"help": "Base chat model: a Hugging Face Hub id or a local directory."},
    )
    gguf_file: str | None = field(
        default=None,
        metadata={"help": "Load the base weights from this GGUF file inside base_model (dequantized to fp32)."},
    )
    chat_template: str = field(
        default="auto",
        metadata={
            "help": "How prompts are rendered: 'model' (the tokenizer's chat template), 'llama-2' "
            "(<s>[INST] <<SYS>> ... [/INST] answer </s>) or 'auto' (llama-2 for Llama-2 models or a tokenizer "
            "without a template, else model).",
            "choices": ["auto", "model", "llama-2"],
        },
    )
    system_prompt: str = field(default=DEFAULT_SYSTEM_PROMPT, metadata={"help": "System message of every example; empty = the served prompts."})
    mode: str = field(
        default="auto",
        metadata={
            "help": "'qlora' (4-bit NF4 base on CUDA), 'lora' (fp32 base, CPU or GPU) or 'auto' (qlora when "
            "torch.cuda.is_available(), else lora).",
            "choices": ["auto", "qlora", "lora"],
        },
    )
    cpu_bf16: bool = field(
        default=False,
        metadata={"help": "Without CUDA, compute in bfloat16 autocast (weights and adapter stay float32). On a CPU "
                  "with AMX (oneDNN), freed memory kept: a ~900-token LoRA step of Qwen2.5-0.5B took 3.7-3.9 s against "
                  "8-12 s in float32."},
    )
    bnb_4bit_quant_type: str = field(default="nf4", metadata={"help": "bitsandbytes 4-bit type (QLoRA only)."})
    bnb_4bit_use_double_quant: bool = field(default=False, metadata={"help": "Nested quantization (QLoRA only)."})
    lora_r: int = field(default=64, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha (scale = alpha / r)."})
    lora_dropout: float = field(default=0.1, metadata={"help": "Dropout on the LoRA path."})
    lora_target_modules: list[str] | None = field(
        default=None,
        metadata={"help": "Modules to adapt, e.g. q_proj v_proj or all-linear; default: peft's choice per model."},
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow custom model code from the Hub."})


@dataclass
class DataArguments:
    dataset_csv: str | None = field(
        default=None,
        metadata={"help": "CSV of question/answer pairs (the scraper's Q&A export or any CSV with such columns)."},
    )
    question_column: str | None = field(
        default=None, metadata={"help": "Question column; default: the one named 'question' (any case)."}
    )
    answer_column: str | None = field(
        default=None, metadata={"help": "Answer column; default: the one named 'answer' (any case)."}
    )
    validation_csv: str | None = field(
        default=None,
        metadata={"help": "Validation pairs in their own CSV (the scraper's qa_validation.csv); default: a random "
                  "validation_fraction of dataset_csv."},
    )
    validation_fraction: float = field(default=0.1, metadata={"help": "Share of pairs held out for validation."})
    max_train_examples: int | None = field(
        default=None, metadata={"help": "Train on at most this many pairs (after the split); default: all."}
    )
    max_eval_examples: int | None = field(
        default=None, metadata={"help": "Evaluate on at most this many held-out pairs; default: all."}
    )
    max_length: int = field(default=512, metadata={"help": "Truncate tokenized examples to this many tokens."})
    split_seed: int = field(default=42, metadata={"help": "Seed of the train/validation shuffle and the test split."})
    sft_files: list[str] | None = field(
        default=None,
        metadata={"help": "More SFT data next to dataset_csv: `dataset export`'s sft.jsonl (trl messages rows) or "
                  "`dataset generate`'s qa.csv (question/answer columns); repeatable."},
    )
    dpo_file: str | None = field(
        default=None,
        metadata={"help": "`dataset export`'s dpo.jsonl (prompt/chosen/rejected): adds a DPO stage after SFT."},
    )
    test_fraction: float = field(
        default=0.1,
        metadata={"help": "Share of questions kept as a TEST split (by a seeded hash of the question) that neither "
                  "checkpoint selection nor early stopping sees; 0 = none."},
    )
    max_test_examples: int | None = field(
        default=None, metadata={"help": "Measure the test loss on at most this many test pairs; default: all."}
    )


@dataclass
class TrainArguments:
    output_dir: str = field(
        default="runs/jenkins-llama2",
        metadata={"help": "Checkpoints, TensorBoard logs and export work dir (a persistent volume in Kubernetes)."},
    )
    publish_dir: str = field(
        default="models/jenkins-llama2",
        metadata={"help": "The published model directory (GGUF files, adapter, manifest.json), replaced atomically."},
    )
    num_train_epochs: float = field(default=1.0, metadata={"help": "Training epochs."})
    max_steps: int = field(default=-1, metadata={"help": "Stop after this many optimizer steps (-1: use epochs)."})
    per_device_train_batch_size: int = field(default=4, metadata={"help": "Train batch size per device."})
    per_device_eval_batch_size: int = field(default=4, metadata={"help": "Eval batch size per device."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Batches per optimizer step."})
    gradient_checkpointing: bool = field(
        default=True, metadata={"help": "Recompute activations in backward (QLoRA on CUDA only; saves VRAM)."}
    )
    optim: str = field(
        default="paged_adamw_32bit",
        metadata={"help": "Optimizer on CUDA; CPU runs use adamw_torch (paged optimizers need CUDA)."},
    )
    learning_rate: float = field(default=2e-4, metadata={"help": "Peak learning rate."})
    weight_decay: float = field(default=0.001, metadata={"help": "AdamW weight decay."})
    max_grad_norm: float = field(default=0.3, metadata={"help": "Gradient clipping norm."})
    warmup_ratio: float = field(default=0.03, metadata={"help": "Share of steps with linear warmup."})
    lr_scheduler_type: str = field(default="constant", metadata={"help": "transformers scheduler name."})
    group_by_length: bool = field(default=True, metadata={"help": "Batch examples of similar length together."})
    logging_steps: int = field(default=25, metadata={"help": "Log the training loss every N steps."})
    save_steps: int = field(default=25, metadata={"help": "Evaluate on the validation split and checkpoint every N."})
    save_total_limit: int = field(default=3, metadata={"help": "Checkpoints kept (the best one always is)."})
    early_stopping_patience: int = field(
        default=2, metadata={"help": "Stop after this many evaluations without a lower validation loss."}
    )
    early_stopping_threshold: float = field(
        default=0.0, metadata={"help": "Minimum validation-loss decrease that counts as an improvement."}
    )
    resume: str = field(
        default="auto",
        metadata={
            "help": "'auto': continue from the last checkpoint in output_dir (a restarted Job); 'never': start over.",
            "choices": ["auto", "never"],
        },
    )
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"], metadata={"help": "Loggers ('none')."})
    seed: int = field(default=42, metadata={"help": "Training seed."})
    export_gguf: bool = field(default=True, metadata={"help": "Merge, convert to GGUF, quantize, smoke-test."})
    converter_dir: str = field(
        default=DEFAULT_CONVERTER_DIR,
        metadata={"help": "Folder with llama.cpp's convert_hf_to_gguf.py (training-job/fetch_llama_cpp_tools.py)."},
    )
    gguf_outtype: str = field(
        default="f16", metadata={"help": "Type of the converter's unquantized GGUF (f16, bf16 or f32)."}
    )
    quantizations: list[str] = field(
        default_factory=lambda: ["q8_0", "q4_K_M"],
        metadata={"help": "llama.cpp quant types written next to the unquantized GGUF."},
    )
    default_gguf: str = field(default="q4_K_M", metadata={"help": "Quant the inference service serves by default."})
    keep_unquantized_gguf: bool = field(
        default=False, metadata={"help": "Also publish the converter's f16/f32 GGUF (large)."}
    )
    smoke_prompt: str = field(
        default="How do I restart Jenkins safely?", metadata={"help": "Question generated from as a smoke check."}
    )
    smoke_max_tokens: int = field(default=32, metadata={"help": "Tokens generated by the smoke check."})
    # ----- DPO stage (only with dpo_file) ------------------------------------------------------------------------
    dpo_beta: float = field(default=0.1, metadata={"help": "DPO beta: how far the policy may move from the SFT "
                                                           "reference."})
    dpo_learning_rate: float = field(default=5e-5, metadata={"help": "Peak learning rate of the DPO stage."})
    dpo_num_train_epochs: float = field(default=1.0, metadata={"help": "Epochs of the DPO stage."})
    dpo_max_steps: int = field(default=-1, metadata={"help": "Stop DPO after this many steps (-1: use epochs)."})
    dpo_batch_size: int = field(default=4, metadata={"help": "DPO pairs per device batch."})
    # ----- answer-quality harness and publish gate ---------------------------------------------------------------
    run_harness: bool = field(
        default=False,
        metadata={"help": "After export, run `jenkins-assistant eval` (the golden set through the real services) on "
                  "the new model and on the base, write both into the manifest, and refuse to publish a model whose "
                  "keyfact_recall is below the published one's. Minutes on a CPU."},
    )
    harness_index_dir: str = field(default="var/index", metadata={"help": "Retrieval index the harness serves."})
    harness_limit: int = field(default=40, metadata={"help": "Golden questions asked (spread over categories)."})
    harness_split: str = field(default="tune", metadata={"help": "Golden split (tune, holdout, empty = both)."})
    harness_max_tokens: int = field(default=200, metadata={"help": "Longest harness answer in tokens."})
    harness_base_gguf: str | None = field(
        default=None,
        metadata={"help": "GGUF the base model is served from in the harness; default: base_model/gguf_file."},
    )
    harness_base: bool = field(
        default=True, metadata={"help": "Also score the base model (skip when it was scored with the same setup)."}
    )
    force_publish: bool = field(
        default=False, metadata={"help": "Publish even when the harness scores the new model below the published one."}
    )

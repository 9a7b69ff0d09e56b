"""Base model and tokenizer loading: QLoRA (4-bit NF4) on CUDA, plain fp32 LoRA on CPU, GGUF bases dequantized."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import LoraConfig, prepare_model_for_kbit_training
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig, PreTrainedModel

from .config import ModelArguments

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingMode:
    name: str  # "qlora" or "lora"
    device: str  # "cuda" or "cpu"
    compute_dtype: torch.dtype  # dtype of the matmuls (and of the base when merging for export)

    @property
    def bf16(self) -> bool:
        # On the CPU this is autocast: the base and the adapter stay float32 and only the matmuls run in bfloat16.
        return self.compute_dtype == torch.bfloat16

    @property
    def fp16(self) -> bool:
        return self.device == "cuda" and self.compute_dtype == torch.float16


def resolve_mode(requested: str, cuda_available: bool | None = None, cpu_bf16: bool = False) -> TrainingMode:
    """QLoRA needs CUDA: bitsandbytes loads 4-bit on CPU without error but trains ~30x slower, so CPU runs plain
    LoRA in fp32, or with bfloat16 autocast when asked (cpu_bf16). Decided explicitly from
    torch.cuda.is_available(), never by trying."""
    cuda = torch.cuda.is_available() if cuda_available is None else cuda_available
    if requested not in ("auto", "qlora", "lora"):
        raise ValueError(f"unknown mode {requested!r} (auto, qlora, lora)")
    if requested == "qlora" and not cuda:
        raise ValueError("mode=qlora needs a CUDA GPU (torch.cuda.is_available() is False); use mode=lora or auto")
    name = requested if requested != "auto" else ("qlora" if cuda else "lora")
    if not cuda:
        return TrainingMode(name, "cpu", torch.bfloat16 if cpu_bf16 else torch.float32)
    # bf16 where the GPU supports it (Ampere+), else float16 as in the seed (a T4).
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return TrainingMode(name, "cuda", dtype)


# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def keep_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse instead of handing it back to the kernel. A CPU training step allocates
    its activations and the logits (Qwen's 152k-token vocabulary: ~0.5 GB per 900-token example in float32) afresh,
    and glibc serves every block over 32 MiB with its own mmap and unmaps it on free, so each step page-faults all of
    it in again. Measured on Qwen2.5-0.5B, bfloat16 autocast, ~900-token steps on 2 cores: 11-16 s per step as it is,
    3.7-3.9 s with freed memory kept (steps longer than any before still grow the heap once). False where the C
    library is not glibc."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    # Every allocation from the heap (no mmap), and the heap is never trimmed back: peak memory stays reserved.
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))


def is_llama2(model_args: ModelArguments, tokenizer) -> bool:
    return "llama-2" in model_args.base_model.lower() or (
        getattr(tokenizer, "name_or_path", "") and "llama-2" in str(tokenizer.name_or_path).lower()
    )


def resolve_chat_template(model_args: ModelArguments, tokenizer) -> str:
    if model_args.chat_template != "auto":
        if model_args.chat_template == "model" and not tokenizer.chat_template:
            raise ValueError(f"{model_args.base_model} has no chat template; use chat_template=llama-2")
        return model_args.chat_template
    if is_llama2(model_args, tokenizer) or not tokenizer.chat_template:
        return "llama-2"
    return "model"


def load_tokenizer(model_args: ModelArguments):
    kwargs = {"trust_remote_code": model_args.trust_remote_code}
    if model_args.gguf_file:
        kwargs["gguf_file"] = model_args.gguf_file
    # legacy=True keeps Llama-2's SentencePiece handling of text after special tokens ("[/INST]" etc.) identical to
    # llama.cpp's, so the prompts trained on tokenize as the prompts served.
    tokenizer = AutoTokenizer.from_pretrained(model_args.base_model, legacy=True, **kwargs)
    tokenizer.padding_side = "right"  # as in the seed; fp16 training overflows with left padding
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def dequantized_copy(model: PreTrainedModel) -> PreTrainedModel:
    """A GGUF-loaded model is flagged as quantized: Trainer refuses it and save_pretrained fails ("quantized with
    gguf and is not serializable"). Its tensors are already dequantized, so copy them into a fresh model."""
    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config, dtype=model.dtype)
    missing, unexpected = fresh.load_state_dict(model.state_dict(), strict=False)
    if unexpected or [k for k in missing if "lm_head" not in k]:  # lm_head may be tied to the embeddings
        raise RuntimeError(f"GGUF state dict mismatch: missing={missing} unexpected={unexpected}")
    fresh.tie_weights()
    return fresh


def load_base_model(model_args: ModelArguments, mode: TrainingMode, *, for_training: bool = True,
                    gradient_checkpointing: bool = True) -> PreTrainedModel:
    kwargs: dict = {"trust_remote_code": model_args.trust_remote_code}
    if model_args.gguf_file:
        if mode.name == "qlora" and for_training:
            raise ValueError("a GGUF base is for CPU LoRA runs; give QLoRA an HF checkpoint (base_model dir or id)")
        model = AutoModelForCausalLM.from_pretrained(
            model_args.base_model, gguf_file=model_args.gguf_file, dtype=torch.float32, **kwargs
        )
        model = dequantized_copy(model)
        return model.to(mode.device) if for_training else model
    if mode.name == "qlora" and for_training:
        quant = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=model_args.bnb_4bit_quant_type,
            bnb_4bit_compute_dtype=mode.compute_dtype,
            bnb_4bit_use_double_quant=model_args.bnb_4bit_use_double_quant,
        )
        model = AutoModelForCausalLM.from_pretrained(
            model_args.base_model, quantization_config=quant, device_map={"": 0}, **kwargs
        )
        model.config.use_cache = False
        # Casts norms to fp32 and enables input grads so checkpointed activations get gradients.
        return prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    # On the CPU the weights stay float32 (autocast computes in bfloat16): a bfloat16 adapter would round its updates.
    dtype = mode.compute_dtype if mode.device == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_args.base_model, dtype=dtype, **kwargs)
    # The export merge runs on the CPU: a 7B fp16 base plus the merge does not fit next to nothing else on a T4.
    return model.to(mode.device if for_training else "cpu")


def lora_config(model_args: ModelArguments) -> LoraConfig:
    targets = model_args.lora_target_modules
    if targets == ["all-linear"]:
        targets = "all-linear"
    return LoraConfig(
        r=model_args.lora_r,
        lora_alpha=model_args.lora_alpha,
        lora_dropout=model_args.lora_dropout,
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
    )


def sentencepiece_model_file(model_args: ModelArguments) -> Path | None:
    """The base's tokenizer.model, if it has one: the converter needs it for real SentencePiece scores (with only
    tokenizer.json it writes placeholder scores and llama.cpp then tokenizes differently)."""
    local = Path(model_args.base_model)
    if local.is_dir():
        found = local / "tokenizer.model"
        return found if found.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return Path(hf_hub_download(model_args.base_model, "tokenizer.model"))
    except EntryNotFoundError:
        return None

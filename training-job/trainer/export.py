"""Adapter -> merged HF model -> GGUF (llama.cpp's converter) -> quantized GGUFs -> llama-cpp-python smoke check."""

from __future__ import annotations

import ctypes
import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from jenkins_assistant.common.grounded_prompt import SYSTEM_PROMPT_NO_PASSAGES

from .data import render_llama2_prompt

log = logging.getLogger(__name__)


def converter_script(converter_dir: str | Path) -> Path:
    script = Path(converter_dir) / "convert_hf_to_gguf.py"
    if not script.is_file():
        raise FileNotFoundError(
            f"{script} not found: run `python training-job/fetch_llama_cpp_tools.py` (or set LLAMA_CPP_TOOLS_DIR)"
        )
    return script


def llama_ftype(quant: str) -> int:
    import llama_cpp

    value = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{quant.upper()}", None)
    if value is None:
        raise ValueError(f"unknown llama.cpp quantization {quant!r} (e.g. q8_0, q4_K_M, q5_K_M)")
    return int(value)


def save_merged(merged_model, tokenizer, out_dir: Path, sentencepiece_model: Path | None) -> Path:
    """Save the merged model in the layout the converter reads."""
    out_dir.mkdir(parents=True, exist_ok=True)
    merged_model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    if sentencepiece_model is not None:
        # With tokenizer.json alone the converter writes placeholder scores and llama.cpp tokenizes differently.
        shutil.copy2(sentencepiece_model, out_dir / "tokenizer.model")
        config_path = out_dir / "tokenizer_config.json"
        config = json.loads(config_path.read_text())
        config["legacy"] = True  # how the model was trained (see modeling.load_tokenizer)
        config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False))
    return out_dir


def convert_to_gguf(hf_dir: Path, out_file: Path, converter_dir: str | Path, outtype: str = "f16") -> Path:
    """Run llama.cpp's converter in its own process (it puts its bundled gguf-py first on sys.path)."""
    script = converter_script(converter_dir)
    cmd = [sys.executable, str(script), str(hf_dir), "--outfile", str(out_file), "--outtype", outtype]
    log.info("converting: %s", " ".join(cmd))
    env = {k: v for k, v in os.environ.items() if k != "NO_LOCAL_GGUF"}
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env)
    if done.returncode != 0 or not out_file.is_file():
        raise RuntimeError(f"convert_hf_to_gguf.py failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return out_file


def quantize(in_file: Path, out_file: Path, quant: str, nthread: int = 0) -> Path:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_ftype(quant)
    params.nthread = nthread
    status = llama_cpp.llama_model_quantize(str(in_file).encode(), str(out_file).encode(), ctypes.byref(params))
    if status != 0 or not out_file.is_file():
        raise RuntimeError(f"llama_model_quantize({in_file.name} -> {quant}) failed with status {status}")
    log.info("quantized %s -> %s (%.1f MB)", in_file.name, out_file.name, out_file.stat().st_size / 1e6)
    return out_file


@dataclass(frozen=True)
class SmokeResult:
    gguf: str
    prompt: str
    output: str
    tokens_match_training: bool  # llama.cpp tokenizes the served prompt exactly as the trainer did


def _chat_messages(system_prompt: str, question: str) -> list[dict]:
    # A bare question is served with the no-passages prompt unless the model was trained with its own.
    return [{"role": "system", "content": system_prompt or SYSTEM_PROMPT_NO_PASSAGES},
            {"role": "user", "content": question}]


def served_prompt(tokenizer, chat_template: str, system_prompt: str, question: str) -> str:
    """The prompt text the inference service builds for a question (the training prompt, without the answer)."""
    if chat_template == "llama-2":
        return render_llama2_prompt(question, system_prompt or SYSTEM_PROMPT_NO_PASSAGES)
    return tokenizer.apply_chat_template(_chat_messages(system_prompt, question), tokenize=False,
                                         add_generation_prompt=True)


def smoke_check(gguf_file: Path, tokenizer, chat_template: str, system_prompt: str, question: str,
                max_tokens: int) -> SmokeResult:
    """Load the GGUF with llama-cpp-python and generate greedily; compare its tokenization with the trainer's."""
    from llama_cpp import Llama

    llm = Llama(model_path=str(gguf_file), n_ctx=512, n_threads=max(1, os.cpu_count() or 1), seed=0, verbose=False)
    try:
        prompt = served_prompt(tokenizer, chat_template, system_prompt, question)
        # Llama-2 prompts get <s> from the tokenizer (add_bos); chat templates write their own special tokens.
        add_bos = chat_template == "llama-2"
        ours = tokenizer(prompt, add_special_tokens=add_bos)["input_ids"]
        theirs = llm.tokenize(prompt.encode(), add_bos=add_bos, special=True)
        if chat_template == "llama-2":
            output = llm(prompt, max_tokens=max_tokens, temperature=0.0)["choices"][0]["text"]
        else:  # the chat template stored in the GGUF, as the inference service uses it
            if "tokenizer.chat_template" not in llm.metadata:
                raise RuntimeError(f"{gguf_file.name} carries no tokenizer.chat_template: cannot publish it as 'gguf'")
            reply = llm.create_chat_completion(messages=_chat_messages(system_prompt, question),
                                               max_tokens=max_tokens, temperature=0.0)
            output = reply["choices"][0]["message"]["content"] or ""
    finally:
        llm.close()
    if list(ours) != list(theirs):
        log.warning("llama.cpp tokenizes the prompt differently from the trainer:\n%s\n%s", ours, theirs)
    log.info("smoke check %s: %r -> %r", gguf_file.name, question, output)
    return SmokeResult(gguf_file.name, question, output, list(ours) == list(theirs))

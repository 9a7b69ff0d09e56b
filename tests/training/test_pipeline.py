"""The whole training job on a tiny Llama (Llama-2 prompt format, SentencePiece tokenizer) in well under a minute:
loss falls, early stopping keeps the best checkpoint, a crash after a checkpoint resumes, merge -> GGUF -> q8_0 ->
llama-cpp-python generates, and the published directory matches its manifest."""

from __future__ import annotations

from pathlib import Path

import pytest

from jenkins_assistant.training.cli import main
from jenkins_assistant.training.config import DataArguments, ModelArguments, TrainArguments
from jenkins_assistant.training.publish import verify_published

from .conftest import TINY_SYSTEM_PROMPT

CRASH_STEP = 8


class SimulatedPreemption(RuntimeError):
    pass


def crash_after_checkpoint(step: int):
    from transformers import TrainerCallback

    class CrashAfterSave(TrainerCallback):
        """Dies right after checkpoint-<step> is on disk, as a preempted node would."""

        def on_save(self, args, state, control, **kwargs):
            if state.global_step == step:
                raise SimulatedPreemption(f"preempted after checkpoint-{step}")

    return CrashAfterSave()


@pytest.fixture
def one_torch_thread():
    """Tiny matrices: one thread is faster, and immune to the other jobs on a 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_args(tiny_llama_dir: Path, qa_csv: Path, converter_dir: Path, tmp_path: Path):
    model_args = ModelArguments(
        base_model=str(tiny_llama_dir), chat_template="auto", system_prompt=TINY_SYSTEM_PROMPT, mode="auto",
        lora_r=16, lora_alpha=32, lora_dropout=0.0, lora_target_modules=["all-linear"],
    )
    data_args = DataArguments(dataset_csv=str(qa_csv), max_train_examples=32, max_eval_examples=16, max_length=256)
    train_args = TrainArguments(
        output_dir=str(tmp_path / "run"), publish_dir=str(tmp_path / "models" / "tiny-jenkins"),
        num_train_epochs=10, per_device_train_batch_size=8, per_device_eval_batch_size=16, learning_rate=1e-2,
        save_steps=4, logging_steps=4, early_stopping_patience=2, report_to=["none"], converter_dir=str(converter_dir),
        gguf_outtype="f32", quantizations=["q8_0"], default_gguf="q8_0", smoke_max_tokens=16,
    )
    return data_args, train_args, model_args


def test_tiny_llama_trains_resumes_and_publishes_gguf(tiny_llama_dir, qa_csv, converter_dir, tmp_path,
                                                      one_torch_thread, caplog):
    data_args, train_args, model_args = tiny_args(tiny_llama_dir, qa_csv, converter_dir, tmp_path)

    # First attempt: the node goes away right after checkpoint-8; nothing is published.
    with pytest.raises(SimulatedPreemption):
        main(data_args, train_args, model_args, callbacks=[crash_after_checkpoint(CRASH_STEP)])
    assert (Path(train_args.output_dir) / f"checkpoint-{CRASH_STEP}").is_dir()
    assert not Path(train_args.publish_dir).exists()

    # The restarted Job: same arguments, continues from the checkpoint.
    caplog.set_level("INFO", logger="jenkins_assistant.training")
    outcome = main(data_args, train_args, model_args)
    result, manifest = outcome.training, outcome.manifest
    assert "training mode: lora on cpu" in caplog.text  # no CUDA here: plain LoRA, logged
    assert result.resumed_from.endswith(f"checkpoint-{CRASH_STEP}")
    assert manifest["resumed_from_step"] == CRASH_STEP
    assert result.global_step > CRASH_STEP

    # The curves span both attempts (trainer state restored from the checkpoint) and the training loss falls.
    val = {point["step"]: point["eval_loss"] for point in manifest["loss_curve"]["validation"]}
    assert {0, 4, 8} <= set(val)
    train = manifest["loss_curve"]["train"]
    assert train[0]["step"] == 4 and train[-1]["loss"] < train[0]["loss"]

    # 10 epochs on 32 pairs over-fit: validation loss rises, training stops early and keeps the best checkpoint.
    assert result.stopped_early and manifest["global_step"] < 40
    best_step = min((step for step in val if step > 0), key=val.get)
    assert manifest["best_step"] == best_step < manifest["global_step"]
    assert manifest["heldout_loss"]["after"] == pytest.approx(val[best_step])
    assert manifest["heldout_loss"]["after"] < manifest["heldout_loss"]["before"] == pytest.approx(val[0])

    # Published: manifest shape for the inference service, every file hashed, Llama-2 prompt format.
    published = verify_published(outcome.publish_dir)
    assert published["format_version"] == 1
    assert published["gguf"] == {"q8_0": "tiny-jenkins.q8_0.gguf"} and published["default_gguf"] == "q8_0"
    assert published["chat_template"] == "llama-2" and "[/INST]" in published["prompt_template"]
    assert published["dataset"]["pairs"] == 765 and len(published["dataset"]["sha256"]) == 64
    assert published["config"]["train"]["learning_rate"] == 1e-2
    assert {"adapter/adapter_config.json", "adapter/adapter_model.safetensors", "tiny-jenkins.q8_0.gguf"} <= set(
        published["files"])
    # llama.cpp tokenizes the served prompt exactly as training did (tokenizer.model shipped, legacy=True, one BOS).
    assert published["smoke_check"]["tokens_match_training"] is True
    assert not (Path(train_args.output_dir) / "export").exists()  # merged model and f32 GGUF cleaned up

    # The q8_0 GGUF loads in llama-cpp-python as a SentencePiece Llama and generates.
    from llama_cpp import Llama

    llm = Llama(model_path=str(outcome.publish_dir / "tiny-jenkins.q8_0.gguf"), n_ctx=256, verbose=False)
    try:
        assert llm.metadata["tokenizer.ggml.model"] == "llama"
        assert llm.metadata["general.file_type"] == "7"  # LLAMA_FTYPE_MOSTLY_Q8_0
        prompt = f"[INST] <<SYS>>\n{TINY_SYSTEM_PROMPT}\n<</SYS>>\n\nWhat is Jenkins? [/INST]"
        tokens = llm.tokenize(prompt.encode(), add_bos=True, special=True)
        assert tokens[0] == llm.token_bos() and tokens[1] != llm.token_bos()  # exactly one BOS
        assert llm(prompt, max_tokens=8, temperature=0.0)["usage"]["completion_tokens"] > 0
    finally:
        llm.close()


def test_republishing_replaces_the_model_atomically(tiny_llama_dir, qa_csv, converter_dir, tmp_path,
                                                    one_torch_thread):
    """A second, shorter run publishes over the first; the directory is always whole and verifiable."""
    data_args, train_args, model_args = tiny_args(tiny_llama_dir, qa_csv, converter_dir, tmp_path)
    train_args.max_steps, train_args.resume = 4, "never"
    first = main(data_args, train_args, model_args).manifest
    train_args.output_dir = str(tmp_path / "run2")
    train_args.max_steps = 8
    second = main(data_args, train_args, model_args)
    manifest = verify_published(second.publish_dir)
    assert manifest["global_step"] == 8 and first["global_step"] == 4
    assert manifest["created_at"] >= first["created_at"]
    leftovers = [p.name for p in second.publish_dir.parent.iterdir() if p.name != "tiny-jenkins"]
    assert leftovers == []  # no staging or old directories left behind


def test_console_entry_point_parses_flags_and_prints_figures(tiny_llama_dir, qa_csv, tmp_path, capsys,
                                                             one_torch_thread):
    """`jenkins-assistant-train` with flags only (no export): the figures end the output as name=value lines."""
    from jenkins_assistant.training.cli import cli

    code = cli([
        "--base_model", str(tiny_llama_dir), "--dataset_csv", str(qa_csv), "--output_dir", str(tmp_path / "run"),
        "--max_train_examples", "8", "--max_eval_examples", "4", "--max_steps", "2", "--save_steps", "1",
        "--per_device_train_batch_size", "4", "--lora_target_modules", "q_proj", "v_proj", "--report_to", "none",
        "--no_export_gguf",
    ])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    figures = dict(line.split("=", 1) for line in lines[-7:])
    assert set(figures) == {"best_step", "heldout_loss_before", "heldout_loss_after", "test_loss_before",
                            "test_loss_after", "stage_sft_steps", "stage_sft_runtime_s"}
    assert float(figures["test_loss_before"]) > 0 and figures["stage_sft_steps"] == "2"
    assert float(figures["heldout_loss_after"]) > 0 and int(figures["best_step"]) in (1, 2)
    assert (tmp_path / "run" / "checkpoint-2").is_dir()

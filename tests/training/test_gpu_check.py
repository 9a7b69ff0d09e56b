"""training-job/gpu_check.sh: the prepared CUDA check (QLoRA, merge, GGUF) exits cleanly where there is no CUDA, and
its arguments are the seed's (r=64, alpha=16, NF4) as the job's parser reads them."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "training-job" / "gpu_check.sh"


def test_without_cuda_it_says_so_and_exits_zero():
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present: run training-job/gpu_check.sh MODEL_DIR by hand (minutes)")
    done = subprocess.run(["bash", str(SCRIPT), "/no/such/model"], check=False, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "skipped: no CUDA device" in done.stdout


def test_its_arguments_parse_into_the_seed_qlora_setup():
    """The flags the script passes, read by the job's own parser over the seed's YAML."""
    from jenkins_assistant.training.cli import make_parser
    from jenkins_assistant.training.gpu_check import argv

    data_args, train_args, model_args = make_parser().parse_args_and_config(
        argv("/models/x", 30, "qa.csv", "/tmp/w", config=str(REPO_ROOT / "training-job/config/llama2-7b-qlora.yaml")))
    assert (model_args.mode, model_args.lora_r, model_args.lora_alpha, model_args.bnb_4bit_quant_type) == (
        "qlora", 64, 16, "nf4")
    assert train_args.max_steps == 30 and train_args.optim == "paged_adamw_32bit" and not train_args.run_harness
    assert train_args.learning_rate == 2e-4 and train_args.lr_scheduler_type == "constant"
    assert train_args.quantizations == ["q4_K_M"] and data_args.max_test_examples == 48

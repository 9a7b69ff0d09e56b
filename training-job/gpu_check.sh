#!/usr/bin/env bash
# The real QLoRA path on a CUDA machine, bounded to a few minutes, with no network: NF4 base through bitsandbytes,
# r=64, alpha=16 and the rest of the seed's arguments (training-job/config/llama2-7b-qlora.yaml), a bounded number of
# steps on a model given as a local path, then merge -> GGUF (llama.cpp's converter) -> q4_K_M -> llama.cpp smoke
# check. Prints peak VRAM, training tokens/s, the validation and test (held-out) losses, and the time of each part.
#
#   training-job/gpu_check.sh /models/Llama-2-7b-chat-hf [steps=30] [dataset.csv]
#
# The model folder is a Hugging Face checkpoint (config.json, *.safetensors, tokenizer files); nothing is
# downloaded (HF_HUB_OFFLINE=1). llama.cpp's converter must be present (python training-job/fetch_llama_cpp_tools.py
# once, or LLAMA_CPP_TOOLS_DIR). Without CUDA it prints why and exits 0 without doing anything: the CPU path is
# covered by tests/training/.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${1:?usage: training-job/gpu_check.sh MODEL_DIR [STEPS] [DATASET_CSV]}"
STEPS="${2:-30}"
DATASET="${3:-${JENKINS_SHARED_DATA:-../shared/data}/qa/nouralmulhem-Enhancing-LLM-with-Jenkins-Knowledge/jenkins_docs_qa_pairs.csv}"
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1

if ! "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  echo "gpu_check: skipped: no CUDA device (torch.cuda.is_available() is False); QLoRA needs one"
  exit 0
fi
[ -d "$MODEL" ] || { echo "gpu_check: $MODEL is not a local model folder" >&2; exit 2; }
[ -f "$DATASET" ] || { echo "gpu_check: dataset $DATASET not found (third argument)" >&2; exit 2; }
WORK="$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
echo "gpu_check: $MODEL, $STEPS steps, work dir $WORK"

"$PYTHON" -m jenkins_assistant.training.gpu_check "$MODEL" "$STEPS" "$DATASET" "$WORK"

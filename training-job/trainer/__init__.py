"""Training job: QLoRA/LoRA fine-tuning on Jenkins Q&A, exported to quantized GGUF for the inference service.

Modules: config (argument dataclasses), data (CSV -> prompt/completion records), modeling (mode, tokenizer, base
model), train (SFTTrainer run), export (merge -> GGUF -> quantize -> smoke check), publish (atomic model directory
with manifest.json), cli (`main` and the `jenkins-assistant-train` entry point).
"""

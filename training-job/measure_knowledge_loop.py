"""Measures of issue 13 section 3 on SmolLM2-135M-Instruct (CPU): test loss of base vs SFT vs SFT+DPO, the
harness's key-fact recall of each on the same golden questions, and the time of each stage.

    .venv/bin/python training-job/measure_knowledge_loop.py --out var/knowledge-loop

Preference pairs: no users have rated answers on this machine, so they are made the way `dataset export` makes them
from real feedback: the packaged SmolLM2 answers training questions (no retrieval), each answer is rated not helpful
and corrected with the reference answer (real `build_export`, so the file is exactly what the export writes). Only
questions of the training side of the split are used; the test split stays unseen.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from jenkins_assistant.common.grounded_prompt import SYSTEM_PROMPT_NO_PASSAGES
from jenkins_assistant.common.logging_setup import configure_logging
from jenkins_assistant.common.records import AnswerFeedback, AnswerRecord
from jenkins_assistant.datasets.feedback import Rated, build_export, question_key
from jenkins_assistant.inference.model_source import packaged_gguf
from jenkins_assistant.training.cli import main
from jenkins_assistant.training.config import REPO_ROOT, DataArguments, ModelArguments, TrainArguments
from jenkins_assistant.training.data import is_test_question, read_pairs

QA_CSV = REPO_ROOT.parent / "shared/data/qa/nouralmulhem-Enhancing-LLM-with-Jenkins-Knowledge/jenkins_docs_qa_pairs.csv"


def make_dpo_file(out: Path, pairs: int, seed: int, fraction: float) -> Path:
    from llama_cpp import Llama

    candidates = [p for p in read_pairs(QA_CSV) if not is_test_question(p.question, seed, fraction)][-pairs:]
    llm = Llama(model_path=str(packaged_gguf()), n_ctx=1024, verbose=False)
    rated = []
    for i, pair in enumerate(candidates):
        reply = llm.create_chat_completion(messages=[{"role": "system", "content": SYSTEM_PROMPT_NO_PASSAGES},
                                                     {"role": "user", "content": pair.question}],
                                           max_tokens=96, temperature=0.0)["choices"][0]["message"]["content"]
        rated.append(Rated(AnswerRecord(answer_id=f"m{i:03d}", question=pair.question, answer_text=reply,
                                        finish_reason="stop", model="SmolLM2-135M-Instruct"),
                           AnswerFeedback("not_helpful", corrected_answer=pair.answer, rated_at=float(i))))
    llm.close()
    # The corrections are the CSV's own answers, already in the SFT set: known_questions keeps them out of sft.jsonl.
    export = build_export(rated, known_questions={question_key(r.question) for r in rated})
    path = out / "dpo.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in export.pairs))
    return path


def main_cli() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("var/knowledge-loop"))
    parser.add_argument("--sft_steps", type=int, default=40)
    parser.add_argument("--dpo_pairs", type=int, default=32)
    parser.add_argument("--dpo_steps", type=int, default=16)
    parser.add_argument("--harness_limit", type=int, default=12)
    parser.add_argument("--dpo_file", type=Path, default=None, help="Reuse preference pairs made by an earlier run.")
    parser.add_argument("--max_test_examples", type=int, default=None)
    args = parser.parse_args()
    configure_logging()
    args.out.mkdir(parents=True, exist_ok=True)
    figures: dict = {}

    started = time.perf_counter()
    dpo_file = args.dpo_file or make_dpo_file(args.out, args.dpo_pairs, 42, 0.1)
    figures["dpo_data_s"] = round(time.perf_counter() - started, 1)

    model_args = ModelArguments(base_model=str(packaged_gguf().parent), gguf_file=packaged_gguf().name,
                                chat_template="model", mode="lora", lora_r=16, lora_alpha=32, lora_dropout=0.05,
                                lora_target_modules=["all-linear"])
    data_args = DataArguments(dataset_csv=str(QA_CSV), max_eval_examples=16, max_length=256,
                              max_test_examples=args.max_test_examples)
    train_args = TrainArguments(
        output_dir=str(args.out / "run"), publish_dir=str(args.out / "models" / "sft"), max_steps=args.sft_steps,
        per_device_train_batch_size=8, per_device_eval_batch_size=16, learning_rate=1e-3, lr_scheduler_type="cosine",
        save_steps=args.sft_steps // 2, logging_steps=5, report_to=["none"], quantizations=["q8_0"],
        default_gguf="q8_0", run_harness=True, harness_limit=args.harness_limit, harness_max_tokens=96,
        harness_index_dir=str(REPO_ROOT / "var" / "index"), resume="never", dpo_max_steps=args.dpo_steps,
        dpo_batch_size=4, dpo_learning_rate=5e-5, dpo_beta=0.1,
    )
    sft = main(data_args, train_args, model_args).manifest
    # The same SFT run continued by DPO: resume from the finished SFT checkpoints (no SFT step repeated).
    data_args.dpo_file = str(dpo_file)
    train_args.resume, train_args.harness_base = "auto", False
    train_args.publish_dir = str(args.out / "models" / "sft-dpo")
    dpo = main(data_args, train_args, model_args).manifest
    for name, manifest in (("sft", sft), ("sft_dpo", dpo)):
        figures[name] = {"test_loss": manifest["test_loss"], "heldout_loss": manifest["heldout_loss"],
                         "stages": [{k: v for k, v in s.items() if "losses" not in k} for s in manifest["stages"]],
                         "harness": manifest.get("harness"), "datasets": manifest["datasets"],
                         "base_precision": manifest["base_precision"]}
    (args.out / "figures.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main_cli()

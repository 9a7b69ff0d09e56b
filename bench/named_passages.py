"""What serving a passage for each name the question spells out (`INFERENCE_NAMED_PASSAGES`,
index.RetrievalIndex._with_named_passages) gains and costs.

Retrieval only, the served passages (`INFERENCE_*` settings), the full index. Each figure is measured with it off
(the baseline: the fused ranking alone) and at the configured count, in the same run:
- questions that ask about one name the index holds, in two families written from the index itself: every Jenkins
  system property of the system properties page ("What does `jenkins.CLI.disabled` do?") and a seeded sample of the
  Pipeline Steps Reference's camelCase parameters ("What does the `returnStdout` parameter of the `sh` step do?").
  `named_found` = share whose served passages contain the name as the prompt's note tests it
  (grounded_prompt.unmentioned_terms); where it is not found, the prompt tells the model that no passage mentions it
  and to begin with "The documentation does not cover ...", although the documentation does;
- the golden set: retrieval reach, and how many questions are served other passages;
- the cost: p50 and p95 milliseconds per search over all those questions.

    jenkins-assistant-index build --shared-data ../shared/data --out var/index     # once
    python bench/named_passages.py [--index var/index] [--parameters 300] [--golden-out var/eval/named.jsonl]

`--golden-out` writes the name questions whose name the baseline's passages lack as a golden set, to ask the model
both ways (`INFERENCE_NAMED_PASSAGES=0 make eval EVAL_ARGS="--golden var/eval/named.jsonl ..."`, then without
the variable) and read `false_abstention` (answers that say the documentation does not cover the name). Their one
key fact is the name itself, which every answer repeats: `keyfact_recall` means nothing on this set.

Prints `named_found_<family>_<setting>=`, `retrieval_reach_<setting>=`, `golden_changed=` and
`search_ms_p50_<setting>=` / `search_ms_p95_<setting>=` (setting `off` or `on`).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from jenkins_assistant.common.grounded_prompt import unmentioned_terms
from jenkins_assistant.common.pasted_output import search_text
from jenkins_assistant.evaluation.golden import load_golden
from jenkins_assistant.inference.config import InferenceSettings
from jenkins_assistant.inference.retrieval.embeddings import load_embedder
from jenkins_assistant.inference.retrieval.index import RetrievalIndex

SYSTEM_PROPERTY = re.compile(r"name: ([\w$-]+(?:\.[\w$-]+){2,})")
# The Pipeline Steps Reference titles a step page "name: Task (Pipeline step, Plugin name)" and writes each parameter
# as **`name`**.
STEP_TITLE = re.compile(r"(\w+): .+ \(Pipeline step, .+\)$")
PARAMETER = re.compile(r"\*\*`([a-z]+[A-Z]\w*)`\*\*")


def name_questions(index: RetrievalIndex, parameters: int, seed: int) -> dict[str, list[tuple[str, str]]]:
    """Per family, (question, name) pairs whose name the index holds."""
    properties = sorted({match[1] for chunk in index.chunks if "/system-properties/" in chunk.url
                         for match in SYSTEM_PROPERTY.finditer(chunk.text)})
    pairs = sorted({(title[1], name) for chunk in index.chunks if "/doc/pipeline/steps/" in chunk.url
                    if (title := STEP_TITLE.match(chunk.title)) for name in PARAMETER.findall(chunk.text)})
    sample = random.Random(seed).sample(pairs, min(parameters, len(pairs)))
    return {
        "system_property": [(f"What does `{name}` do?", name) for name in properties],
        "step_parameter": [(f"What does the `{name}` parameter of the `{step}` step do?", name) for step, name in sample],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=REPO_ROOT / "var" / "index")
    parser.add_argument("--parameters", type=int, default=300, help="Step parameters asked about.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--golden-out", type=Path, help="Write the questions the baseline misses as a golden set.")
    args = parser.parse_args()

    settings = InferenceSettings(index_dir=str(args.index))
    if settings.named_passages == 0:
        sys.exit("INFERENCE_NAMED_PASSAGES is 0: nothing to compare with the baseline")
    index = RetrievalIndex.from_settings(settings, load_embedder(settings), index_dir=args.index)
    k = settings.retrieval_k
    families = name_questions(index, args.parameters, args.seed)
    golden = load_golden()
    settings_by_name = {"off": 0, "on": settings.named_passages}

    served: dict[str, dict[str, list[str]]] = {}
    missed: list[tuple[str, str, str]] = []  # (family, question, name) the baseline's passages lack
    for setting, count in settings_by_name.items():
        index._named_passages = count  # the same loaded index both ways (the lowered texts are built for "on")
        times: list[float] = []

        def search(question: str) -> list:
            started = time.perf_counter()
            hits = index.search(search_text(question), k)
            times.append((time.perf_counter() - started) * 1000)  # noqa: B023 (the loop's own list)
            return hits

        for family, questions in families.items():
            found = [not unmentioned_terms(question, [hit.passage for hit in search(question)])
                     for question, _name in questions]
            if setting == "off":
                missed += [(family, question, name) for (question, name), ok in zip(questions, found, strict=True)
                           if not ok]
            print(f"named_found_{family}_{setting}={statistics.mean(found):.4f}  ({len(questions)} questions)")
        reach: list[float] = []
        served[setting] = {}
        for item in golden:
            hits = search(item.question)
            served[setting][item.id] = [hit.chunk.text for hit in hits]
            if item.answerable:
                reach.append(sum(any(pattern.search(hit.chunk.text) for hit in hits) for pattern in item.patterns)
                             / len(item.patterns))
        print(f"retrieval_reach_{setting}={statistics.mean(reach):.4f}")
        times.sort()
        print(f"search_ms_p50_{setting}={statistics.median(times):.1f}")
        print(f"search_ms_p95_{setting}={times[int(0.95 * (len(times) - 1))]:.1f}")
    changed = [item_id for item_id in served["off"] if served["off"][item_id] != served["on"][item_id]]
    print(f"golden_changed={len(changed)}  {' '.join(changed)}")
    if args.golden_out:
        args.golden_out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.golden_out, "w", encoding="utf-8") as out:
            for number, (family, question, name) in enumerate(missed):
                out.write(json.dumps({
                    "id": f"{family}-{number}", "category": family, "question": question, "split": "tune",
                    "answerable": True, "reference_answer": f"The documentation describes `{name}`.",
                    "source_urls": [], "key_facts": [re.escape(name)]}) + "\n")
        print(f"wrote {len(missed)} questions to {args.golden_out}")


if __name__ == "__main__":
    main()

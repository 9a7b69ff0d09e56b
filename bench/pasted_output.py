"""Retrieval reach of golden questions asked the way forums get them: with console output pasted into them.

Two sets, retrieval only (the served passages, `INFERENCE_*` settings), each searched three ways: the question as
written (the ceiling), the pasted text searched whole (the baseline: what the service searched before), and the
text as the service searches it now (`pasted_output.search_text`: console output reduced to its error lines).
- `error`: the golden questions that carry an error (an exception, "No such DSL method", ...), the error line put
  inside ~25 lines of Jenkins console output (the start of a log of tests/build_log/logs, the error, stack frames);
- `paste`: every answerable golden question followed by 20 lines of such a log that say nothing failed.
The log lines are taken from the build-log tests' logs, with every line that says something failed left out.

    jenkins-assistant-index build --shared-data ../shared/data --out var/index     # once
    python bench/pasted_output.py [--index var/index]

Prints `reach_<set>_<way>=` for each, then `pasted_reach_gain=` (reduced / whole, both sets pooled).
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from jenkins_assistant.common.pasted_output import search_text
from jenkins_assistant.evaluation.golden import load_golden
from jenkins_assistant.evaluation.scoring import score_answer
from jenkins_assistant.inference.config import InferenceSettings
from jenkins_assistant.inference.retrieval.embeddings import load_embedder
from jenkins_assistant.inference.retrieval.index import RetrievalIndex

LOGS = REPO_ROOT / "tests/build_log/logs"
ERROR_IN_QUESTION = re.compile(r"\w+(?:Exception|Error)\b|No such DSL|There are no nodes|Waiting for next available|"
                               r"No valid crumb|Scripts not permitted")
SAYS_FAILED = re.compile(r"error|err!|fail|exception|denied|cannot|could not|space left|warn|timeout", re.IGNORECASE)
STACK = ["\tat org.jenkinsci.plugins.workflow.cps.DSL.invokeMethod(DSL.java:219)",
         "\tat org.jenkinsci.plugins.workflow.cps.CpsScript.invokeMethod(CpsScript.java:124)",
         "\tat WorkflowScript.run(WorkflowScript:31)", "\tat ___cps.transform___(Native Method)"]
STAMP = "[2024-05-01T10:00:09.343Z] "


def quiet_log_lines(rng: random.Random, count: int) -> list[str]:
    logs = sorted(LOGS.glob("*.log"))
    log = logs[rng.randrange(len(logs))]
    return [line for line in log.read_text().splitlines()[:40] if not SAYS_FAILED.search(line)][:count]


def with_error_in_output(question: str, rng: random.Random) -> str:
    match = ERROR_IN_QUESTION.search(question)
    line_start = question.rfind("\n", 0, match.start()) + 1
    error, prose = question[line_start:].strip(), question[:match.start()].strip()
    output = quiet_log_lines(rng, 18) + [STAMP + "[Pipeline] End of Pipeline", STAMP + error]
    output += [STAMP + frame for frame in STACK] + [STAMP + "Finished: FAILURE"]
    intro = prose if len(prose) > 20 else "Our build started failing today."
    return f"{intro}\n\nConsole output:\n\n```\n" + "\n".join(output) + "\n```\n\nWhat does it mean and how do I fix it?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", default="var/index")
    args = parser.parse_args()
    settings = InferenceSettings(index_dir=args.index)
    index = RetrievalIndex.from_settings(settings, load_embedder(settings))

    def reach(item, query: str) -> float:
        texts = [hit.passage.text for hit in index.search(query, settings.retrieval_k)]
        return score_answer(item, "\n\n".join(texts), texts, len(texts)).retrieval_reach

    answerable = [item for item in load_golden() if item.answerable]
    rng = random.Random(0)
    sets = {
        "error": [(item, with_error_in_output(item.question, rng)) for item in answerable
                  if ERROR_IN_QUESTION.search(item.question)],
        "paste": [(item, f"{item.question}\n\nConsole output:\n```\n" + "\n".join(quiet_log_lines(rng, 20)) + "\n```")
                  for item in answerable],
    }
    pooled = {"whole": [], "reduced": []}
    for name, pairs in sets.items():
        ways = {"written": [reach(item, item.question) for item, _ in pairs],
                "whole": [reach(item, text) for item, text in pairs],
                "reduced": [reach(item, search_text(text)) for item, text in pairs]}
        print(f"{name}: {len(pairs)} questions")
        for way, values in ways.items():
            print(f"reach_{name}_{way}={statistics.mean(values):.3f}")
        pooled["whole"] += ways["whole"]
        pooled["reduced"] += ways["reduced"]
    print(f"pasted_reach_gain={statistics.mean(pooled['reduced']) / statistics.mean(pooled['whole']):.3f}")


if __name__ == "__main__":
    main()

"""What ranking rarely installed plugins down (`INFERENCE_PLUGIN_PRIOR`, index.plugin_prior_factors) gains and costs.

Retrieval only, the served passages (`INFERENCE_*` settings), the index built with the update center's records (each
chunk knows its plugin's installs). Each figure is measured with the prior off (the baseline: ranking by text alone)
and at the configured prior, in the same run:
- the golden set's retrieval reach (key facts in the passages), all answerable questions and per split;
- the cost: whether a rarely installed plugin's step is still served when a user asks about it. For 60 Pipeline
  steps drawn from each band of installs, three questions: the step's task with its plugin's name, the task alone,
  and the step's name ("What parameters does the X step take?"); found = a passage of that step's section of
  the reference among the served ones.

    jenkins-assistant-index build --shared-data ../shared/data --out var/index     # once
    python bench/plugin_prior.py [--index var/index]

Prints `retrieval_reach_<prior>=`, `retrieval_reach_<split>_<prior>=` and `step_found_<band>_<question>_<prior>=`.
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

from jenkins_assistant.evaluation.golden import load_golden
from jenkins_assistant.evaluation.retrieval_only import run_retrieval_only
from jenkins_assistant.inference.config import InferenceSettings
from jenkins_assistant.inference.retrieval.embeddings import load_embedder
from jenkins_assistant.inference.retrieval.index import RetrievalIndex

BANDS = {"under500": (0, 500), "500to5000": (500, 5000), "over5000": (5000, 10**9)}
STEP_PAGE = re.compile(r"https://www\.jenkins\.io/doc/pipeline/steps/[^/#]+/#")
# The Pipeline Steps Reference titles a step page "name: Task (Pipeline step, Plugin name)".
STEP_TITLE = re.compile(r"(\S+): (.+) \(Pipeline step, (.+)\)$")


def step_questions(index: RetrievalIndex, per_band: int) -> dict[str, list[tuple[str, dict[str, str]]]]:
    """Per band of installs: (the step page's URL, {question kind: question}) for `per_band` steps drawn at random."""
    pages: dict[str, tuple[str, int]] = {}
    for chunk in index.chunks:
        if STEP_PAGE.match(chunk.url) and chunk.plugin_installs is not None and STEP_TITLE.match(chunk.title):
            pages.setdefault(chunk.title, (chunk.url, chunk.plugin_installs))
    rng = random.Random(1)
    drawn = {}
    for band, (low, high) in BANDS.items():
        titles = sorted(title for title, (_url, installs) in pages.items() if low <= installs < high)
        questions = []
        for title in rng.sample(titles, min(per_band, len(titles))):
            step, task, plugin = STEP_TITLE.match(title).groups()
            task = task[0].lower() + task[1:]
            questions.append((pages[title][0], {
                "plugin_and_task": f"How do I {task} with the {plugin} in a Jenkins pipeline?",
                "task": f"How can a Jenkins pipeline {task}?",
                "step_name": f"What parameters does the {step} step take?",
            }))
        drawn[band] = questions
    return drawn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", default="var/index")
    parser.add_argument("--steps-per-band", type=int, default=60)
    args = parser.parse_args()
    settings = InferenceSettings(index_dir=args.index)
    embedder = load_embedder(settings)
    by_prior = {prior: settings.model_copy(update={"plugin_prior": prior}) for prior in sorted({0.0, settings.plugin_prior})}
    indexes = {prior: RetrievalIndex.from_settings(prior_settings, embedder) for prior, prior_settings in by_prior.items()}
    if not indexes[max(indexes)].ranks_by_installs:
        sys.exit(f"{args.index} has no install counts (build it with the jenkins-update-center source) or the prior is 0")

    # The golden set as `jenkins-assistant eval --mode retrieval` scores it, with the prior off and on.
    answerable = [item for item in load_golden() if item.answerable]
    for prior, prior_settings in by_prior.items():
        results = run_retrieval_only(answerable, Path(args.index), 0, settings.hybrid, prior_settings)
        print(f"retrieval_reach_{prior}={statistics.mean(r.score.retrieval_reach for r in results):.3f}")
        for split in sorted({r.split for r in results}):
            values = [r.score.retrieval_reach for r in results if r.split == split]
            print(f"retrieval_reach_{split}_{prior}={statistics.mean(values):.3f}")

    for band, questions in step_questions(indexes[0.0], args.steps_per_band).items():
        print(f"{band}: {len(questions)} steps")
        for kind in ("plugin_and_task", "task", "step_name"):
            for prior, index in indexes.items():
                found = [any(hit.chunk.url == url for hit in index.search(asked[kind], settings.retrieval_k))
                         for url, asked in questions]
                print(f"step_found_{band}_{kind}_{prior}={statistics.mean(found):.3f}")


if __name__ == "__main__":
    main()

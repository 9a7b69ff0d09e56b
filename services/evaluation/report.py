"""Aggregates of an evaluation run (overall and per category), its JSON and markdown forms, and the paired
comparison of two runs over the items both answered."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

# The figures printed as `name=value` lines, in this order.
FIGURES = ("keyfact_recall", "keyfact_recall_generated", "retrieval_reach", "sourced", "citation_valid", "cited",
           "abstention", "false_abstention", "ttft_p50_s", "tokens_per_s", "prompt_tokens", "completion_tokens",
           "stopped_repeating", "stopped_reading_out", "errors", "items")


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def aggregate(results: list[dict]) -> dict:
    """results: ItemResult.to_dict() records."""
    answerable = [r for r in results if r["answerable"] and not r["error"]]
    unanswerable = [r for r in results if not r["answerable"] and not r["error"]]
    ok = [r for r in results if not r["error"]]
    ttfts = [r["ttft_s"] for r in ok if r["ttft_s"] > 0]
    return {
        "keyfact_recall": _mean([r["score"]["keyfact_recall"] for r in answerable]),
        "keyfact_recall_generated": _mean([_score(r, "keyfact_recall_generated") for r in answerable]),
        "retrieval_reach": _mean([r["score"]["retrieval_reach"] for r in answerable]),
        "sourced": _mean([float(r["score"]["sourced"]) for r in answerable]),
        "citation_valid": _mean([float(r["score"]["citation_valid"]) for r in ok]),
        "cited": _mean([float(r["score"]["cited"]) for r in answerable]),
        "abstention": _mean([float(r["score"]["abstained"]) for r in unanswerable]),
        "false_abstention": _mean([float(r["score"]["abstained"]) for r in answerable]),
        "ttft_p50_s": round(statistics.median(ttfts), 3) if ttfts else None,
        "tokens_per_s": _mean([r["tokens_per_s"] for r in ok if r["tokens_per_s"] > 0]),
        "prompt_tokens": _mean([float(r["prompt_tokens"]) for r in ok]),
        "completion_tokens": _mean([float(r["completion_tokens"]) for r in ok]),
        # Answers the service stopped where they began to repeat themselves (RepetitionGuard).
        "stopped_repeating": _mean([float(r["finish_reason"] == "FINISH_REASON_REPETITION") for r in ok]),
        # ... and where they began to read their passages out one after another (ReadoutGuard).
        "stopped_reading_out": _mean([float(r["finish_reason"] == "FINISH_REASON_READOUT") for r in ok]),
        "errors": len(results) - len(ok),
        "items": len(results),
    }


def by_category(results: list[dict]) -> dict[str, dict]:
    categories: dict[str, list[dict]] = {}
    for result in results:
        categories.setdefault(result["category"], []).append(result)
    return {name: aggregate(items) for name, items in sorted(categories.items())}


def figure_lines(summary: dict, prefix: str = "") -> list[str]:
    return [f"{prefix}{name}={'nan' if summary[name] is None else summary[name]}" for name in FIGURES]


def markdown_table(summary: dict, categories: dict[str, dict]) -> str:
    columns = ("keyfact_recall", "keyfact_recall_generated", "retrieval_reach", "sourced", "citation_valid",
               "abstention", "ttft_p50_s", "prompt_tokens", "items")
    rows = [("**all**", summary), *categories.items()]
    lines = ["| category | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, figures in rows:
        cells = ["" if figures[c] is None else f"{figures[c]:g}" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(path: Path, meta: dict, results: list[dict]) -> dict:
    summary = aggregate(results)
    report = {"meta": meta, "summary": summary, "by_category": by_category(results), "items": results}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    path.with_suffix(".md").write_text(
        f"# Answer quality: {meta.get('label', '')}\n\n{json.dumps(meta)}\n\n"
        + markdown_table(summary, report["by_category"]) + "\n", encoding="utf-8")
    return report


def _score(result: dict, name: str) -> float:
    if name == "keyfact_recall_generated":  # absent from reports written before answers quoted their sources
        return result["score"].get(name, result["score"]["keyfact_recall"])
    return result["score"][name]


def sign_test_p(better: int, worse: int) -> float:
    """Two-sided exact sign test of paired changes: the chance of a split at least this uneven between items that
    got better and items that got worse if a change only moved answers at random (ties, the unchanged items, are
    left out). Why: on this set a change that touches the prompt moves 15-25 answers either way, so "9 better, 15
    worse" needs its p to be read as noise or not. The binomial sum itself, so the CLI needs no scipy."""
    n = better + worse
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(better, worse) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def compare(a: dict, b: dict) -> tuple[list[str], str]:
    """Paired deltas (b - a) over the items both runs answered: figure lines and a markdown table."""
    a_items = {r["id"]: r for r in a["items"] if not r["error"]}
    b_items = {r["id"]: r for r in b["items"] if not r["error"]}
    shared = [i for i in a_items if i in b_items]
    lines = [f"paired_items={len(shared)}"]
    table = ["| figure | A | B | B - A | items better | items worse | sign test p |", "|---|---|---|---|---|---|---|"]
    for name, answerable in (("keyfact_recall", True), ("keyfact_recall_generated", True), ("retrieval_reach", True),
                             ("abstained", False)):
        pairs = [(_score(a_items[i], name), _score(b_items[i], name)) for i in shared
                 if a_items[i]["answerable"] == answerable]
        if not pairs:
            continue
        mean_a = statistics.fmean(float(x) for x, _ in pairs)
        mean_b = statistics.fmean(float(y) for _, y in pairs)
        better = sum(1 for x, y in pairs if float(y) > float(x))
        worse = sum(1 for x, y in pairs if float(y) < float(x))
        label = name if answerable else "abstention"
        p = sign_test_p(better, worse)
        lines += [f"delta_{label}={mean_b - mean_a:+.4f}", f"sign_p_{label}={p:.3f}"]
        table.append(f"| {label} | {mean_a:.3f} | {mean_b:.3f} | {mean_b - mean_a:+.3f} | {better} | {worse} "
                     f"| {p:.2f} |")
    ttft_a = [a_items[i]["ttft_s"] for i in shared if a_items[i]["ttft_s"] > 0]
    ttft_b = [b_items[i]["ttft_s"] for i in shared if b_items[i]["ttft_s"] > 0]
    if ttft_a and ttft_b:
        ratio = statistics.median(ttft_b) / statistics.median(ttft_a)
        lines.append(f"ttft_p50_ratio={ratio:.3f}")
        table.append(f"| ttft_p50_s | {statistics.median(ttft_a):.2f} | {statistics.median(ttft_b):.2f} | "
                     f"x{ratio:.2f} | | | |")
    return lines, "\n".join(table)

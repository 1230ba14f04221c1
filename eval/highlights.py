"""Whether the sentences the service marks show a gold quote: ``answer_hit`` and ``highlight_hit@5``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from eval.relevance import SpansPerGold, covered_golds, covers_pieces, gold_id

__all__ = ["HIGHLIGHT_K", "HIGHLIGHT_METRICS", "aggregate_highlights", "score_highlights"]

HIGHLIGHT_K = 5  # results a reader scans; the k of hit@5, the gated metric
HIGHLIGHT_METRICS = ("answer_hit", f"highlight_hit@{HIGHLIGHT_K}")


def _shows(result: Mapping[str, Any], per_gold: SpansPerGold, golds: Iterable[int]) -> bool:
    """True when the result's highlights, counted together, cover one of ``golds``."""
    source = result["citation"]["source"]
    pieces = [(int(h["start"]), int(h["end"])) for h in result.get("highlights") or ()]
    return any(covers_pieces(span, source, pieces) for i in golds for span in per_gold[i])


def score_highlights(response: Mapping[str, Any], per_gold: SpansPerGold) -> dict[str, Any] | None:
    """None without any highlight (switched off, or an older server): not measured, rather than a miss.

    A result relevant only through an ``also_in`` copy is left out: its highlights point into its own file.
    """
    results: Sequence[Mapping[str, Any]] = response.get("results") or ()
    if not any(r.get("highlights") for r in results):
        return None
    answer = response.get("answer")
    answer_covers = covered_golds(answer, per_gold) if answer else []
    relevant = highlighted = 0
    for result in results[:HIGHLIGHT_K]:
        own = covered_golds({"citation": result["citation"]}, per_gold)  # also_in left out on purpose
        if own:
            relevant += 1
            highlighted += _shows(result, per_gold, own)
    return {
        "answer_covers": [gold_id(i) for i in answer_covers],
        "relevant": relevant,
        "highlighted": highlighted,
    }


def _means(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    measured = [r["highlight"] for r in records if r.get("highlight") is not None]
    with_relevant = [h for h in measured if h["relevant"]]
    return {
        "n": len(measured),
        "answer_hit": sum(1 for h in measured if h["answer_covers"]) / len(measured) if measured else None,
        f"n_highlight@{HIGHLIGHT_K}": len(with_relevant),
        f"highlight_hit@{HIGHLIGHT_K}": (
            sum(h["highlighted"] / h["relevant"] for h in with_relevant) / len(with_relevant) if with_relevant else None
        ),
    }


def aggregate_highlights(records: Iterable[Mapping[str, Any]], kinds: Sequence[str]) -> dict[str, Any]:
    """Macro averages, overall and per kind; ``n`` and ``n_highlight@5`` say how many questions each averages."""
    answerable = [r for r in records if r["metrics"] is not None]
    by_kind = {kind: _means([r for r in answerable if r["kind"] == kind]) for kind in kinds}
    return {"overall": _means(answerable), "by_kind": {k: v for k, v in by_kind.items() if v["n"]}}

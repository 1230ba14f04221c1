"""Whether the sentences the service marks hold the answer: ``answer_hit`` and ``highlight_hit@5``.

The ranking metrics ask whether a relevant *passage* comes back. A reader looks first at the
response's ``answer`` sentence and at each result's highlighted sentences, so these two
numbers ask whether *those* show a gold quote. Both use the relevance rule of
:mod:`eval.relevance` -- the marked text overlaps at least half of a gold quote's characters,
in any file where the quote occurs -- so "shows the quote" means the same as for passages.

* ``answer_hit`` (per answerable question, 0 or 1): the top-level ``answer`` sentence covers
  some gold quote of the question; no answer is a miss. Averaged over every answerable
  question, so it is bounded by retrieval (the answer is picked among the top 3 results).
* ``highlight_hit@5`` (per answerable question, a share): among the top :data:`HIGHLIGHT_K`
  results whose *own* passage covers a gold quote, the share whose highlighted sentences,
  counted together, cover one of the gold quotes that passage covers. Averaged over the
  questions that have at least one such result (its ``n`` says how many), so it measures the
  highlighter, not the ranking. A result relevant only through an ``also_in`` copy is left
  out: its highlights point into its own file, where the quote is not.

A response without any highlight (highlighting switched off, or a server from before
highlights) is not measured: the question's record holds None and the averages skip it.
"""

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
    """One answerable question's highlight record, or None when the response has no highlights.

    ``answer_covers`` lists the gold ids the answer sentence covers; ``relevant`` counts the
    top-k results whose own passage covers a gold quote, ``highlighted`` those of them whose
    highlights cover one of the same quotes.
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
    """Macro averages over the answerable questions, overall and per kind (each question weighs the same).

    ``n`` counts the questions measured for ``answer_hit``, ``n_highlight@5`` those averaged
    for ``highlight_hit@5``; a value is None when nothing was measured.
    """
    answerable = [r for r in records if r["metrics"] is not None]
    by_kind = {kind: _means([r for r in answerable if r["kind"] == kind]) for kind in kinds}
    return {"overall": _means(answerable), "by_kind": {k: v for k, v in by_kind.items() if v["n"]}}

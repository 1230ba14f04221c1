"""Scoring the generated answer (POST /answer) on the question set: ``answer_hit`` and its supported share.

``answer_hit`` keeps the extractive answer's rule (eval/highlights.py): the answer covers a gold
quote by the overlap rule of eval/relevance.py. A generated sentence has no offsets of its own, so
it is located by its evidence: the passage sentence the citation check found it in. Only
*supported* sentences count; an answer that states the gold fact without a valid citation to it
is not a hit (a reader could not check it either).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from eval.relevance import SpansPerGold, covered_golds, gold_id

__all__ = ["ANSWER_TOP_K", "GENERATED_METRICS", "aggregate_generated", "generated_table", "score_generated"]

GENERATED_METRICS = ("answer_hit", "supported_share", "fully_supported")
ANSWER_TOP_K = 5  # passages sent to the model: POST /answer's default top_k, what a user gets
PREVIEW_CHARS = 300


def score_generated(response: Mapping[str, Any], per_gold: SpansPerGold) -> dict[str, Any]:
    """One question's generated answer: which gold quotes its supported sentences rest on, and how much of it is supported."""
    sentences = list(response.get("sentences") or ())
    covers: list[int] = []
    for s in sentences:
        evidence = s.get("evidence")
        if s.get("supported") and evidence:
            covers += [i for i in covered_golds({"citation": evidence["citation"]}, per_gold) if i not in covers]
    return {
        "answer": str(response.get("answer", ""))[:PREVIEW_CHARS],
        "model": response.get("model"),
        "sentences": len(sentences),
        "supported_sentences": sum(1 for s in sentences if s.get("supported")),
        "supported": bool(response.get("supported")),
        "invalid_citations": len(response.get("invalid_citations") or ()),
        "answer_covers": [gold_id(i) for i in covers],
        "took_ms": response.get("took_ms"),
    }


def _means(scored: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    with_sentences = [g for g in scored if g["sentences"]]
    return {
        "n": len(scored),
        "answer_hit": sum(1 for g in scored if g["answer_covers"]) / len(scored) if scored else None,
        # per answer, supported sentences / sentences, averaged over answers that have a sentence
        "supported_share": (sum(g["supported_sentences"] / g["sentences"] for g in with_sentences) / len(with_sentences)
                            if with_sentences else None),
        "fully_supported": sum(1 for g in scored if g["supported"]) / len(scored) if scored else None,
    }


def aggregate_generated(records: Iterable[Mapping[str, Any]], kinds: Sequence[str]) -> dict[str, Any]:
    """Means over answerable questions, overall and per kind."""
    answerable = [r for r in records if r.get("metrics") is not None and r.get("generated") is not None]
    by_kind = {kind: _means([r["generated"] for r in answerable if r["kind"] == kind]) for kind in kinds}
    return {"overall": _means([r["generated"] for r in answerable]), "by_kind": {k: v for k, v in by_kind.items() if v["n"]}}


def generated_table(generated: Mapping[str, Any] | None) -> str | None:
    from eval.tables import table

    if not generated or not generated["overall"]["n"]:
        return None

    def rate(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    rows = [[f"**{name}**" if name == "overall" else name, row["n"], *(rate(row[m]) for m in GENERATED_METRICS)]
            for name, row in [("overall", generated["overall"]), *generated["by_kind"].items()]]
    return table(["generated", "n", *GENERATED_METRICS], rows)

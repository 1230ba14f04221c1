"""Ranking metrics over plain dicts and lists, defined as trec_eval defines them."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

__all__ = [
    "MEASURES",
    "evaluate",
    "first_relevant_rank",
    "hit_at",
    "mean",
    "ndcg_at",
    "recall_at",
    "reciprocal_rank_at",
]

Qrels = Mapping[str, Mapping[str, int]]
Run = Mapping[str, Sequence[str]]


def _check_k(k: int) -> None:
    # bool is an int subclass; hit@True is a bug, not a cutoff.
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"cutoff k must be a positive integer, got {k!r}")


def _check_ranking(ranking: Sequence[str], query_id: str | None = None) -> None:
    """A duplicate would count twice in DCG, and trec_eval and ranx disagree on collapsing it: the caller must fix its run."""
    where = f"query {query_id!r}: " if query_id is not None else ""
    if isinstance(ranking, str):
        # A bare string is a Sequence[str] of characters; scoring it would be nonsense.
        raise TypeError(f"{where}ranking must be a sequence of doc ids, not a single string")
    seen: set[str] = set()
    for doc_id in ranking:
        if doc_id in seen:
            raise ValueError(f"{where}ranking lists doc {doc_id!r} more than once")
        seen.add(doc_id)


def _num_relevant(rels: Mapping[str, int]) -> int:
    return sum(1 for grade in rels.values() if grade > 0)


def first_relevant_rank(rels: Mapping[str, int], ranking: Sequence[str]) -> int | None:
    """1-based rank of the first document with a positive grade (trec_eval's ``relevance_level`` 1), or None."""
    _check_ranking(ranking)
    for rank, doc_id in enumerate(ranking, start=1):
        if rels.get(doc_id, 0) > 0:
            return rank
    return None


def hit_at(rels: Mapping[str, int], ranking: Sequence[str], k: int) -> float:
    """1.0 if a relevant document is in the top ``k`` (trec_eval ``success_k``, ranx ``hit_rate@k``)."""
    _check_k(k)
    rank = first_relevant_rank(rels, ranking)
    return 1.0 if rank is not None and rank <= k else 0.0


def recall_at(rels: Mapping[str, int], ranking: Sequence[str], k: int) -> float:
    """|relevant in top k| / |relevant judged| (trec_eval ``recall_k``); undefined, so ValueError, without relevant documents."""
    _check_k(k)
    _check_ranking(ranking)
    total = _num_relevant(rels)
    if total == 0:
        raise ValueError("recall is undefined for a query with no relevant document")
    found = sum(1 for doc_id in ranking[:k] if rels.get(doc_id, 0) > 0)
    return found / total


def reciprocal_rank_at(rels: Mapping[str, int], ranking: Sequence[str], k: int) -> float:
    """trec_eval's ``recip_rank`` on the run cut at ``k`` (ranx ``mrr@k``): a document nobody reads earns nothing."""
    _check_k(k)
    rank = first_relevant_rank(rels, ranking)
    return 1.0 / rank if rank is not None and rank <= k else 0.0


def ndcg_at(rels: Mapping[str, int], ranking: Sequence[str], k: int) -> float:
    """trec_eval's ``ndcg_cut_k``: linear gain, the ideal ranking built from every judged grade, not only the retrieved ones."""
    _check_k(k)
    _check_ranking(ranking)
    dcg = 0.0
    for rank, doc_id in enumerate(ranking[:k], start=1):
        grade = rels.get(doc_id, 0)
        if grade > 0:
            dcg += grade / math.log2(rank + 1)
    ideal_grades = sorted((g for g in rels.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(rank + 1) for rank, g in enumerate(ideal_grades, start=1))
    return dcg / idcg if idcg > 0 else 0.0


# measure name -> function(rels, ranking, k). Names follow the "name@k" convention of ranx.
MEASURES = {
    "hit": hit_at,
    "recall": recall_at,
    "mrr": reciprocal_rank_at,
    "ndcg": ndcg_at,
}

_MEASURE_RE = re.compile(r"^([a-z]+)@([1-9][0-9]*)$")


def _parse_measure(measure: str) -> tuple[str, int]:
    match = _MEASURE_RE.match(measure) if isinstance(measure, str) else None
    if match is None or match.group(1) not in MEASURES:
        accepted = ", ".join(f"{name}@k" for name in MEASURES)
        raise ValueError(f"unknown measure {measure!r}; accepted: {accepted} (k a positive integer)")
    return match.group(1), int(match.group(2))


def evaluate(qrels: Qrels, run: Run, measures: Sequence[str]) -> dict[str, dict[str, float]]:
    """``{query_id: {measure: value}}`` like pytrec_eval; the qrels decide which queries count (docs/evaluation.md)."""
    if isinstance(measures, str):
        measures = [measures]
    parsed = [(measure, *_parse_measure(measure)) for measure in measures]
    if not parsed:
        raise ValueError("no measures requested")
    for query_id, ranking in run.items():
        _check_ranking(ranking, query_id)

    results: dict[str, dict[str, float]] = {}
    for query_id, rels in qrels.items():
        if _num_relevant(rels) == 0:
            continue
        ranking = run.get(query_id, ())
        results[query_id] = {
            measure: MEASURES[name](rels, ranking, k) for measure, name, k in parsed
        }
    return results


def mean(per_query: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Macro average; refuses no queries (not 0) and queries with different measures (incomparable means)."""
    if not per_query:
        raise ValueError("no queries to average (were all of them without relevant documents?)")
    first_id, first = next(iter(per_query.items()))
    names = list(first)
    totals = dict.fromkeys(names, 0.0)
    for query_id, values in per_query.items():
        if set(values) != set(names):
            raise ValueError(
                f"query {query_id!r} has measures {sorted(values)}, "
                f"query {first_id!r} has {sorted(names)}"
            )
        for name in names:
            totals[name] += values[name]
    return {name: total / len(per_query) for name, total in totals.items()}

"""Ranking metrics over plain dicts and lists: the one place that decides what a score means.

This module owns the definitions of the numbers the evaluation reports (hit@k, recall@k,
MRR@k, nDCG@k) and how per-query values are aggregated. It deliberately has no dependency
on numpy, a retriever or a collection format, so every definition can be read in one
screen and cross-checked line by line against trec_eval (via ``pytrec_eval``) and ``ranx``
in ``tests/test_metrics.py``.

Data shapes are the ones those tools use, so nothing has to be translated to compare:

* qrels: ``dict[query_id, dict[doc_id, int]]`` -- graded relevance; ``0`` (or a negative
  grade) means *judged not relevant*, which every metric here treats exactly like an
  unjudged document, as trec_eval does.
* a ranking: an ordered ``Sequence[str]`` of doc ids, rank 1 first. A ranking carries no
  scores on purpose: the order is the only thing the metrics read, so tie-breaking is the
  retriever's decision, made once, and not re-done differently by each metric tool.
"""

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
    """Reject rankings the metrics would silently mis-score.

    A duplicate would be counted twice by DCG and could push recall above 1, and trec_eval
    and ranx collapse duplicates in different ways, so there is no "standard" answer to
    fall back on: the caller must fix its run.
    """
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
    """1-based rank of the first document with relevance > 0, or None if none is ranked.

    Any positive grade counts (trec_eval's default ``relevance_level`` of 1), so graded and
    binary qrels give the same hit and MRR values.
    """
    _check_ranking(ranking)
    for rank, doc_id in enumerate(ranking, start=1):
        if rels.get(doc_id, 0) > 0:
            return rank
    return None


def hit_at(rels: Mapping[str, int], ranking: Sequence[str], k: int) -> float:
    """1.0 if a relevant document is in the top ``k``, else 0.0 (trec_eval ``success_k``).

    Answers "would a user reading k results see at least one good one", which is what a
    citation-first service promises; it is also ranx's ``hit_rate@k``.
    """
    _check_k(k)
    rank = first_relevant_rank(rels, ranking)
    return 1.0 if rank is not None and rank <= k else 0.0


def recall_at(rels: Mapping[str, int], ranking: Sequence[str], k: int) -> float:
    """|relevant in top k| / |relevant judged| (trec_eval ``recall_k``).

    The denominator is every relevant judgment, not ``min(k, |relevant|)``: that is the
    trec_eval and ranx definition, so a query with 12 relevant docs cannot reach 1.0 at
    k=10. A query with no relevant document has no defined recall (0/0); rather than
    inventing 0 or 1, this raises ``ValueError`` and callers exclude such queries.
    """
    _check_k(k)
    _check_ranking(ranking)
    total = _num_relevant(rels)
    if total == 0:
        raise ValueError("recall is undefined for a query with no relevant document")
    found = sum(1 for doc_id in ranking[:k] if rels.get(doc_id, 0) > 0)
    return found / total


def reciprocal_rank_at(rels: Mapping[str, int], ranking: Sequence[str], k: int) -> float:
    """1 / rank of the first relevant document if it is within the top ``k``, else 0.0.

    Equals trec_eval's ``recip_rank`` on the run truncated to k (trec_eval has no cutoff
    for it) and ranx's ``mrr@k``. The cutoff matters: without it a relevant document at
    rank 400 still earns 0.0025, rewarding rankings nobody reads.
    """
    _check_k(k)
    rank = first_relevant_rank(rels, ranking)
    return 1.0 / rank if rank is not None and rank <= k else 0.0


def ndcg_at(rels: Mapping[str, int], ranking: Sequence[str], k: int) -> float:
    """trec_eval's ``ndcg_cut_k``: DCG@k of the ranking / DCG@k of the ideal ranking.

    ``DCG@k = sum_{rank=1..k} gain(doc at rank) / log2(rank + 1)`` with
    ``gain = relevance grade`` (linear, negative grades count 0). The ideal DCG ranks *all*
    judged grades of the query from the qrels in descending order, cut at k -- not just the
    relevant documents the run happened to retrieve, which would let a run that misses
    relevant documents score 1.0.

    Linear gain is what trec_eval and ranx's ``ndcg`` use; the exponential
    ``2**grade - 1`` (Burges; ranx ``ndcg_burges``) weights top grades more heavily and
    gives different numbers, so published trec_eval baselines would not be comparable.
    Returns 0.0 when the query has no relevant document (the ideal DCG is 0), as trec_eval
    does; :func:`evaluate` skips such queries anyway.
    """
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
    """Per-query scores, shaped like pytrec_eval's output: ``{query_id: {measure: value}}``.

    Which queries are scored is decided by the qrels, not the run:

    * a query in qrels with **no relevant document** is skipped (absent from the output):
      recall is undefined for it and every other metric would be a free 0 that only measures
      the judging, not the retriever. trec_eval and ranx would both need it removed too.
    * a query in qrels that is **missing from the run** scores 0 on every measure: a system
      that returns nothing for a question has failed it (trec_eval would silently drop it,
      flattering the system).
    * a query in the run but not in qrels is ignored: it cannot be judged.

    Every ranking in the run is checked for duplicates, naming the query.
    """
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
    """Macro average over queries: each query weighs the same, whatever its judgment count.

    Raises ``ValueError`` on an empty input (an average over no queries is a caller bug,
    not 0) and when queries disagree on which measures they carry, since averaging
    different query sets per measure would make the measures incomparable.
    """
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

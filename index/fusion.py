"""Combine ranked lists from different retrievers into one ranking. Pure functions over row ids."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from index.config import RRF_K
from index.ties import TIE_TOLERANCE, Key, ranked


def reciprocal_rank_fusion(
    rankings: Mapping[str, Sequence[int]], weights: Mapping[str, float] | None = None, k: int = RRF_K, key: Key = None
) -> list[tuple[int, float]]:
    """score(d) = Σ_lists w_list / (k + rank_list(d)), ranks 1-based; ties ordered by ``key`` (index.ties).

    Uses ranks only, so scores on incomparable scales (BM25, cosine) need no calibration.
    """
    fused: dict[int, float] = {}
    for name, rows in rankings.items():
        weight = 1.0 if weights is None else weights.get(name, 1.0)
        for rank, row in enumerate(rows, 1):
            fused[row] = fused.get(row, 0.0) + weight / (k + rank)
    return ranked(fused.items(), key)


def weighted_score_fusion(
    scored: Mapping[str, Sequence[tuple[int, float]]], weights: Mapping[str, float], key: Key = None
) -> list[tuple[int, float]]:
    """score(d) = Σ_lists w_list · minmax_list(score_list(d)); a row missing from a list scores 0 there.

    Keeps how *much* better one candidate is than the next, which rank fusion throws away.
    """
    fused: dict[int, float] = {}
    for name, pairs in scored.items():
        if not pairs:
            continue
        values = [s for _, s in pairs]
        low, high = min(values), max(values)
        span = high - low
        for row, score in pairs:
            normalised = (score - low) / span if span > TIE_TOLERANCE else 1.0  # all tied: all best
            fused[row] = fused.get(row, 0.0) + weights.get(name, 1.0) * normalised
    return ranked(fused.items(), key)

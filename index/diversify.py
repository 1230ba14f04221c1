"""Maximal marginal relevance: trade a little relevance for results that say different things."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from index.ties import TIE_TOLERANCE, ranked


def mmr(relevance: Sequence[float], vectors: np.ndarray, k: int, lambda_: float) -> list[int]:
    """Indices into the candidates, in selection order (Carbonell & Goldstein, SIGIR 1998).

    next = argmax_c  λ·rel(c) − (1−λ)·max_{s∈selected} cos(c, s), with ``relevance`` min-max
    normalised to [0, 1] so λ means the same whatever scale the ranker scores on. λ = 1 keeps
    the original order. ``vectors`` are the candidates' unit vectors, (n, d). Candidates whose
    scores tie (index.ties) go in their given order, which callers make stable.
    """
    n = len(relevance)
    k = min(k, n)
    if n == 0 or k == 0:
        return []
    rel = np.asarray(relevance, dtype=np.float64)
    span = rel.max() - rel.min()
    rel = (rel - rel.min()) / span if span > 0 else np.ones(n)
    if lambda_ >= 1.0:
        return [i for i, _ in ranked(enumerate(rel.tolist()))][:k]
    similarity = vectors @ vectors.T
    selected: list[int] = []
    max_sim = np.full(n, -np.inf)
    available = np.ones(n, dtype=bool)
    for _ in range(k):
        redundancy = np.where(np.isfinite(max_sim), max_sim, 0.0)
        score = lambda_ * rel - (1.0 - lambda_) * redundancy
        score[~available] = -np.inf
        best = int(np.flatnonzero(score >= score.max() - TIE_TOLERANCE)[0])
        selected.append(best)
        available[best] = False
        max_sim = np.maximum(max_sim, similarity[best])
    return selected

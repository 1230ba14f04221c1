"""One order for scored rows on every machine: scores within TIE_TOLERANCE tie, and ties go by a stable key.

Float sums differ in their last bits between CPUs, BLAS builds and batch sizes, so two passages
that tie exactly on one machine (the same sentence in two scrapes of one article) arrive in
either order on another, and a plain sort by score hands them back in that order. Every stage
that orders or cuts a list goes through this module instead, so the same index and question
give the same passages in the same order anywhere; only the scores' last digits may differ.

Ties are single-linkage: sorted by score, a row whose score is within the tolerance of the row
before it belongs to the same group, and each group is ordered by key. A cut (top k) never
splits a group by arrival order: the whole group is ordered first, then cut.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

# Cosines and fused scores of float32 vectors differ between machines by about 1e-7; true score
# differences between distinct passages are far larger (cosines of different texts rarely come
# within 1e-5 of each other). 1e-6 sits between the two.
TIE_TOLERANCE = 1e-6
TIE_SLACK = 8  # rows asked of an engine beyond the depth needed, so a tie at the cut is usually seen whole

Key = Sequence[int] | np.ndarray | None  # key[row]: position of the row in the stable order; None: the row itself
# Rows are ints (passage rows) for every stage of the service; any sortable id (a document name) works with key None.


def _key_of(key: Key, row):
    return row if key is None else int(key[row])


def _groups(scored: list[tuple[int, float]]) -> Iterable[list[tuple[int, float]]]:
    """``scored`` sorted by descending score, split where neighbours differ by more than the tolerance."""
    group: list[tuple[int, float]] = []
    for item in scored:
        if group and group[-1][1] - item[1] > TIE_TOLERANCE:
            yield group
            group = []
        group.append(item)
    if group:
        yield group


def ranked(scored: Iterable[tuple[int, float]], key: Key = None) -> list[tuple[int, float]]:
    """(row, score) pairs best first; scores within the tolerance of each other ordered by ``key``."""
    by_score = sorted(scored, key=lambda rs: -rs[1])
    out: list[tuple[int, float]] = []
    for group in _groups(by_score):
        out.extend(sorted(group, key=lambda rs: _key_of(key, rs[0])) if len(group) > 1 else group)
    return out


def top(scores: np.ndarray, k: int, key: Key = None, rows: np.ndarray | None = None) -> list[tuple[int, float]]:
    """The best ``k`` of ``scores`` as (row, score) pairs, in :func:`ranked` order, in linear time.

    ``rows[i]`` names the row of ``scores[i]`` (default: ``i``). Everything tied with the k-th
    score is gathered before the cut, so which of several tied rows makes the top k does not
    depend on the order the scores arrived in.
    """
    scores = np.asarray(scores)
    n = len(scores)
    if k <= 0 or n == 0:
        return []
    if k < n:
        threshold = float(np.partition(scores, n - k)[n - k]) - TIE_TOLERANCE
        chosen = np.flatnonzero(scores >= threshold)
        while True:  # extend down the chain of ties below the k-th score
            lower = np.flatnonzero(scores >= float(scores[chosen].min()) - TIE_TOLERANCE)
            if len(lower) == len(chosen):
                break
            chosen = lower
    else:
        chosen = np.arange(n)
    names = chosen if rows is None else np.asarray(rows)[chosen]
    return ranked(zip(names.tolist(), scores[chosen].tolist(), strict=True), key)[:k]


def cut_is_settled(scores: Sequence[float] | np.ndarray, k: int) -> bool:
    """Whether an engine's top ``len(scores)`` surely holds every row tied with its k-th best.

    True when some gap below the k-th best score exceeds the tolerance: nothing the engine left
    out can then tie with the first ``k``. A caller wanting a top ``k`` asks the engine for a
    few more and, while this is false, for more still.
    """
    if len(scores) <= k:
        return False
    tail = np.sort(np.asarray(scores, dtype=np.float64))[::-1][k - 1 :]
    return bool(np.any(tail[:-1] - tail[1:] > TIE_TOLERANCE))


def stable_key(sort_keys: Sequence[tuple]) -> np.ndarray:
    """key[row] = the row's position when rows are sorted by ``sort_keys[row]``."""
    order = sorted(range(len(sort_keys)), key=sort_keys.__getitem__)
    key = np.empty(len(sort_keys), dtype=np.int64)
    key[order] = np.arange(len(sort_keys))
    return key

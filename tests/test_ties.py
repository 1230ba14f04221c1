"""index.ties: one order for scored rows whatever order they arrive in and whatever float noise they carry."""

from __future__ import annotations

import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from index.fusion import reciprocal_rank_fusion, weighted_score_fusion
from index.lexical import BM25Index
from index.ties import TIE_TOLERANCE, cut_is_settled, ranked, stable_key, top

# Scores drawn from a coarse grid, so many rows tie exactly, as copies of one text do.
GRID_SCORES = st.lists(st.integers(0, 6).map(lambda i: i / 4), min_size=1, max_size=40)
NOISE = TIE_TOLERANCE / 10  # another machine's last bits: well inside the tolerance


def _noisy(scores: list[float], seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    return (np.asarray(scores) + rng.uniform(-NOISE, NOISE, len(scores))).tolist()


@settings(max_examples=200, deadline=None)
@given(GRID_SCORES, st.integers(0, 2**32 - 1), st.integers(1, 45))
def test_arrival_order_and_noise_do_not_change_the_ranking(scores: list[float], seed: int, k: int) -> None:
    rows = list(range(len(scores)))
    key = stable_key([(-r,) for r in rows])  # a stable order unrelated to row numbers
    expected = [r for r, _ in ranked(zip(rows, scores), key)]
    shuffled = rows[:]
    random.Random(seed).shuffle(shuffled)
    noisy = _noisy(scores, seed)
    again = [r for r, _ in ranked(((r, noisy[r]) for r in shuffled), key)]
    assert again == expected
    # tied rows go by key; otherwise by score
    for a, b in zip(expected, expected[1:]):
        assert scores[a] > scores[b] or (scores[a] == scores[b] and key[a] < key[b])
    # the linear top k is the head of the full ranking, whatever order the array holds the rows in
    perm = np.asarray(shuffled)
    assert [r for r, _ in top(np.asarray(noisy)[perm], k, key, rows=perm)] == expected[:k]


def test_a_chain_of_near_equal_scores_is_one_group_ordered_by_key() -> None:
    step = TIE_TOLERANCE * 0.6  # each neighbour within the tolerance, the ends not
    scored = [(0, 1.0), (1, 1.0 - step), (2, 1.0 - 2 * step), (3, 0.5)]
    key = [3, 2, 1, 0]
    assert [r for r, _ in ranked(scored, key)] == [2, 1, 0, 3]
    # cutting at 1 still takes the whole chain into account
    assert [r for r, _ in top(np.array([s for _, s in scored]), 1, key)] == [2]


def test_cut_is_settled_only_when_a_real_gap_follows_the_kth() -> None:
    assert not cut_is_settled([0.9, 0.8, 0.8, 0.8], 2)  # the tie at place 2 may go on past the list
    assert cut_is_settled([0.9, 0.8, 0.8, 0.7], 2)
    assert cut_is_settled([0.7, 0.8, 0.9, 0.8], 2)  # arrival order does not matter
    assert not cut_is_settled([0.9, 0.8], 2)  # nothing beyond the k-th was seen


def test_fusion_orders_tied_rows_by_key_not_by_arrival() -> None:
    key = [2, 1, 0]  # row 2 first among equals
    # rows 0 and 2 swap places between the two lists: equal RRF scores
    for rankings in ({"a": [0, 1, 2], "b": [2, 1, 0]}, {"b": [2, 1, 0], "a": [0, 1, 2]}):
        assert [r for r, _ in reciprocal_rank_fusion(rankings, key=key)] == [2, 0, 1]
    # row 0 ahead of row 2 by float noise only
    scored = {"dense": [(0, 0.9 + NOISE), (2, 0.9), (1, 0.1)], "bm25": [(0, 3.0 + NOISE), (2, 3.0), (1, 1.0)]}
    assert [r for r, _ in weighted_score_fusion(scored, {"dense": 1.0, "bm25": 1.0}, key=key)] == [2, 0, 1]


def test_bm25_puts_identical_texts_in_key_order_wherever_they_sit() -> None:
    text = "the harbour authority approved a breakwater"
    texts = ["orchard growers picked apples", text, "cold storage was full", text, "harbour fees rise"]
    index = BM25Index.build(texts)
    assert [r for r, _ in index.search_batch(["harbour breakwater"], 2)[0]] == [1, 3]
    assert [r for r, _ in index.search_batch(["harbour breakwater"], 2, key=[0, 4, 1, 3, 2])[0]] == [3, 1]
    # a cut inside the tie takes the better key, not whichever bm25s met first
    assert [r for r, _ in index.search_batch(["harbour breakwater"], 1, key=[0, 4, 1, 3, 2])[0]] == [3]

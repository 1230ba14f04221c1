"""Retriever: FAISS agrees with brute force; top_k and token_budget behave; the right passage ranks high."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from index import RankingConfig, Retriever, SearchOptions
from index.ties import TIE_TOLERANCE
from tests.conftest import assert_top_k_up_to_ties, source_text


DENSE_ONLY = RankingConfig(retrieval="dense", collapse_duplicates=False, highlight=False, sentence_weight=0.0)



@pytest.fixture(scope="module")
def retriever(store_retriever):
    """Every test here runs on both stores (tests.conftest.STORES)."""
    return store_retriever

def test_faiss_ranking_equals_brute_force_numpy(retriever) -> None:
    retriever = retriever.with_ranking(DENSE_ONLY)
    stored = retriever.stored
    vectors = stored.vector_index.reconstruct_n(0, stored.vector_index.ntotal)
    for question in ["Who met Mullah Omar in 2000?", "rocket attacks on Tajikistan", "CPEC in Balochistan"]:
        query = retriever.embedder.encode([question])[0]
        hits = retriever.search(question, SearchOptions(top_k=10)).hits
        rows = [retriever.passages.index(h.passage) for h in hits]
        assert_top_k_up_to_ties(rows, [h.score for h in hits], vectors @ query, 10)


def _brute_force_blend(retriever, query: np.ndarray, w: float) -> np.ndarray:
    stored, table = retriever.stored, retriever.components.sentences
    passage = stored.vector_index.reconstruct_n(0, stored.vector_index.ntotal) @ query
    sentence = np.array([(table.vectors[m] @ query).max() if len(m) else -1.0 for m in table.members])
    return (1 - w) * passage + w * sentence


def test_sentence_weight_blends_passage_and_best_sentence_cosines(retriever) -> None:
    for w in (0.5, 1.0):
        ranked = retriever.with_ranking(dataclasses.replace(DENSE_ONLY, sentence_weight=w))
        for question in ["Who met Mullah Omar in 2000?", "How many Uyghurs have joined the group, according to the UN?"]:
            expected = _brute_force_blend(retriever, retriever.embedder.encode([question])[0], w)
            hits = ranked.search(question, SearchOptions(top_k=10)).hits
            rows = [retriever.passages.index(h.passage) for h in hits]
            assert_top_k_up_to_ties(rows, [h.score for h in hits], expected, 10)


def test_tied_passages_come_in_document_then_offset_order(retriever) -> None:
    """Scored by their best sentence alone, passages of the two scrapes of one article tie exactly
    (they share that sentence); the tie goes to the earlier document on every machine."""
    ranked = retriever.with_ranking(dataclasses.replace(DENSE_ONLY, sentence_weight=1.0))
    ties = 0
    for question in ["Who met Mullah Omar in 2000?", "How many Uyghurs have joined the group, according to the UN?"]:
        expected = _brute_force_blend(retriever, retriever.embedder.encode([question])[0], 1.0)
        hits = ranked.search(question, SearchOptions(top_k=10)).hits
        for a, b in zip(hits, hits[1:]):
            ra, rb = retriever.passages.index(a.passage), retriever.passages.index(b.passage)
            if abs(expected[ra] - expected[rb]) < 1e-5:
                ties += 1
                assert (a.passage.doc_id, a.passage.start) < (b.passage.doc_id, b.passage.start)
    assert ties > 0  # the seeds do hold such ties: the check above ran


class _AnotherMachine:
    """The real FAISS index answering as another CPU might: every score moved by float noise
    (a tenth of the tie tolerance) and the rows of each answer in a random order."""

    def __init__(self, index, seed: int) -> None:
        self._index, self._rng = index, np.random.default_rng(seed)
        self.ntotal, self.d = index.ntotal, index.d

    def search(self, queries: np.ndarray, k: int):
        scores, rows = self._index.search(queries, k)
        scores = scores + self._rng.uniform(-TIE_TOLERANCE / 10, TIE_TOLERANCE / 10, scores.shape).astype(scores.dtype)
        order = np.stack([self._rng.permutation(k) for _ in range(len(queries))])
        return np.take_along_axis(scores, order, 1), np.take_along_axis(rows, order, 1)

    def reconstruct(self, row: int) -> np.ndarray:
        return self._index.reconstruct(row)


@pytest.mark.parametrize(
    "ranking",
    [RankingConfig(), RankingConfig(sentence_weight=1.0), RankingConfig(fusion="rrf"), dataclasses.replace(DENSE_ONLY, sentence_weight=1.0)],
    ids=["default", "sentences-only", "rrf", "dense-sentences-only"],
)
def test_shuffled_tied_candidates_and_float_noise_do_not_change_the_ranking(retriever, ranking: RankingConfig) -> None:
    here = retriever.with_ranking(ranking)
    elsewhere = Retriever(retriever.embedder, dataclasses.replace(retriever.stored, vector_index=_AnotherMachine(retriever.stored.vector_index, 7)), ranking)
    table = elsewhere.components.sentences
    noise = np.random.default_rng(8).uniform(-1e-8, 1e-8, table.vectors.shape).astype(np.float32)
    elsewhere.components = dataclasses.replace(elsewhere.components, sentences=dataclasses.replace(table, vectors=table.vectors + noise))
    questions = ["Who met Mullah Omar in 2000?", "How many Uyghurs have joined the group, according to the UN?", "ETIM", "Taliban"]
    for a, b in zip(here.search_batch(questions, SearchOptions(top_k=10)), elsewhere.search_batch(questions, SearchOptions(top_k=10)), strict=True):
        assert [h.passage.key for h in a.hits] == [h.passage.key for h in b.hits]
        assert [[p.key for p in h.also_in] for h in a.hits] == [[p.key for p in h.also_in] for h in b.hits]
        assert (a.answer and a.answer.span) == (b.answer and b.answer.span)


def test_sentence_scoring_finds_the_passage_of_a_sentence_diluted_by_its_neighbours(retriever) -> None:
    """A question phrased as one sentence of a long passage: the blend ranks that passage at least as high."""
    table = retriever.components.sentences
    plain = retriever.with_ranking(DENSE_ONLY)
    blended = retriever.with_ranking(dataclasses.replace(DENSE_ONLY, sentence_weight=0.5))
    better = worse = 0
    for row in range(0, len(retriever.passages), 7):
        ids = table.members[row]
        if len(ids) < 4:
            continue
        start, end = int(table.starts[ids[1]]), int(table.ends[ids[1]])
        passage = retriever.passages[row]
        sentence = passage.text[start - passage.start : end - passage.start]
        rank = lambda r: next((h.rank for h in r.search(sentence, SearchOptions(top_k=20)).hits if h.passage == passage), 99)  # noqa: E731
        a, b = rank(plain), rank(blended)
        better += b < a
        worse += b > a
    assert better > worse


def test_feedback_searches_again_with_the_question_moved_towards_the_top_passages(retriever) -> None:
    stored = retriever.stored
    vectors = stored.vector_index.reconstruct_n(0, stored.vector_index.ntotal)
    question = "Why did the US take the Uyghur group off its terrorist list?"
    query = retriever.embedder.encode([question])[0]
    before = vectors @ query
    first = np.argsort(-before)[:3]
    # the three feedback passages are clear of the fourth by far more than float noise (~1e-7): measured 5.7e-4
    assert before[first[-1]] - np.sort(before)[-4] > 1e-4
    moved = query + 0.5 * vectors[first].mean(axis=0)
    moved /= np.linalg.norm(moved)
    ranked = retriever.with_ranking(dataclasses.replace(DENSE_ONLY, feedback_passages=3, feedback_weight=0.5))
    hits = ranked.search(question, SearchOptions(top_k=10))
    rows = [retriever.passages.index(h.passage) for h in hits.hits]
    assert_top_k_up_to_ties(rows, [h.score for h in hits.hits], vectors @ moved, 10)
    assert set(rows) != set(np.argsort(-before)[:10].tolist())  # feedback changed which passages come back
    # best_cosine stays about the question as asked, not the moved one
    assert np.isclose(hits.best_cosine, max(float(before[r]) for r in rows), atol=1e-5)


def test_ranks_are_consecutive_and_scores_descending(retriever) -> None:
    hits = retriever.search("ETIM", SearchOptions(top_k=20)).hits
    assert [h.rank for h in hits] == list(range(1, 21))
    assert all(a.score >= b.score - TIE_TOLERANCE for a, b in zip(hits, hits[1:]))  # ties may go either way


def test_top_k_larger_than_the_index_returns_every_passage_once(retriever) -> None:
    hits = retriever.with_ranking(DENSE_ONLY).search("Taliban", SearchOptions(top_k=10_000)).hits
    assert len(hits) == len(retriever.passages)
    assert len({h.passage.key for h in hits}) == len(hits)


def test_token_budget_keeps_rank_order_and_never_overflows(retriever) -> None:
    unlimited = retriever.search("Uyghur militants in Badakhshan", SearchOptions(top_k=10)).hits
    budget = unlimited[0].passage.tokens + unlimited[1].passage.tokens + 5
    limited = retriever.search("Uyghur militants in Badakhshan", SearchOptions(top_k=10, token_budget=budget)).hits
    assert sum(h.passage.tokens for h in limited) <= budget
    assert [h.passage for h in limited[:2]] == [h.passage for h in unlimited[:2]]
    order = [h.passage.key for h in unlimited]
    assert [order.index(h.passage.key) for h in limited] == sorted(order.index(h.passage.key) for h in limited)


def test_a_budget_smaller_than_any_passage_returns_nothing(retriever) -> None:
    assert retriever.search("Taliban", SearchOptions(top_k=5, token_budget=1)).hits == []


def test_known_answer_ranks_near_the_top_and_cites_its_source(retriever) -> None:
    hits = retriever.search("What did Beijing ask Mullah Omar in 2000?", SearchOptions(top_k=3)).hits
    assert any("pressed Omar to stop harboring ethnic Uyghur militants" in h.passage.text for h in hits)
    for h in hits:
        assert source_text(h.passage.source)[h.passage.start : h.passage.end] == h.passage.text


def test_batch_search_equals_single_searches(retriever) -> None:
    questions = ["Kunduz mosque bombing", "Wang Yi", "Aynak copper mine"]
    batch = retriever.search_batch(questions, SearchOptions(top_k=5))
    for question, found in zip(questions, batch):
        single = retriever.search(question, SearchOptions(top_k=5))
        assert [h.passage.key for h in found.hits] == [h.passage.key for h in single.hits]

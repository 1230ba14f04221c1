"""Fusion, diversification and near-duplicate detection: pure pieces on hand-made inputs, then the seeds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from index import RankingConfig, SearchOptions
from index.dedup import DUPLICATE_CONTAINMENT, MAX_SHINGLE_SPREAD, copied_documents, find_duplicates, shingles
from index.diversify import mmr
from index.highlight import SentenceTable
from index.fusion import reciprocal_rank_fusion, weighted_score_fusion
from index.ties import top
from tests.conftest import SEEDS, source_text

ROOT = Path(__file__).resolve().parent.parent



@pytest.fixture(scope="module")
def retriever(store_retriever):
    """Every test here runs on both stores (tests.conftest.STORES)."""
    return store_retriever

def test_rrf_adds_reciprocal_ranks_and_breaks_ties_by_row() -> None:
    fused = reciprocal_rank_fusion({"a": [1, 2, 3], "b": [3, 1]}, k=60)
    # row 1: 1/61 + 1/62; row 3: 1/63 + 1/61; row 2: 1/62
    assert [r for r, _ in fused] == [1, 3, 2]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)
    assert reciprocal_rank_fusion({"a": [5], "b": [4]})[0][0] == 4


def test_rrf_weights_scale_each_list() -> None:
    fused = reciprocal_rank_fusion({"a": [1], "b": [2]}, {"a": 1.0, "b": 2.0})
    assert [r for r, _ in fused] == [2, 1]


def test_weighted_fusion_min_max_normalises_each_list() -> None:
    fused = dict(weighted_score_fusion({"a": [(1, 10.0), (2, 5.0), (3, 0.0)], "b": [(3, 0.9), (1, 0.1)]}, {"a": 1.0, "b": 1.0}))
    assert fused == pytest.approx({1: 1.0, 2: 0.5, 3: 1.0})


def test_mmr_with_lambda_one_keeps_the_order_and_lower_lambda_skips_near_copies() -> None:
    vectors = np.array([[1.0, 0.0], [0.999, 0.0447], [0.0, 1.0]])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    assert mmr([0.9, 0.85, 0.5], vectors, 3, 1.0) == [0, 1, 2]
    assert mmr([0.9, 0.85, 0.5], vectors, 3, 0.5) == [0, 2, 1]
    assert mmr([], np.zeros((0, 2)), 3, 0.5) == []


def test_shingles_ignore_case_punctuation_and_quote_style() -> None:
    assert shingles("So what’s driving the two sides together?") == shingles("so whats driving the two sides, together")


def test_duplicates_are_found_across_documents_but_not_a_shared_quote() -> None:
    article = (
        "The council voted to close the old bridge after engineers found deep cracks in two of its "
        "piers and warned that heavy lorries could bring the span down within a year."
    )
    quote = "engineers found deep cracks in two of its piers"
    texts = [
        article,
        article.replace("’", "'").upper(),  # the same article, scraped again
        f"Another paper, writing about roads in general, repeated that {quote}, then turned to rail fares, "
        "bus subsidies, the cost of parking in the centre and a long list of other local transport matters.",
    ]
    pairs = find_duplicates(texts, ["a", "b", "c"])
    assert [(p.a, p.b) for p in pairs] == [(0, 1)]
    assert find_duplicates(texts[:2], ["same", "same"]) == []  # overlapping chunks of one document


def test_duplicate_pairs_equal_a_pairwise_count_of_shared_shingles(retriever) -> None:
    texts, docs = [p.text for p in retriever.passages], [p.doc_id for p in retriever.passages]
    sets = [shingles(t) for t in texts]
    spread: dict[int, int] = {}
    for shingle_set in sets:
        for s in shingle_set:
            spread[s] = spread.get(s, 0) + 1
    expected = []
    for a in range(len(sets)):
        for b in range(a + 1, len(sets)):
            shared = sum(1 for s in sets[a] & sets[b] if spread[s] <= MAX_SHINGLE_SPREAD)
            if docs[a] != docs[b] and sets[a] and sets[b] and shared / min(len(sets[a]), len(sets[b])) >= DUPLICATE_CONTAINMENT:
                expected.append((a, b, round(shared / min(len(sets[a]), len(sets[b])), 4)))
    assert [(p.a, p.b, p.containment) for p in find_duplicates(texts, docs)] == expected and expected


def test_documents_are_copies_when_most_passages_pair_up_not_when_one_quote_does() -> None:
    doc_of = ["a", "a", "a", "a", "b", "b", "b", "c", "c", "c", "c"]
    pairs = [(0, 4), (1, 5), (2, 6), (3, 8)]
    assert copied_documents(pairs, doc_of) == {frozenset({"a", "b"})}  # a-c share one passage of four


# --- the seeds -----------------------------------------------------------------------------------


def test_duplicate_pairs_on_the_seeds_are_all_between_the_two_scrapes(retriever) -> None:
    pairs = retriever.components.duplicates
    assert pairs, "the two scrapes of one article must be detected"
    names = {
        frozenset({retriever.passages[a].source[:3], retriever.passages[b].source[:3]})
        for a, partners in pairs.items()
        for b, _ in partners
    }
    assert names == {frozenset({"001", "004"})}


QUESTIONS = [
    "What did Beijing ask Mullah Omar in 2000?",
    "Why is China talking to the Taliban?",
    "What is ETIM?",
    "When did Taliban delegations begin visiting China?",
    "Who removed ETIM from the terrorist list?",
    "Aynak copper mine and Amu Darya oil field",
    "Kunduz mosque bombing Uyghur",
]


def _copies_by_full_text() -> set[frozenset[str]]:
    """Seed documents that are the same article, judged on whole files independently of the index."""
    texts = {p.stem.split("_")[0]: shingles(source_text(p.name)) for p in sorted(SEEDS.glob("*.txt"))}
    names = sorted(texts)
    return {
        frozenset({x, y})
        for i, x in enumerate(names)
        for y in names[i + 1 :]
        if len(texts[x] & texts[y]) >= 0.5 * min(len(texts[x]), len(texts[y]))
    }


def test_the_seeds_hold_one_article_twice_and_the_index_knows_which(retriever) -> None:
    assert _copies_by_full_text() == {frozenset({"001", "004"})}
    assert {frozenset(d.split("_")[0] for d in pair) for pair in retriever.copies} == _copies_by_full_text()


EVAL_QUESTIONS = [json.loads(line)["question"] for line in (ROOT / "eval" / "questions.jsonl").read_text(encoding="utf-8").splitlines()]


def test_no_top_k_list_holds_the_same_article_text_twice(retriever) -> None:
    """Across every eval question: results of two copies of one article share no sentence
    (not even when their passages were cut at different places), and results of any two
    documents never repeat half of each other."""
    copies = _copies_by_full_text()
    for question in QUESTIONS + EVAL_QUESTIONS:
        hits = retriever.search(question, SearchOptions(top_k=10)).hits
        for i, a in enumerate(hits):
            for b in hits[i + 1 :]:
                if a.passage.doc_id == b.passage.doc_id:
                    continue
                sa, sb = shingles(a.passage.text), shingles(b.passage.text)
                where = f"{question!r}: {a.passage.key} and {b.passage.key} repeat each other"
                assert len(sa & sb) < 0.5 * min(len(sa), len(sb)), where
                if frozenset({a.passage.source[:3], b.passage.source[:3]}) in copies:
                    assert len(sa & sb) < 8, where  # 8 five-word shingles: about one short sentence


def test_without_collapse_the_two_scrapes_both_appear(retriever) -> None:
    plain = retriever.with_ranking(RankingConfig(collapse_duplicates=False))
    sources = [h.passage.source[:3] for h in plain.search(QUESTIONS[0], SearchOptions(top_k=5)).hits]
    assert "001" in sources and "004" in sources


def test_collapsed_result_lists_the_other_scrape_in_also_in_with_a_checkable_citation(retriever) -> None:
    hits = retriever.search(QUESTIONS[0], SearchOptions(top_k=5)).hits
    with_copies = [h for h in hits if h.also_in]
    assert with_copies
    for hit in with_copies:
        for copy in hit.also_in:
            assert copy.source != hit.passage.source
            assert source_text(copy.source)[copy.start : copy.end] == copy.text
            assert len(shingles(copy.text) & shingles(hit.passage.text)) >= 0.5 * min(len(shingles(copy.text)), len(shingles(hit.passage.text)))


@pytest.mark.parametrize("question", QUESTIONS)
def test_every_highlight_slices_back_to_a_sentence_inside_its_passage(retriever, question) -> None:
    found = retriever.search(question, SearchOptions(top_k=5))
    for hit in found.hits:
        assert hit.highlights
        text = source_text(hit.passage.source)
        for span in hit.highlights:
            assert hit.passage.start <= span.start < span.end <= hit.passage.end
            sentence = text[span.start : span.end]
            assert sentence == sentence.strip() and sentence in hit.passage.text
    answer = found.answer
    assert answer is not None
    assert source_text(answer.passage.source)[answer.span.start : answer.span.end] == answer.text


def test_extractive_answer_for_a_known_fact(retriever) -> None:
    answer = retriever.search("How many tons of pine nuts did the first cargo plane carry?").answer
    assert answer is not None and "45 tons of pine nuts" in answer.text


def test_best_sentence_per_passage_handles_shared_and_missing_sentences() -> None:
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=np.float32)
    members = [np.array([0, 1]), np.array([], dtype=np.int64), np.array([1, 2]), np.array([2])]  # sentence 1 shared
    table = SentenceTable(np.zeros(3, np.int64), np.ones(3, np.int64), members, vectors)
    up, right = np.array([0.0, 1.0], dtype=np.float32), np.array([1.0, 0.0], dtype=np.float32)
    assert table.best_of([0, 1, 2, 3], up).tolist() == pytest.approx([1.0, -1.0, 1.0, 0.8])
    assert table.best_of([3, 0], right).tolist() == pytest.approx([0.6, 1.0])
    # passages 0 and 2 tie on the shared sentence 1: the key (here: the row) orders them
    assert table.passages_by_sentence(np.stack([up, right]), 2) == [[0, 2], [0, 2]]
    assert table.passages_by_sentence(up[None], 3) == [[0, 2, 3]]  # never a passage without sentences
    assert table.passages_by_sentence(up[None], 2, key=np.array([3, 0, 1, 2])) == [[2, 0]]


def test_passages_by_sentence_equal_a_full_scan_on_the_seeds(retriever) -> None:
    table = retriever.components.sentences
    questions = ["Who met Mullah Omar in 2000?", "rocket attacks on Tajikistan", "CPEC in Balochistan", "Taliban"]
    queries = retriever.embedder.encode(questions)
    for depth in (1, 10, 50):
        for query, found in zip(queries, table.passages_by_sentence(queries, depth, retriever.order), strict=True):
            full = table.best_of(range(len(retriever.passages)), query)
            expected = top(full, depth, retriever.order)
            assert found == [row for row, _ in expected] or np.allclose(full[found], [s for _, s in expected], atol=1e-5)

"""Tests for eval.metrics: hand-computed cases, then agreement with trec_eval and ranx."""

from __future__ import annotations

import math
import random
import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eval import metrics

LOG2_3 = math.log2(3)  # discount at rank 2
LOG2_5 = math.log2(5)  # discount at rank 4
LOG2_6 = math.log2(6)  # discount at rank 5

# Shared tiny case. Relevant: d1 (3), d2 (2), d4 (1) -> 3 relevant; d3 judged 0, x unjudged.
RELS = {"d1": 3, "d2": 2, "d3": 0, "d4": 1}
RANKING = ["d3", "d2", "x", "d1", "d4"]  # relevant at ranks 2, 4, 5


# ---------------------------------------------------------------- hand-computed cases


def test_first_relevant_rank():
    assert metrics.first_relevant_rank(RELS, RANKING) == 2  # d3 is 0, d2 is 2
    assert metrics.first_relevant_rank(RELS, ["d3", "x"]) is None  # judged 0 is not relevant
    assert metrics.first_relevant_rank(RELS, []) is None


def test_hit_at():
    assert metrics.hit_at(RELS, RANKING, 1) == 0.0  # rank 1 is d3 (grade 0)
    assert metrics.hit_at(RELS, RANKING, 2) == 1.0  # d2 at rank 2
    assert metrics.hit_at(RELS, RANKING, 10) == 1.0  # k beyond the ranking length is fine


def test_recall_at():
    assert metrics.recall_at(RELS, RANKING, 1) == 0.0  # 0 of 3
    assert metrics.recall_at(RELS, RANKING, 2) == pytest.approx(1 / 3)  # d2
    assert metrics.recall_at(RELS, RANKING, 4) == pytest.approx(2 / 3)  # d2, d1
    assert metrics.recall_at(RELS, RANKING, 5) == 1.0  # d2, d1, d4
    # Denominator is all relevant judgments, not min(k, |rel|): 1 found of 3 at k=2.
    assert metrics.recall_at(RELS, ["d1", "d2"], 1) == pytest.approx(1 / 3)


def test_reciprocal_rank_at():
    assert metrics.reciprocal_rank_at(RELS, RANKING, 1) == 0.0  # first relevant is rank 2 > 1
    assert metrics.reciprocal_rank_at(RELS, RANKING, 2) == 0.5  # 1/2
    assert metrics.reciprocal_rank_at(RELS, RANKING, 10) == 0.5  # later hits do not add
    assert metrics.reciprocal_rank_at({"a": 1}, ["a"], 1) == 1.0


def test_ndcg_at_graded():
    # k=3: DCG = 0/log2(2) + 2/log2(3) + 0/log2(4)                = 2/1.58496  = 1.26186
    #      ideal grades [3, 2, 1]: 3/log2(2) + 2/log2(3) + 1/log2(4) = 3 + 1.26186 + 0.5 = 4.76186
    #      nDCG@3 = 1.26186 / 4.76186 = 0.26500
    idcg3 = 3 + 2 / LOG2_3 + 1 / 2
    assert metrics.ndcg_at(RELS, RANKING, 3) == pytest.approx((2 / LOG2_3) / idcg3)
    assert metrics.ndcg_at(RELS, RANKING, 3) == pytest.approx(0.26500, abs=1e-5)
    # k=5: DCG = 2/log2(3) + 3/log2(5) + 1/log2(6) = 1.26186 + 1.29203 + 0.38685 = 2.94074
    #      ideal is the same as at k=3 (only three positive grades): 4.76186
    #      nDCG@5 = 2.94074 / 4.76186 = 0.61756
    dcg5 = 2 / LOG2_3 + 3 / LOG2_5 + 1 / LOG2_6
    assert metrics.ndcg_at(RELS, RANKING, 5) == pytest.approx(dcg5 / idcg3)
    assert metrics.ndcg_at(RELS, RANKING, 5) == pytest.approx(0.61756, abs=1e-5)
    # k=1: DCG = 0 (d3); ideal = 3/1 -> 0
    assert metrics.ndcg_at(RELS, RANKING, 1) == 0.0


def test_ndcg_gain_is_linear_not_exponential():
    rels = {"a": 3, "b": 1}
    # ranking b, a: DCG = 1/1 + 3/log2(3) = 1 + 1.89279 = 2.89279
    #              IDCG = 3/1 + 1/log2(3) = 3 + 0.63093 = 3.63093  -> 0.79670
    linear = (1 + 3 / LOG2_3) / (3 + 1 / LOG2_3)
    # Burges (2^g - 1): (1 + 7/log2(3)) / (7 + 1/log2(3)) = 0.70983 -- must NOT be what we compute
    burges = (1 + 7 / LOG2_3) / (7 + 1 / LOG2_3)
    got = metrics.ndcg_at(rels, ["b", "a"], 10)
    assert got == pytest.approx(linear)
    assert got == pytest.approx(0.79670, abs=1e-5)
    assert abs(got - burges) > 0.05


def test_ndcg_ideal_uses_all_judgments_not_only_retrieved():
    # Only "a" (grade 1) retrieved, at rank 1: DCG = 1. The ideal counts unretrieved "b" (3):
    # IDCG = 3/1 + 1/log2(3) = 3.63093 -> nDCG = 0.27541, not 1.0.
    rels = {"a": 1, "b": 3}
    assert metrics.ndcg_at(rels, ["a"], 10) == pytest.approx(1 / (3 + 1 / LOG2_3))


def test_negative_grades_count_as_not_relevant():
    rels = {"a": -1, "b": 2}
    # Same as if "a" were judged 0 or unjudged: first relevant is b at rank 2.
    assert metrics.first_relevant_rank(rels, ["a", "b"]) == 2
    assert metrics.recall_at(rels, ["a"], 5) == 0.0
    # DCG = 0 + 2/log2(3); IDCG = 2/1 (the -1 adds nothing) -> 1/log2(3) = 0.63093
    assert metrics.ndcg_at(rels, ["a", "b"], 10) == pytest.approx(1 / LOG2_3)


def test_perfect_and_empty_rankings():
    assert metrics.ndcg_at(RELS, ["d1", "d2", "d4"], 10) == pytest.approx(1.0)
    for fn in (metrics.hit_at, metrics.recall_at, metrics.reciprocal_rank_at, metrics.ndcg_at):
        assert fn(RELS, [], 10) == 0.0


def test_no_relevant_documents():
    rels = {"a": 0, "b": 0}
    with pytest.raises(ValueError, match="no relevant"):
        metrics.recall_at(rels, ["a"], 5)
    assert metrics.hit_at(rels, ["a"], 5) == 0.0
    assert metrics.reciprocal_rank_at(rels, ["a"], 5) == 0.0
    assert metrics.ndcg_at(rels, ["a"], 5) == 0.0  # IDCG = 0 -> 0, as trec_eval


def test_bad_cutoff():
    for k in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="cutoff"):
            metrics.hit_at(RELS, RANKING, k)


def test_duplicate_doc_in_ranking_is_rejected():
    with pytest.raises(ValueError, match="'d2'"):
        metrics.ndcg_at(RELS, ["d2", "d1", "d2"], 10)
    with pytest.raises(ValueError, match=r"query 'q7'.*'d1'"):
        metrics.evaluate({"q7": {"d1": 1}}, {"q7": ["d1", "d1"]}, ["hit@1"])


def test_single_string_ranking_is_rejected():
    with pytest.raises(TypeError):
        metrics.hit_at({"a": 1}, "a", 1)


# ---------------------------------------------------------------- evaluate / mean


def test_evaluate_per_query_and_mean():
    qrels = {
        "q1": RELS,
        "q2": {"z": 1},
        "q3": {"a": 0},  # no relevant doc -> skipped
        "q4": {"y": 2},  # not in run -> scores 0
    }
    run = {"q1": RANKING, "q2": ["z"], "q3": ["a"], "extra": ["z"]}  # "extra" unjudged -> ignored
    measures = ["hit@1", "hit@3", "recall@5", "mrr@10", "ndcg@10"]
    per_query = metrics.evaluate(qrels, run, measures)
    assert set(per_query) == {"q1", "q2", "q4"}
    assert per_query["q1"] == pytest.approx(
        {
            "hit@1": 0.0,
            "hit@3": 1.0,
            "recall@5": 1.0,
            "mrr@10": 0.5,
            "ndcg@10": (2 / LOG2_3 + 3 / LOG2_5 + 1 / LOG2_6) / (3 + 2 / LOG2_3 + 1 / 2),
        }
    )
    assert per_query["q2"] == dict.fromkeys(measures, 1.0)
    assert per_query["q4"] == dict.fromkeys(measures, 0.0)
    means = metrics.mean(per_query)
    # hit@1: (0 + 1 + 0) / 3 ; mrr@10: (0.5 + 1 + 0) / 3
    assert means["hit@1"] == pytest.approx(1 / 3)
    assert means["mrr@10"] == pytest.approx(0.5)
    assert list(means) == measures


def test_evaluate_empty_run_scores_zero():
    qrels = {"q1": {"a": 1}, "q2": {"b": 2, "c": 1}}
    per_query = metrics.evaluate(qrels, {}, ["hit@10", "recall@100", "mrr@10", "ndcg@10"])
    assert per_query == {
        "q1": {"hit@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0, "ndcg@10": 0.0},
        "q2": {"hit@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0, "ndcg@10": 0.0},
    }
    assert metrics.mean(per_query)["ndcg@10"] == 0.0


def test_evaluate_all_queries_without_relevant_docs():
    per_query = metrics.evaluate({"q1": {"a": 0}, "q2": {}}, {"q1": ["a"]}, ["ndcg@10"])
    assert per_query == {}
    with pytest.raises(ValueError, match="no queries"):
        metrics.mean(per_query)


@pytest.mark.parametrize("bad", ["map@10", "ndcg", "ndcg@0", "ndcg@x", "NDCG@10", "hit@-1"])
def test_unknown_measure_lists_accepted_names(bad):
    with pytest.raises(ValueError, match=r"hit@k, recall@k, mrr@k, ndcg@k"):
        metrics.evaluate({"q": {"a": 1}}, {"q": ["a"]}, [bad])


def test_mean_rejects_ragged_input():
    with pytest.raises(ValueError, match="measures"):
        metrics.mean({"q1": {"hit@1": 1.0}, "q2": {"hit@1": 1.0, "ndcg@10": 0.5}})


@given(
    grades=st.dictionaries(st.sampled_from("abcdefgh"), st.integers(-1, 3), min_size=1),
    ranking=st.permutations(list("abcdefghij")).map(lambda p: p[:7]),
    k=st.integers(1, 12),
)
def test_properties(grades, ranking, k):
    values = [
        metrics.hit_at(grades, ranking, k),
        metrics.reciprocal_rank_at(grades, ranking, k),
        metrics.ndcg_at(grades, ranking, k),
    ]
    assert all(0.0 <= v <= 1.0 + 1e-12 for v in values)
    # Deeper cutoffs never lose a hit; recall never decreases with k.
    assert metrics.hit_at(grades, ranking, k) <= metrics.hit_at(grades, ranking, k + 1)
    if any(g > 0 for g in grades.values()):
        r_k = metrics.recall_at(grades, ranking, k)
        assert 0.0 <= r_k <= metrics.recall_at(grades, ranking, k + 1) <= 1.0
        # MRR@k > 0 exactly when hit@k is 1.
        assert (metrics.reciprocal_rank_at(grades, ranking, k) > 0) == (values[0] == 1.0)


# ---------------------------------------------------------------- cross-checks

N_QUERIES, N_DOCS = 50, 30
OUR_MEASURES = [
    "hit@1", "hit@3", "hit@5", "hit@10",
    "recall@5", "recall@10", "recall@100",
    "mrr@10", "ndcg@10",
]  # fmt: skip


def _random_case(seed: int) -> tuple[dict[str, dict[str, int]], dict[str, list[str]]]:
    """Seeded qrels and run shaped to hit the edge cases.

    Every 7th query has only grade-0 judgments (must be skipped by everyone), every 11th is
    missing from the run (scores 0), some rankings are empty, shorter than 5 or all 30 docs
    long, and a few judgments are -1 (Cranfield's raw code; counts as not relevant).
    """
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(N_DOCS)]
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, list[str]] = {}
    for i in range(N_QUERIES):
        qid = f"q{i}"
        judged = rng.sample(docs, rng.randint(1, 15))
        if i % 7 == 0:
            qrels[qid] = dict.fromkeys(judged, 0)
        else:
            qrels[qid] = {d: rng.choice([-1, 0, 0, 1, 1, 2, 3]) for d in judged}
            qrels[qid][rng.choice(judged)] = rng.randint(1, 3)  # at least one relevant
        if i % 11 == 3:
            continue
        length = rng.choice([0, 3, rng.randint(1, N_DOCS), N_DOCS])
        run[qid] = rng.sample(docs, length)
    return qrels, run


def _scored(run: dict[str, list[str]], depth: int | None = None) -> dict[str, dict[str, float]]:
    # score = 1/rank: strictly decreasing, so trec_eval's tie-break (doc id descending) and
    # ranx's never get a chance to reorder the ranking.
    return {
        qid: {doc: 1.0 / rank for rank, doc in enumerate(ranking[:depth], start=1)}
        for qid, ranking in run.items()
        if ranking[:depth]
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_case_exercises_the_edge_cases(seed):
    qrels, run = _random_case(seed)
    per_query = metrics.evaluate(qrels, run, OUR_MEASURES)
    assert len(per_query) == N_QUERIES - len(range(0, N_QUERIES, 7))  # 8 skipped
    assert any(qid not in run for qid in per_query)
    assert any(run.get(qid) == [] for qid in per_query)
    assert any(len(run.get(qid, ())) == N_DOCS for qid in per_query)
    assert any(-1 in rels.values() for rels in qrels.values())
    assert 0 < metrics.mean(per_query)["ndcg@10"] < 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_pytrec_eval(seed):
    pytrec_eval = pytest.importorskip("pytrec_eval")
    qrels, run = _random_case(seed)
    ours = metrics.evaluate(qrels, run, OUR_MEASURES)

    # Explicit cutoffs: trec_eval's default success cutoffs (1, 5, 10) have no 3.
    trec_measures = {"success.1,3,5,10", "recall.5,10,100", "ndcg_cut.10"}
    full = pytrec_eval.RelevanceEvaluator(qrels, trec_measures).evaluate(_scored(run))
    # trec_eval's recip_rank has no cutoff: truncate the run to 10 to get MRR@10.
    top10 = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(_scored(run, 10))

    mapping = {
        "hit@1": "success_1",
        "hit@3": "success_3",
        "hit@5": "success_5",
        "hit@10": "success_10",
        "recall@5": "recall_5",
        "recall@10": "recall_10",
        "recall@100": "recall_100",
        "ndcg@10": "ndcg_cut_10",
    }
    for qid, values in ours.items():
        # trec_eval drops queries without a ranking; we score them 0 (see evaluate's docstring).
        if run.get(qid):
            theirs = {**full[qid], **top10[qid]}
        else:
            theirs = dict.fromkeys([*mapping.values(), "recip_rank"], 0.0)
        for name, trec_name in mapping.items():
            assert values[name] == pytest.approx(theirs[trec_name], abs=1e-6), (qid, name)
        assert values["mrr@10"] == pytest.approx(theirs["recip_rank"], abs=1e-6), qid


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_ranx(seed):
    ranx = pytest.importorskip("ranx")
    qrels, run = _random_case(seed)
    ours = metrics.evaluate(qrels, run, OUR_MEASURES)

    # ranx needs the skip done for it: hand it only queries with a relevant judgment.
    # make_comparable=True scores qrels queries missing from the run as 0, like us.
    ranx_qrels = ranx.Qrels({qid: dict(rels) for qid, rels in qrels.items() if qid in ours})
    ranx_run = ranx.Run(_scored(run))
    mapping = {
        "hit@1": "hit_rate@1",
        "hit@3": "hit_rate@3",
        "hit@5": "hit_rate@5",
        "hit@10": "hit_rate@10",
        "recall@5": "recall@5",
        "recall@10": "recall@10",
        "recall@100": "recall@100",
        "mrr@10": "mrr@10",
        "ndcg@10": "ndcg@10",  # Järvelin (linear gain), as trec_eval; ndcg_burges is 2^g - 1
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba type-safety chatter
        ranx.evaluate(ranx_qrels, ranx_run, list(mapping.values()), make_comparable=True)
    assert set(ranx_run.scores["ndcg@10"]) == set(ours)
    for qid, values in ours.items():
        for name, ranx_name in mapping.items():
            theirs = float(ranx_run.scores[ranx_name][qid])
            assert values[name] == pytest.approx(theirs, abs=1e-6), (qid, name)

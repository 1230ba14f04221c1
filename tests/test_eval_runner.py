"""eval.runner: exact per-question values on hand-made answers, then the real set in-process and over HTTP."""

from __future__ import annotations

import math
import re
import socket
from pathlib import Path

import pytest

from eval.gate import baseline_of, check
from eval.questions import UNANSWERABLE, Gold, Question, load_questions
from eval.relevance import Corpus, GoldSpan, gold_spans
from eval.report import Report
from eval.runner import METRICS, EvalRun, InProcess, OverHttp, ServerError, aggregate, run_eval, score_question
from index import RankingConfig
from tests.conftest import table_rows

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
QUESTIONS = ROOT / "eval" / "questions.jsonl"


def res(rank: int, source: str, start: int, end: int, score: float) -> dict:
    return {
        "rank": rank,
        "score": score,
        "text": f"passage {source}:{start}-{end}",
        "tokens": 10,
        "citation": {"doc_id": source[:-4], "title": "T", "source": source, "start": start, "end": end, "heading": None},
    }


def question(qid: str, kind: str, n_gold: int) -> Question:
    return Question(qid, kind, f"question {qid}?", tuple(Gold("x.txt", f"quote {i}") for i in range(n_gold)))


# qa: one gold quote, first covered at rank 3 (and again at rank 4).
QA = question("qa", "factoid", 1)
QA_SPANS = ((GoldSpan("a.txt", 100, 200),),)
QA_RESULTS = [
    res(1, "b.txt", 100, 200, 0.9),  # same offsets, other file: not relevant
    res(2, "a.txt", 0, 50, 0.8),  # same file, no overlap
    res(3, "a.txt", 120, 300, 0.7),  # overlap 120..200 = 80 >= 50: covers g1
    res(4, "a.txt", 100, 200, 0.6),  # covers g1 again: no new gain
]
# qb: two gold quotes; g1 occurs in two scrapes (a.txt and b.txt), g2 only in c.txt.
QB = question("qb", "multi-source", 2)
QB_SPANS = ((GoldSpan("a.txt", 0, 10), GoldSpan("b.txt", 0, 10)), (GoldSpan("c.txt", 0, 10),))
QB_RESULTS = [
    res(1, "a.txt", 0, 10, 0.8),  # g1
    res(2, "b.txt", 0, 10, 0.75),  # g1 in the other scrape: credited once only
    *(res(r, "d.txt", 0, 10, 0.7 - r / 100) for r in (3, 4, 5)),
    res(6, "c.txt", 0, 10, 0.6),  # g2
]
QC = question("qc", UNANSWERABLE, 0)
QC_RESULTS = [res(1, "a.txt", 0, 10, 0.55)]
QD = question("qd", "factoid", 1)  # nothing relevant comes back
QD_SPANS = ((GoldSpan("a.txt", 500, 600),),)
QD_RESULTS = [res(r, "a.txt", 0, 10 * r, 0.5 - r / 10) for r in (1, 2, 3)]

# quote-level nDCG of qb: ranking [g1, -, -, -, -, g2]
#   DCG  = 1/log2(2) + 1/log2(7)          (rank 2 repeats g1: gain 0)
#   IDCG = 1/log2(2) + 1/log2(3)          (two gold quotes, ideally at ranks 1 and 2)
QB_NDCG = (1 + 1 / math.log2(7)) / (1 + 1 / math.log2(3))  # = 0.8316...


def response(results: list[dict], best_cosine: float | None = None) -> dict:
    return {"question": "?", "results": results, "best_cosine": best_cosine, "took_ms": 1.0}


def test_one_relevant_quote_at_rank_3() -> None:
    record = score_question(QA, QA_SPANS, response(QA_RESULTS))
    assert record["first_relevant_rank"] == 3
    assert record["gold"][0]["found_rank"] == 3
    assert [r["covers"] for r in record["results"]] == [[], [], ["g1"], ["g1"]]
    assert record["top_score"] == 0.9
    assert record["metrics"] == {
        "hit@1": 0.0,
        "hit@3": 1.0,
        "hit@5": 1.0,
        "hit@10": 1.0,
        "recall@5": 1.0,
        "recall@10": 1.0,
        "mrr@10": pytest.approx(1 / 3),
        # DCG = 1/log2(3+1) = 0.5 (rank 4 repeats g1: gain 0); IDCG = 1/log2(2) = 1
        "ndcg@10": pytest.approx(0.5),
    }


def test_two_quotes_one_found_twice() -> None:
    record = score_question(QB, QB_SPANS, response(QB_RESULTS))
    assert record["first_relevant_rank"] == 1
    assert [g["found_rank"] for g in record["gold"]] == [1, 6]
    m = record["metrics"]
    assert m["hit@1"] == 1.0 and m["mrr@10"] == 1.0
    assert m["recall@5"] == 0.5  # g1 in the top 5, g2 only at rank 6
    assert m["recall@10"] == 1.0
    assert m["ndcg@10"] == pytest.approx(QB_NDCG)
    # passage-level nDCG would have credited rank 2 as well: (1 + 1/log2(3) + 1/log2(7)) / IDCG > 1 is impossible,
    # so the repeat must earn nothing for nDCG to stay a share of the ideal:
    assert m["ndcg@10"] < 1.0


def test_unanswerable_and_missed_questions() -> None:
    unanswerable = score_question(QC, (), response(QC_RESULTS))
    assert unanswerable["metrics"] is None and unanswerable["first_relevant_rank"] is None
    assert unanswerable["top_score"] == 0.55
    missed = score_question(QD, QD_SPANS, response(QD_RESULTS))
    assert missed["first_relevant_rank"] is None and missed["gold"][0]["found_rank"] is None
    assert missed["metrics"] == dict.fromkeys(METRICS, 0.0)
    empty = score_question(QD, QD_SPANS, response([]))
    assert empty["top_score"] is None and empty["metrics"]["hit@10"] == 0.0


def test_also_in_makes_a_result_relevant() -> None:
    collapsed = res(1, "b.txt", 0, 10, 0.9) | {"also_in": [{"source": "a.txt", "start": 100, "end": 180}]}
    record = score_question(QA, QA_SPANS, response([collapsed]))
    assert record["first_relevant_rank"] == 1 and record["metrics"]["mrr@10"] == 1.0
    assert record["results"][0]["also_in"] == ["a.txt:100-180"]


class FakeTarget:
    def __init__(self, answers: dict[str, dict]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, int]] = []

    def query(self, question: str, top_k: int) -> dict:
        self.asked.append((question, top_k))
        return self.answers[question]

    def manifest(self) -> dict:
        return {}


def test_aggregates_by_hand() -> None:
    target = FakeTarget(
        {
            QA.question: response(QA_RESULTS, 0.7),
            QB.question: response(QB_RESULTS, 0.6),
            QC.question: response(QC_RESULTS, 0.35),
            QD.question: response(QD_RESULTS, 0.3),
        }
    )
    spans = {"qa": QA_SPANS, "qb": QB_SPANS, "qc": (), "qd": QD_SPANS}
    run = run_eval([QA, QB, QC, QD], spans, target, top_k=7)
    assert [t for _, t in target.asked] == [7, 7, 7, 7]
    overall = run.aggregates["overall"]
    # answerable: qa, qb, qd (qc is unanswerable and left out)
    assert overall["n"] == 3
    assert overall["hit@1"] == pytest.approx((0 + 1 + 0) / 3)
    assert overall["hit@3"] == pytest.approx((1 + 1 + 0) / 3)
    assert overall["hit@10"] == pytest.approx(2 / 3)
    assert overall["recall@5"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert overall["recall@10"] == pytest.approx((1 + 1 + 0) / 3)
    assert overall["mrr@10"] == pytest.approx((1 / 3 + 1 + 0) / 3)  # = 4/9
    assert overall["ndcg@10"] == pytest.approx((0.5 + QB_NDCG + 0) / 3)
    by_kind = run.aggregates["by_kind"]
    assert list(by_kind) == ["factoid", "multi-source"]
    assert by_kind["factoid"]["n"] == 2
    assert by_kind["factoid"]["mrr@10"] == pytest.approx((1 / 3 + 0) / 2)
    assert by_kind["factoid"]["ndcg@10"] == pytest.approx((0.5 + 0) / 2)
    assert by_kind["multi-source"]["recall@5"] == 0.5
    scores = run.aggregates["scores"]
    # top-1 scores of the answerable questions: qa 0.9, qb 0.8, qd 0.4; confidences 0.7, 0.6, 0.3
    assert scores["top_score"]["answerable"] == {"n": 3, "min": 0.4, "median": 0.8, "max": 0.9}
    assert scores["top_score"]["unanswerable"] == {"n": 1, "min": 0.55, "median": 0.55, "max": 0.55}
    assert scores["best_cosine"]["answerable"] == {"n": 3, "min": 0.3, "median": 0.6, "max": 0.7}
    assert scores["unanswerable"] == {"qc": {"top_score": 0.55, "best_cosine": 0.35}}
    # best_cosine < 0.4 flags qc (unanswerable, 0.35) and qd (answerable, 0.3): precision 1/2, recall 1/1
    below = {row["threshold"]: row for row in scores["detection"]["cosine_below"]}[0.4]
    assert (below["flagged"], below["precision"], below["recall"]) == (2, 0.5, 1.0)
    assert scores["detection"]["base_rate"] == 0.25
    assert run.aggregates["highlights"]["overall"]["n"] == 0  # these answers carry no highlights
    assert run.timing["questions"] == 4


def test_aggregate_refuses_a_set_without_answerable_questions() -> None:
    with pytest.raises(ValueError, match="no answerable"):
        aggregate([score_question(QC, (), response(QC_RESULTS))])


# ---- the real question set, on the real index ------------------------------------------------


@pytest.fixture(scope="module")
def real_set() -> tuple:
    questions = load_questions(QUESTIONS, SEEDS)
    return questions, gold_spans(questions, Corpus.read(SEEDS))


@pytest.fixture(scope="module")
def in_process_run(real_set: tuple, retriever) -> EvalRun:
    questions, spans = real_set
    return run_eval(questions, spans, InProcess(retriever))


def test_the_real_set_in_process(real_set: tuple, in_process_run: EvalRun, retriever) -> None:
    questions, _ = real_set
    overall = in_process_run.aggregates["overall"]
    assert overall["n"] == sum(1 for q in questions if q.answerable)
    assert overall["hit@10"] >= 0.8
    assert overall["hit@1"] <= overall["hit@3"] <= overall["hit@5"] <= overall["hit@10"]
    assert overall["recall@5"] <= overall["recall@10"] <= 1.0
    assert 0 < overall["ndcg@10"] <= 1.0 and 0 < overall["mrr@10"] <= 1.0
    assert all(len(r["results"]) == 10 for r in in_process_run.records)
    n_unanswerable = sum(1 for q in questions if not q.answerable)
    assert in_process_run.aggregates["scores"]["best_cosine"]["unanswerable"]["n"] == n_unanswerable
    report = Report("now", "in-process", {}, dict(retriever.manifest), {"path": "q", "sha256": "x", "count": len(questions)}, 10,
                    in_process_run.records, in_process_run.aggregates, in_process_run.timing)
    for rendered in (report.table(), report.to_markdown()):  # the console and report.md show the same aggregate table
        assert table_rows(rendered)[1] == ["**overall**", str(overall["n"]), *(f"{overall[m]:.4f}" for m in METRICS)]


def _report(run: EvalRun) -> Report:
    return Report("now", "in-process", {}, {}, {"path": "q", "sha256": "x", "count": len(run.records)}, 10, run.records, run.aggregates)


def test_the_ci_gate_passes_the_same_ranking_and_fails_a_degraded_one(real_set: tuple, in_process_run: EvalRun, retriever) -> None:
    """The tolerance CI gates with absorbs a near-tie flip, yet still catches a real regression."""
    allowance = int(re.search(r"--allow-questions (\d+)", (ROOT / ".ci" / "run").read_text(encoding="utf-8")).group(1))
    baseline = baseline_of(_report(in_process_run))
    assert check(baseline, _report(in_process_run), allow_questions=allowance).passed
    # dense passage cosine alone: what the ranking was before hybrid and sentence scoring
    questions, spans = real_set
    bare = retriever.with_ranking(RankingConfig(retrieval="dense", sentence_weight=0.0, collapse_duplicates=False))
    result = check(baseline, _report(run_eval(questions, spans, InProcess(bare))), allow_questions=allowance)
    assert not result.passed
    listed = [line for line in result.lines if line.startswith("  ") and "→" in line]
    assert len(listed) > allowance  # the questions that dropped are named


def test_the_real_set_measures_highlights_and_detection(real_set: tuple, in_process_run: EvalRun) -> None:
    questions, _ = real_set
    records = in_process_run.records
    answerable = [r for r in records if r["metrics"] is not None]
    highlights = in_process_run.aggregates["highlights"]["overall"]
    assert highlights["n"] == len(answerable)  # highlighting is on: every answerable question is measured
    assert 0 < highlights["answer_hit"] <= 1 and 0 < highlights["highlight_hit@5"] <= 1
    # A highlight can only show a quote its own passage covers, and the answer sentence sits in
    # one of the top 3 passages: neither can do better than retrieval.
    assert highlights["n_highlight@5"] <= sum(r["metrics"]["hit@5"] for r in answerable)
    for r in answerable:
        if r["highlight"]["answer_covers"]:
            assert r["first_relevant_rank"] is not None and r["first_relevant_rank"] <= 3, r["id"]
        assert r["answer"] is not None and r["results"][0]["highlights"]
    detection = in_process_run.aggregates["scores"]["detection"]
    assert detection["unanswerable"] == sum(1 for q in questions if not q.answerable)
    assert detection["answerable"] == len(answerable) and detection["n"] == len(questions)
    flagged = [row["flagged"] for row in detection["cosine_below"]]
    assert flagged == sorted(flagged) and len(flagged) == 13


def test_answer_hit_on_the_real_set_stays_above_what_was_measured(in_process_run: EvalRun) -> None:
    """docs/results.md measured answer_hit 0.6528 and highlight_hit@5 0.8854 (index.answer); the bars sit 0.05
    below, so float noise on another CPU (a near-tie going the other way) cannot fail them, a lost signal can."""
    highlights = in_process_run.aggregates["highlights"]["overall"]
    assert highlights["answer_hit"] >= 0.60
    assert highlights["highlight_hit@5"] >= 0.83


def test_over_http_matches_in_process(live_server: str, real_set: tuple, in_process_run: EvalRun) -> None:
    questions, spans = real_set
    with OverHttp(live_server + "/") as target:
        health = target.manifest()
        assert health["status"] == "ok"
        run = run_eval(questions, spans, target)
        with pytest.raises(ServerError, match="answered 422"):
            target.query("too many", 51)
    assert [r["first_relevant_rank"] for r in run.records] == [r["first_relevant_rank"] for r in in_process_run.records]
    assert [r["results"] for r in run.records] == [r["results"] for r in in_process_run.records]
    assert run.aggregates == in_process_run.aggregates


def test_an_unreachable_server_is_one_clear_error() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with OverHttp(f"http://127.0.0.1:{port}", timeout=5) as target, pytest.raises(ServerError, match="cannot reach"):
        target.query("anything", 5)

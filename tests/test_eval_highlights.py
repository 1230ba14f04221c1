"""eval.highlights and eval.detection: exact values on hand-made responses, and their place in the report."""

from __future__ import annotations

import pytest

from eval.detection import THRESHOLDS, Detection, detection_summary, score_detector
from eval.highlights import aggregate_highlights, score_highlights
from eval.relevance import GoldSpan, covers_pieces
from eval.report import Report
from tests.conftest import table_rows

# ---- the overlap rule over several pieces --------------------------------------------------


def test_pieces_are_counted_together() -> None:
    span = GoldSpan("a.txt", 100, 120)  # 20 chars: 10 needed
    assert not covers_pieces(span, "a.txt", [(90, 106)])  # 6
    assert not covers_pieces(span, "a.txt", [(116, 200)])  # 4
    assert covers_pieces(span, "a.txt", [(116, 200), (90, 106)])  # 6 + 4, in any order
    assert not covers_pieces(span, "b.txt", [(0, 1000)])
    assert not covers_pieces(span, "a.txt", [])


def test_overlapping_pieces_count_each_character_once() -> None:
    span = GoldSpan("a.txt", 100, 120)
    assert not covers_pieces(span, "a.txt", [(100, 109), (100, 109), (102, 105)])  # 9, not 21
    assert covers_pieces(span, "a.txt", [(100, 109), (105, 110)])  # 100..110 = 10


# ---- answer_hit and highlight_hit@5 ----------------------------------------------------------

# g1 occurs in two scrapes (a.txt and b.txt); g2 only in c.txt.
SPANS = ((GoldSpan("a.txt", 100, 140), GoldSpan("b.txt", 90, 130)), (GoldSpan("c.txt", 0, 40),))


def result(source: str, start: int, end: int, highlights: list[tuple[int, int]], also_in: list[dict] | None = None) -> dict:
    return {
        "citation": {"source": source, "start": start, "end": end},
        "highlights": [{"start": s, "end": e} for s, e in highlights],
        "also_in": also_in or [],
    }


def response(results: list[dict], answer: tuple[str, int, int] | None) -> dict:
    body = {"results": results, "answer": None}
    if answer is not None:
        source, start, end = answer
        body["answer"] = {"text": "…", "citation": {"source": source, "start": start, "end": end}}
    return body


def test_answer_and_highlights_by_hand() -> None:
    results = [
        result("a.txt", 0, 200, [(100, 125)]),  # covers g1; highlight 25 of 40 chars: shows it
        result("x.txt", 0, 200, [(0, 50)]),  # not relevant: not counted
        result("c.txt", 0, 300, [(200, 260)]),  # covers g2; highlight elsewhere: does not show it
        result("b.txt", 50, 250, [(60, 100), (100, 112)]),  # covers g1 (b.txt copy); 10 + 12 of 40 chars together
        result("z.txt", 0, 10, [(0, 10)], also_in=[{"source": "a.txt", "start": 100, "end": 140}]),  # g1 only via also_in: left out
        result("a.txt", 100, 140, [(100, 140)]),  # rank 6: beyond the top 5
    ]
    record = score_highlights(response(results, ("c.txt", 5, 40)), SPANS)
    assert record == {"answer_covers": ["g2"], "relevant": 3, "highlighted": 2}
    missed = score_highlights(response(results, ("a.txt", 0, 110)), SPANS)  # 10 of 40 chars of g1
    assert missed["answer_covers"] == []
    assert score_highlights(response(results, None), SPANS)["answer_covers"] == []


def test_a_response_without_highlights_is_not_measured() -> None:
    plain = [result("a.txt", 0, 200, [])]
    assert score_highlights(response(plain, None), SPANS) is None
    assert score_highlights({"results": []}, SPANS) is None


def test_highlight_aggregates_by_hand() -> None:
    records = [
        {"kind": "factoid", "metrics": {}, "highlight": {"answer_covers": ["g1"], "relevant": 2, "highlighted": 1}},
        {"kind": "factoid", "metrics": {}, "highlight": {"answer_covers": [], "relevant": 0, "highlighted": 0}},
        {"kind": "alias", "metrics": {}, "highlight": {"answer_covers": ["g2"], "relevant": 3, "highlighted": 3}},
        {"kind": "alias", "metrics": {}, "highlight": None},  # highlighting off: not measured
        {"kind": "unanswerable", "metrics": None, "highlight": None},
    ]
    agg = aggregate_highlights(records, ["factoid", "paraphrase", "alias", "unanswerable"])
    assert agg["overall"] == {"n": 3, "answer_hit": pytest.approx(2 / 3), "n_highlight@5": 2, "highlight_hit@5": pytest.approx((0.5 + 1) / 2)}
    assert list(agg["by_kind"]) == ["factoid", "alias"]
    assert agg["by_kind"]["factoid"] == {"n": 2, "answer_hit": 0.5, "n_highlight@5": 1, "highlight_hit@5": 0.5}
    nothing = aggregate_highlights(records[3:], ["alias"])
    assert nothing["overall"]["answer_hit"] is None and nothing["overall"]["highlight_hit@5"] is None


# ---- detecting unanswerable questions --------------------------------------------------------


def test_detector_rates() -> None:
    d = score_detector([(True, True), (True, False), (False, True), (False, False), (False, False)])
    assert d == Detection(positives=2, total=5, flagged=2, flagged_positives=1)
    assert (d.precision, d.recall, d.f1) == (0.5, 0.5, 0.5)
    silent = score_detector([(True, False), (False, False)])
    assert silent.precision is None and silent.recall == 0.0 and silent.f1 is None  # undefined, not 0
    wrong = score_detector([(True, False), (False, True)])
    assert wrong.precision == 0.0 and wrong.recall == 0.0 and wrong.f1 == 0.0


def test_thresholds_are_the_written_values() -> None:
    assert THRESHOLDS[0] == 0.2 and THRESHOLDS[-1] == 0.8 and len(THRESHOLDS) == 13
    assert 0.55 in THRESHOLDS and 0.7 in THRESHOLDS


def test_detection_summary_by_hand() -> None:
    cases = [
        (True, 0.30),  # unanswerable, low
        (True, 0.62),
        (False, 0.25),  # answerable but low
        (False, 0.70),
        (False, 0.80),
        (False, None),  # no results, so no cosine: left out
    ]
    summary = detection_summary(cases, thresholds=(0.2, 0.3, 0.5, 0.65, 0.75))
    assert summary["unanswerable"] == 2 and summary["answerable"] == 3 and summary["base_rate"] == pytest.approx(2 / 5)
    assert summary["flag_all_f1"] == pytest.approx(2 * 0.4 / 1.4)
    assert summary["n"] == 5
    rows = {row["threshold"]: row for row in summary["cosine_below"]}
    assert rows[0.2]["flagged"] == 0 and rows[0.2]["precision"] is None
    assert rows[0.3] == {"threshold": 0.3, "flagged": 1, "flagged_unanswerable": 0, "precision": 0.0, "recall": 0.0, "f1": 0.0}  # 0.30 < 0.3 is false
    assert (rows[0.5]["flagged"], rows[0.5]["flagged_unanswerable"]) == (2, 1)
    assert (rows[0.65]["precision"], rows[0.65]["recall"]) == (pytest.approx(2 / 3), 1.0)  # F1 0.8
    assert rows[0.75]["f1"] == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert summary["best_f1"]["threshold"] == 0.65


def test_best_f1_prefers_the_lowest_threshold_on_a_tie_and_none_when_nothing_is_flagged() -> None:
    cases = [(True, 0.3), (False, 0.9)]
    summary = detection_summary(cases, thresholds=(0.4, 0.5, 0.95))
    assert summary["best_f1"]["threshold"] == 0.4
    assert detection_summary(cases, thresholds=(0.1,))["best_f1"] is None


# ---- in the report ---------------------------------------------------------------------------


def report_with(aggregates_extra: dict) -> Report:
    row = {"n": 1, "hit@1": 1.0, "hit@3": 1.0, "hit@5": 1.0, "hit@10": 1.0, "recall@5": 1.0, "recall@10": 1.0, "mrr@10": 1.0, "ndcg@10": 1.0}
    dist = {"n": 1, "min": 0.5, "median": 0.5, "max": 0.5}
    scores = {
        "top_score": {"answerable": dist, "unanswerable": dist},
        "best_cosine": {"answerable": dist, "unanswerable": dist},
        "unanswerable": {},
    }
    scores |= aggregates_extra.pop("scores", {})
    return Report("now", "in-process", {}, {}, {"path": "q", "sha256": "x", "count": 2}, 10, [],
                  {"overall": row, "by_kind": {"factoid": row}, "scores": scores, **aggregates_extra})


def test_report_shows_highlights_and_detection() -> None:
    highlights = {"overall": {"n": 1, "answer_hit": 1.0, "n_highlight@5": 0, "highlight_hit@5": None}, "by_kind": {}}
    detection = detection_summary([(True, 0.3), (False, 0.6)])
    report = report_with({"highlights": highlights, "scores": {"detection": detection}})
    table, md = report.table(), report.to_markdown()
    assert "answer_hit" in table and "highlight_hit@5" in table and "unanswerable detection" in table
    cells = table_rows(md)
    assert "## Answer sentence and highlights" in md and ["**overall**", "1", "1.0000", "0", "–"] in cells
    assert ["**overall**", "1", "1.0000", "0", "–"] in table_rows(table)  # the console shows the same table
    assert "## Detecting unanswerable questions" in md and ["best_cosine < 0.30", "0", "0", "–", "0.0000", "–"] in cells
    assert ["best_cosine < 0.35", "1", "1", "1.0000", "1.0000", "1.0000"] in cells and "Best F1: best_cosine < 0.35" in md


def test_a_report_from_before_these_sections_still_renders() -> None:
    report = report_with({})
    assert "answer_hit" not in report.table() and "overall" in report.table()
    assert "## Detecting" not in report.to_markdown() and "## Score calibration" in report.to_markdown()

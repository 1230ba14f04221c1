"""eval.relevance: the overlap rule, duplicate-scrape matching, also_in, quote rankings."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.questions import Gold, Question, QuestionSetError
from eval.relevance import (
    MIN_OVERLAP,
    Corpus,
    GoldSpan,
    covered_golds,
    covers,
    find_spans,
    gold_spans,
    normalise,
    quote_qrels,
    quote_ranking,
)

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
CURLY = "004_bbbee28aa1debc71.txt"  # the scrape with curly quotes and apostrophes
STRAIGHT = "001_a06d89833bfb4a24.txt"  # the same article, with them stripped


def test_min_overlap_is_half() -> None:
    assert MIN_OVERLAP == 0.5


def test_exactly_half_counts_one_char_less_does_not() -> None:
    span = GoldSpan("a.txt", 100, 110)  # 10 chars: 5 are needed
    assert covers(span, "a.txt", 105, 300)  # overlap 105..110 = 5 = half
    assert not covers(span, "a.txt", 106, 300)  # 4
    assert covers(span, "a.txt", 0, 105)  # 100..105 = 5, from the other side
    assert not covers(span, "a.txt", 0, 104)
    odd = GoldSpan("a.txt", 0, 11)  # 11 chars: 5.5 needed, so 6
    assert covers(odd, "a.txt", 5, 20) and not covers(odd, "a.txt", 6, 20)


def test_a_passage_containing_the_quote_or_inside_it_counts() -> None:
    span = GoldSpan("a.txt", 100, 110)
    assert covers(span, "a.txt", 0, 1000)
    assert covers(span, "a.txt", 102, 108)  # 6 of 10
    assert not covers(span, "a.txt", 110, 200)  # touching is not overlapping


def test_a_different_file_never_counts() -> None:
    assert not covers(GoldSpan("a.txt", 100, 110), "b.txt", 100, 110)


def test_normalise_maps_back_to_original_offsets() -> None:
    text = "So What’s up?"
    norm, offsets = normalise(text)
    assert norm == "sowhatsup"
    assert [text[i] for i in offsets] == list("SoWhatsup")
    assert normalise("Straße")[0] == "strasse"


def test_a_curly_apostrophe_quote_from_004_is_found_in_001_too() -> None:
    corpus = Corpus.read(SEEDS)
    quote = "So what’s driving the two sides together?"
    assert quote in corpus.texts[CURLY] and quote not in corpus.texts[STRAIGHT]
    spans = find_spans(quote, corpus)
    assert {s.source for s in spans} == {CURLY, STRAIGHT}
    by_source = {s.source: s for s in spans}
    assert corpus.texts[CURLY][by_source[CURLY].start : by_source[CURLY].end] == quote  # exact: exact boundaries
    assert corpus.texts[STRAIGHT][by_source[STRAIGHT].start : by_source[STRAIGHT].end] == "So whats driving the two sides together"
    # ...so a passage from the stripped scrape answers a question whose gold names 004
    question = Question("t1", "factoid", "?", (Gold(CURLY, quote),))
    per_gold = gold_spans([question], corpus)["t1"]
    s = by_source[STRAIGHT]
    assert covered_golds({"citation": {"source": STRAIGHT, "start": s.start - 50, "end": s.end}}, per_gold) == [0]


def test_every_occurrence_is_a_span() -> None:
    corpus = Corpus({"a.txt": "red fish, blue fish. RED-FISH!", "b.txt": "no fish here", "c.txt": "Red fish"})
    spans = find_spans("red fish", corpus)
    assert spans == (GoldSpan("a.txt", 0, 8), GoldSpan("a.txt", 21, 29), GoldSpan("c.txt", 0, 8))


def test_a_quote_found_nowhere_fails() -> None:
    corpus = Corpus({"a.txt": "The bridge opened in 1932."})
    question = Question("t2", "factoid", "?", (Gold("a.txt", "closed in 1932"),))
    with pytest.raises(QuestionSetError, match="'t2'.*closed in 1932"):
        gold_spans([question], corpus)


def result(source: str, start: int, end: int, also_in: list | None = None) -> dict:
    r: dict = {"rank": 1, "score": 0.5, "text": "", "citation": {"source": source, "start": start, "end": end}}
    if also_in is not None:
        r["also_in"] = also_in
    return r


def test_also_in_citations_count() -> None:
    per_gold = ((GoldSpan("a.txt", 100, 110),),)
    elsewhere = result("b.txt", 0, 50)
    assert covered_golds(elsewhere, per_gold) == []
    as_citation = result("b.txt", 0, 50, also_in=[{"source": "c.txt", "start": 0, "end": 9}, {"source": "a.txt", "start": 90, "end": 105}])
    assert covered_golds(as_citation, per_gold) == [0]
    as_result = result("b.txt", 0, 50, also_in=[{"citation": {"source": "a.txt", "start": 90, "end": 105}}])
    assert covered_golds(as_result, per_gold) == [0]
    assert covered_golds(result("b.txt", 0, 50, also_in=[]), per_gold) == []


def test_quote_ranking_credits_each_gold_once() -> None:
    # g1 occurs in two files (two scrapes); g2 in one.
    per_gold = ((GoldSpan("a.txt", 0, 10), GoldSpan("b.txt", 0, 10)), (GoldSpan("a.txt", 50, 60),))
    results = [
        result("b.txt", 0, 20),  # g1
        result("a.txt", 0, 20),  # g1 again: nothing new
        result("c.txt", 0, 20),  # nothing
        result("a.txt", 0, 100),  # g1 and g2: g2 is the new one
    ]
    assert quote_ranking(results, per_gold) == ["g1", "-2", "-3", "g2"]
    assert quote_qrels({"q": per_gold}) == {"q": {"g1": 1, "g2": 1}}

"""The citation check (index/support.py) with the real embedding model and the seed index: no language model needed."""

from __future__ import annotations

import pytest

from index import Retriever, SearchOptions
from index.generated import check
from index.sentences import split_sentences
from index.support import NO_ANSWER, markers, numbers, strip_markers
from tests.conftest import source_text

GOLD = "While analysts say Mullah Omar did restrain ETIM in the country, he did not expel the group."
PARAPHRASE = "Analysts say Mullah Omar held ETIM back in the country but never expelled the group."


@pytest.fixture(scope="module")
def sent(retriever: Retriever):
    """Three real passages, the first holding GOLD, as /answer would send them."""
    hits = retriever.search(GOLD, SearchOptions(top_k=3)).hits
    assert GOLD in hits[0].passage.text
    return [h.passage for h in hits]


def test_markers_in_every_usual_form() -> None:
    text = "A [1]. B [1, 2]. C [3][4]. D [2-4]. E [ 5 ]."
    assert [m.numbers for m in markers(text)] == [(1,), (1, 2), (3,), (4,), (2, 3, 4), (5,)]
    assert strip_markers("Beijing pressed Omar [1][2].") == "Beijing pressed Omar."
    assert numbers("It carried 45 tons [2] worth $1,000.50 in 2021.") == {"45", "1000.50", "2021"}


def test_a_verbatim_copy_of_a_passage_sentence_is_supported_with_its_exact_citation(retriever: Retriever, sent) -> None:
    checked = check(retriever, f"{GOLD} [1]", sent)
    assert checked.supported and not checked.invalid
    (sentence,) = checked.sentences
    assert sentence.supported and sentence.reason == "supported" and sentence.citations == (1,)
    match = sentence.match
    assert match.passage == 1 and match.how == "lexical" and match.containment == 1.0
    # the evidence slices the document's own text, as every citation does
    assert source_text(sent[0].source)[match.span.start : match.span.end] == match.text
    assert GOLD in match.text


def test_a_paraphrase_of_a_passage_sentence_is_supported(retriever: Retriever, sent) -> None:
    checked = check(retriever, f"{PARAPHRASE} [1]", sent)
    assert checked.supported, checked.sentences
    assert GOLD in checked.sentences[0].match.text


def test_an_invented_sentence_cited_to_a_passage_is_flagged(retriever: Retriever, sent) -> None:
    answer = f"{GOLD} [1] Mullah Omar later moved to Beijing and became a trade envoy for China [1]."
    checked = check(retriever, answer, sent)
    assert not checked.supported
    first, second = checked.sentences
    assert first.supported
    assert not second.supported and second.reason == "not_in_cited" and second.match is None
    # its span is the sentence as written in the answer, markers included
    assert answer[second.span.start : second.span.end] == "Mullah Omar later moved to Beijing and became a trade envoy for China [1]."


def test_a_changed_number_is_not_supported(retriever: Retriever) -> None:
    hits = retriever.search("How many tons of pine nuts did the first cargo flight carry?", SearchOptions(top_k=3)).hits
    passage = next(h.passage for h in hits if "45 tons of pine nuts" in h.passage.text)
    sentence = next(passage.text[s:e] for s, e in split_sentences(passage.text) if "45 tons" in passage.text[s:e])
    assert check(retriever, f"{sentence} [1]", [passage]).supported
    assert not check(retriever, sentence.replace("45 tons", "90 tons") + " [1]", [passage]).supported


def test_a_marker_naming_a_passage_not_sent_is_invalid(retriever: Retriever, sent) -> None:
    answer = f"{GOLD} [9]"
    checked = check(retriever, answer, sent)
    assert not checked.supported
    (invalid,) = checked.invalid
    assert (invalid.number, invalid.text, answer[invalid.start : invalid.end]) == (9, "[9]", "[9]")
    assert checked.sentences[0].reason == "invalid_citation" and checked.sentences[0].citations == ()
    # a valid citation beside it does not make the invalid one pass
    both = check(retriever, f"{GOLD} [1][9]", sent)
    assert both.sentences[0].supported and not both.supported and [m.number for m in both.invalid] == [9]


def test_a_sentence_without_a_marker_is_flagged_not_passed(retriever: Retriever, sent) -> None:
    checked = check(retriever, f"{GOLD} [1] {GOLD}", sent)
    first, second = checked.sentences
    assert first.supported and not checked.supported
    assert second.reason == "uncited" and not second.supported
    assert second.match is not None and second.match.passage == 1  # where it could have been cited from


def test_saying_the_passages_do_not_answer_is_supported(retriever: Retriever, sent) -> None:
    checked = check(retriever, NO_ANSWER, sent)
    assert checked.supported and checked.sentences[0].reason == "no_answer"


def test_a_marker_after_the_full_stop_belongs_to_the_sentence_before(retriever: Retriever, sent) -> None:
    answer = f"{GOLD} [1] Mullah Omar became a trade envoy for China. [2]"
    checked = check(retriever, answer, sent)
    assert [s.citations for s in checked.sentences] == [(1,), (2,)]
    assert checked.sentences[1].text.endswith("[2]") and not checked.sentences[1].supported


def test_an_empty_answer_is_not_supported(retriever: Retriever, sent) -> None:
    checked = check(retriever, "", sent)
    assert checked.sentences == () and not checked.supported and checked.supported_share is None

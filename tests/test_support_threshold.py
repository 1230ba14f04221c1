"""The threshold eval of the citation check (eval/support_threshold.py): its rule, and one quick run on part of the seed set."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.questions import QuestionSetError, load_questions
from eval.relevance import Corpus, gold_spans
from eval.support_threshold import LEXICAL_GRID, VECTOR_GRID, Pair, choose, collect, load_paraphrases, report
from index import Retriever
from index.support import Signals
from tests.conftest import ROOT, SEEDS


def _pair(label: str, containment: float, cosine: float) -> Pair:
    return Pair("q", "copy", label, (Signals(containment, cosine, True),))


def test_the_rule_is_one_step_above_the_lowest_clean_threshold() -> None:
    pairs = [_pair("positive", 1.0, 0.95), _pair("other", 0.52, 0.71), _pair("near", 0.9, 0.9)]
    chosen = choose(pairs)
    # lexical: 0.50 still passes the other pair (0.52), 0.55 is the lowest clean value, one step up is 0.60
    assert chosen.lexical == LEXICAL_GRID[LEXICAL_GRID.index(0.55) + 1] == 0.60
    assert chosen.vector == VECTOR_GRID[VECTOR_GRID.index(0.72) + 1] == 0.74
    # near negatives are reported, not used to choose
    assert choose([*pairs, _pair("near", 0.99, 0.99)]) == chosen


def test_a_dropped_figure_is_never_support() -> None:
    pair = Pair("q", "copy", "other", (Signals(1.0, 1.0, False),))
    assert not pair.supported(0.1, 0.1) and not pair.by("lexical", 0.1)


def test_a_run_on_part_of_the_seed_set(retriever: Retriever, tmp_path: Path) -> None:
    questions = load_questions(ROOT / "eval" / "questions.jsonl", SEEDS)[:8]
    spans = gold_spans(questions, Corpus.read(SEEDS))
    paraphrases = load_paraphrases(ROOT / "eval" / "support_paraphrases.jsonl")
    pairs = collect(retriever, questions, spans, paraphrases)
    labels = {p.label for p in pairs}
    assert labels == {"positive", "other", "near"}
    assert sum(p.label == "positive" for p in pairs) == 8 + sum(q.id in paraphrases for q in questions)
    text = report(pairs)
    assert "lexical alone" in text and "vector alone" in text and "copy, own passage" in text
    # every copied gold quote is supported by its own passage with the constants in use
    from index.support import LEXICAL_SUPPORT, VECTOR_SUPPORT

    copies = [p for p in pairs if p.label == "positive" and p.claim == "copy"]
    assert sum(p.supported(LEXICAL_SUPPORT, VECTOR_SUPPORT) for p in copies) >= len(copies) - 1


def test_a_broken_paraphrase_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "p.jsonl"
    bad.write_text('{"id": "q1"}\n', encoding="utf-8")
    with pytest.raises(QuestionSetError, match=r"p.jsonl:1: expected"):
        load_paraphrases(bad)

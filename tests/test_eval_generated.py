"""`cited eval` with a chat endpoint: the generated answer's answer_hit and supported share (eval/generated.py).

The endpoint is a real local HTTP server answering a fixed text (tests/chat_server.py): the answer
copies the question's gold sentence, so its hit and support are known; the real model's numbers
come from the `llm` run (docs/generation.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from eval.generated import aggregate_generated, score_generated
from eval.questions import load_questions
from eval.relevance import Corpus, gold_spans
from eval.report import Report
from eval.runner import InProcess, run_eval
from index import Retriever
from index.generate import ChatClient, GeneratorConfig
from tests.chat_server import Behaviour, chat_server
from tests.conftest import ROOT, SEEDS


@pytest.fixture(scope="module")
def questions():
    return [q for q in load_questions(ROOT / "eval" / "questions.jsonl", SEEDS) if q.id in {"q030", "q031"}]


@pytest.fixture(scope="module")
def endpoint(questions) -> Iterator[str]:
    # q030's gold sentence, cited; then an invented one
    answer = f"{questions[0].gold[0].quote} [1] The group later ran a bakery in Kabul [1]."
    with chat_server(Behaviour(answer=answer)) as url:
        yield url


def test_eval_reports_the_generated_answer(retriever: Retriever, questions, endpoint: str, tmp_path: Path) -> None:
    spans = gold_spans(questions, Corpus.read(SEEDS))
    client = ChatClient(GeneratorConfig(f"{endpoint}/ok/v1", "test-model", None, 10.0, 64))
    run = run_eval(questions, spans, InProcess(retriever, client), 10, generated=True)
    by_id = {r["id"]: r["generated"] for r in run.records}
    assert by_id["q030"]["answer_covers"] == ["g1"]  # its own gold sentence, supported: a hit
    assert by_id["q031"]["answer_covers"] == []  # the same text answers q031 nothing
    assert by_id["q030"]["sentences"] == 2 and by_id["q030"]["supported_sentences"] == 1 and not by_id["q030"]["supported"]
    overall = run.aggregates["generated"]["overall"]
    assert overall["n"] == 2 and overall["answer_hit"] == 0.5
    report = Report("now", "in-process", {}, dict(retriever.manifest), {"path": "x", "sha256": "y", "count": 2}, 10,
                    run.records, run.aggregates, run.timing)
    assert "answer_hit" in report.table() and "## Generated answer" in report.to_markdown()


def test_without_a_generator_nothing_changes(retriever: Retriever, questions) -> None:
    spans = gold_spans(questions, Corpus.read(SEEDS))
    run = run_eval(questions, spans, InProcess(retriever), 10)
    assert "generated" not in run.aggregates and all("generated" not in r for r in run.records)


def test_only_supported_sentences_count_for_a_hit(questions) -> None:
    spans = gold_spans(questions, Corpus.read(SEEDS))[questions[0].id]
    span = spans[0][0]
    citation = {"source": span.source, "start": span.start, "end": span.end}
    sentence = {"supported": False, "evidence": {"citation": citation}}
    assert score_generated({"answer": "x", "sentences": [sentence]}, spans)["answer_covers"] == []
    assert score_generated({"answer": "x", "sentences": [{**sentence, "supported": True}]}, spans)["answer_covers"] == ["g1"]
    empty = aggregate_generated([{"metrics": {}, "kind": "factoid", "generated": score_generated({"answer": ""}, spans)}], ["factoid"])
    assert empty["overall"]["supported_share"] is None and empty["overall"]["answer_hit"] == 0.0

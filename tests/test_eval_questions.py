"""eval.questions: the real question set loads, and every kind of breakage is named."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from eval.questions import KINDS, UNANSWERABLE, Gold, Question, QuestionSetError, load_questions

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "eval" / "questions.jsonl"
SEEDS = ROOT / "seeds"


def test_the_real_question_set_loads() -> None:
    questions = load_questions(QUESTIONS, SEEDS)
    kinds = Counter(q.kind for q in questions)
    assert set(kinds) == set(KINDS)
    assert sum(1 for q in questions if q.answerable) >= 60
    assert kinds[UNANSWERABLE] >= 5
    assert all(not q.gold for q in questions if q.kind == UNANSWERABLE)
    assert all(q.gold for q in questions if q.answerable)
    assert len({q.id for q in questions}) == len(questions)
    first = questions[0]
    assert isinstance(first, Question) and isinstance(first.gold[0], Gold)
    with pytest.raises(AttributeError):  # frozen
        first.kind = "alias"  # type: ignore[misc]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "a.txt").write_bytes("The bridge opened in 1932.\r\nIt is 503 metres long.\n".encode())
    return folder


def write(tmp_path: Path, *records: dict | str) -> Path:
    path = tmp_path / "questions.jsonl"
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def q(qid: str = "x1", kind: str = "factoid", quote: str = "opened in 1932", source: str = "a.txt", **extra) -> dict:
    gold = [] if kind == UNANSWERABLE else [{"source": source, "quote": quote}]
    return {"id": qid, "kind": kind, "question": "When did the bridge open?", "gold": gold, **extra}


def test_a_valid_tiny_set(tmp_path: Path, corpus: Path) -> None:
    path = write(tmp_path, q("x1"), "", q("x2", kind=UNANSWERABLE, note="no toll is given"))
    loaded = load_questions(path, corpus)
    assert [x.id for x in loaded] == ["x1", "x2"]  # the blank line is skipped
    assert loaded[0].gold == (Gold("a.txt", "opened in 1932"),)
    assert loaded[1].note == "no toll is given" and not loaded[1].answerable


def error(tmp_path: Path, corpus: Path, *records: dict | str) -> str:
    with pytest.raises(QuestionSetError) as caught:
        load_questions(write(tmp_path, *records), corpus)
    return str(caught.value)


def test_quote_not_in_its_file_names_id_file_and_quote(tmp_path: Path, corpus: Path) -> None:
    message = error(tmp_path, corpus, q("x1"), q("x7", quote="opened in 1933"))
    assert "'x7'" in message and "a.txt" in message and "opened in 1933" in message


def test_quotes_are_matched_without_newline_translation(tmp_path: Path, corpus: Path) -> None:
    # The file has "\r\n"; a quote typed with "\n" is not what the file holds.
    message = error(tmp_path, corpus, q("x3", quote="1932.\nIt is"))
    assert "'x3'" in message
    assert load_questions(write(tmp_path, q("x3", quote="1932.\r\nIt is")), corpus)[0].id == "x3"


def test_unknown_kind(tmp_path: Path, corpus: Path) -> None:
    message = error(tmp_path, corpus, q("x4", kind="trivia"))
    assert "'x4'" in message and "trivia" in message


def test_duplicate_id(tmp_path: Path, corpus: Path) -> None:
    message = error(tmp_path, corpus, q("x5"), q("x6"), q("x5"))
    assert "duplicate id 'x5'" in message and ":3:" in message and "line 1" in message


def test_missing_gold_file(tmp_path: Path, corpus: Path) -> None:
    message = error(tmp_path, corpus, q("x8", source="b.txt"))
    assert "'x8'" in message and "b.txt" in message


def test_gold_file_outside_the_corpus(tmp_path: Path, corpus: Path) -> None:
    (tmp_path / "outside.txt").write_text("opened in 1932", encoding="utf-8")
    assert "'x9'" in error(tmp_path, corpus, q("x9", source="../outside.txt"))


def test_malformed_line_names_the_line(tmp_path: Path, corpus: Path) -> None:
    message = error(tmp_path, corpus, q("x1"), '{"id": "x2", "kind": ')
    assert "questions.jsonl:2:" in message and "malformed JSON" in message


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (q("y1", kind=UNANSWERABLE) | {"gold": [{"source": "a.txt", "quote": "opened in 1932"}]}, "must have no gold"),
        (q("y2") | {"gold": []}, "at least one gold"),
        (q("y3") | {"question": "  "}, "'question'"),
        (q("y4") | {"answer": "1932"}, "unknown field"),
        (q("y5") | {"gold": [{"source": "a.txt"}]}, "exactly 'source' and 'quote'"),
        (q("y6", quote="..."), "letters or digits"),
    ],
)
def test_other_breakage_names_the_question(tmp_path: Path, corpus: Path, record: dict, expected: str) -> None:
    message = error(tmp_path, corpus, record)
    assert f"'{record['id']}'" in message and expected in message


def test_missing_question_file(tmp_path: Path, corpus: Path) -> None:
    with pytest.raises(QuestionSetError, match="not found"):
        load_questions(tmp_path / "nope.jsonl", corpus)


def test_every_problem_is_listed_one_per_line(tmp_path: Path, corpus: Path) -> None:
    message = error(
        tmp_path, corpus,
        q("x1"),
        q("x2", quote="opened in 1933"),  # line 2: not in the file
        '{"id": "x3", ',  # line 3: malformed
        q("x4", kind="trivia"),  # line 4
        q("x1"),  # line 5: duplicate
    )
    lines = message.splitlines()
    assert lines[0].endswith("questions.jsonl: 4 problems")
    assert [line.split(":")[1] for line in lines[1:]] == ["2", "3", "4", "5"]
    assert "'x2'" in lines[1] and "copy it from the file" in lines[1]
    assert "duplicate id 'x1'" in lines[4]


def test_questions_not_written_yet_are_named_together(tmp_path: Path, corpus: Path) -> None:
    draft = [q(f"d{n}") | {"question": "", "note": "TODO: write it"} for n in range(1, 4)]
    message = error(tmp_path, corpus, *draft, q("x1"), q("d5") | {"question": " "}, q("d6", kind=UNANSWERABLE) | {"question": ""})
    assert "\n" not in message  # the only problem: one line
    assert "5 questions not written yet" in message and "lines 1-3, 5-6 ('d1', 'd2', 'd3', 'd5', 'd6')" in message
    many = [q(f"d{n}") | {"question": ""} for n in range(1, 31)]
    message = error(tmp_path, corpus, *many)
    assert "30 questions not written yet" in message and "lines 1-30:" in message and "'d7'" not in message  # ids only when few
    message = error(tmp_path, corpus, q("x1"), q("d1") | {"question": ""})
    assert "1 question not written yet" in message and "line 2 ('d1')" in message
    assert "must be a string" in error(tmp_path, corpus, q("d1") | {"question": None})


def test_a_set_for_another_corpus_is_one_line(tmp_path: Path, corpus: Path) -> None:
    message = error(tmp_path, corpus, q("x1", source="000_f2f8642a0eb764e7.txt"), q("x2", source="001_a06d89833bfb4a24.txt"))
    assert "\n" not in message and "written for another corpus" in message
    assert "2 gold files" in message and "'000_f2f8642a0eb764e7.txt'" in message and "'x1'" in message
    assert "seeds/" in message and f"cited eval draft --corpus-dir {corpus}" in message
    # some gold files present: a typo in one name is that entry's problem, not the corpus's
    message = error(tmp_path, corpus, q("x1"), q("x2", source="b.txt"))
    assert "another corpus" not in message and "'x2'" in message and "b.txt" in message

"""eval.draft and `cited eval draft`: whole-sentence quotes, a diverse choice, a skeleton `cited eval` reads and refuses until written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from eval.draft import IDEAL_WORDS, TODO, draft_questions, pick_quote, quote_candidates, select_diverse
from eval.questions import UNANSWERABLE, QuestionSetError, load_questions
from index import Retriever, build_index
from index.sentences import split_sentences
from index.types import Passage
from service.cli import main
from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent

# Three hand-made documents on unrelated topics; each paragraph is one line, as in most corpora.
DOCS = {
    "lighthouse.txt": (
        "The Lighthouse at Cape Brann\n\n"
        "The lighthouse at Cape Brann was built in 1868 by the harbour board of the nearby town. Its lamp was first "
        "lit with whale oil and later converted to kerosene in 1901. The tower stands 31 metres above the rocks.\n\n"
        "KEEPERS\n\n"
        "Three families kept the light over a century. The last keeper, Agnes Morrow, left the station in 1974 "
        "when the lamp was automated.\n"
    ),
    "orchard.txt": (
        "Apple Growing in the Valley\r\n\r\n"  # CRLF: quotes must still be verbatim
        "Farmers in the valley planted their first commercial apple orchards after the railway arrived in 1889. "
        "By 1930 the valley shipped more than forty thousand crates of apples to the coast every year.\r\n\r\n"
        "A frost in May 1957 destroyed nearly the whole crop, and many growers turned to dairy farming afterwards.\r\n"
    ),
    "comet.txt": (
        "Observing the Comet\n\n"
        "Amateur astronomers tracked the comet for eleven weeks in the spring of 1997. It was brightest in early "
        "April, when it could be seen without a telescope from most of the northern hemisphere.\n\n"
        "See https://example.org/comet for the photographs taken by the schoolchildren of the town.\n"
    ),
}


# ---- quotes ---------------------------------------------------------------------------------


def test_a_quote_is_a_whole_sentence_inside_the_range() -> None:
    text = DOCS["lighthouse.txt"]
    second = text.index("Its lamp")
    # a range starting mid-sentence (as a passage edge may) never yields the cut sentence
    start, end = pick_quote(text, text.index("Cape Brann was"), len(text))
    assert text[start:end] != "Cape Brann was built in 1868 by the harbour board of the nearby town."
    assert (start, end) in split_sentences(text, text.rfind("\n", 0, start) + 1, text.index("\n", start))
    assert start >= second and text[start - 2:start] in (". ", "\n\n")
    # the heading and the title are never quotes; the sentence nearest 22 words comes first
    quotes = [text[s:e] for s, e in quote_candidates(text, 0, len(text))]
    assert not any(q.isupper() or "Lighthouse at Cape" in q for q in quotes)
    distance = [abs(len(q.split()) - IDEAL_WORDS) for q in quotes]
    assert distance == sorted(distance) and len(quotes) == 5
    assert quotes[0] == "The lighthouse at Cape Brann was built in 1868 by the harbour board of the nearby town."  # 17 words
    assert pick_quote(text, text.index("Three"), text.index("Three") + 10) is None  # nothing whole fits


def test_short_lines_and_links_are_not_quotes() -> None:
    text = DOCS["comet.txt"]
    quotes = [text[s:e] for s, e in quote_candidates(text, 0, len(text))]
    assert quotes and not any("https://" in q for q in quotes)
    assert "Observing the Comet" not in quotes


# ---- diversity ------------------------------------------------------------------------------


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_the_choice_covers_every_region_and_spreads_over_documents() -> None:
    rng = np.random.default_rng(0)
    centres = np.eye(8)[:4] * 10  # four well-separated topics of 25 passages each
    vectors = _unit(np.repeat(centres, 25, axis=0) + rng.normal(scale=0.5, size=(100, 8)))
    topic = np.repeat(np.arange(4), 25)
    groups = [f"doc{t}-{i % 5}" for i, t in enumerate(topic)]  # each topic written up in five documents
    chosen = select_diverse(vectors, groups, 4)
    assert sorted(topic[chosen]) == [0, 1, 2, 3]
    assert select_diverse(vectors, groups, 4) == chosen  # deterministic
    # more picks than topics: every topic, and documents spread (a preference within each region, not a rule:
    # a region whose passages all come from documents already drawn still gives one)
    twelve = select_diverse(vectors, groups, 12)
    assert len(set(twelve)) == 12 and set(topic[twelve]) == {0, 1, 2, 3}
    drawn = [groups[r] for r in twelve]
    assert len(set(drawn)) >= 10 and max(drawn.count(g) for g in drawn) <= 2
    assert len(set(groups)) == 20
    # one document holding a whole topic is still drawn (a region gives what it has)
    lone = [g if t else "only" for g, t in zip(groups, topic)]
    assert "only" in {lone[r] for r in select_diverse(vectors, lone, 4)}
    assert select_diverse(vectors[:3], groups[:3], 10) == [0, 1, 2]  # asking for more than there is


def test_draft_entries_are_in_the_question_format() -> None:
    passages, texts = [], {}
    for name, text in DOCS.items():
        texts[name] = text
        passages.append(Passage(name[:-4], name, name, 0, len(text), text, 50))
    vectors = _unit(np.eye(3, 4) + 0.01)
    draft = draft_questions(passages, vectors, texts, count=5, unanswerable=1)
    assert draft.quotes == 5 and draft.documents == 3 and len(draft.entries) == 6
    assert [e["id"] for e in draft.entries] == [f"d{n:03d}" for n in range(1, 7)]
    for entry in draft.entries[:-1]:
        assert entry["question"] == "" and entry["kind"] == "factoid" and entry["note"].startswith(TODO)
        (gold,) = entry["gold"]
        assert gold["quote"] in texts[gold["source"]]
    assert draft.entries[-1]["kind"] == UNANSWERABLE and draft.entries[-1]["gold"] == []
    sources = [e["gold"][0]["source"] for e in draft.entries[:-1]]
    assert sources == sorted(sources)  # a writer reads each document in order


# ---- the command, on a corpus of three hand-made files ---------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory, embedder) -> tuple[Settings, Retriever]:
    corpus = tmp_path_factory.mktemp("draft") / "corpus"
    corpus.mkdir()
    for name, text in DOCS.items():
        (corpus / name).write_bytes(text.encode("utf-8"))
    settings = Settings(corpus_dir=corpus, index_dir=corpus.parent / "index")
    return settings, Retriever(embedder, build_index(settings.index_config(), embedder))


def _common(settings: Settings) -> list[str]:
    return ["--corpus-dir", str(settings.corpus_dir), "--index-dir", str(settings.index_dir), "--log-level", "warning"]


def test_draft_then_eval_on_any_corpus(small: tuple[Settings, Retriever], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings, retriever = small

    def load(_settings, progress=False, serving=False):
        return retriever

    skeleton = tmp_path / "draft.jsonl"
    assert main(["eval", "draft", *_common(settings), "--out", str(skeleton), "--count", "6"], load=load) == 0
    printed = capsys.readouterr().out
    assert f"--questions {skeleton}" in printed and "3 documents" in printed
    entries = [json.loads(line) for line in skeleton.read_text(encoding="utf-8").splitlines()]
    answerable = [e for e in entries if e["kind"] != UNANSWERABLE]
    assert len(answerable) == 6 and len(entries) == 7  # one unanswerable slot
    assert {e["gold"][0]["source"] for e in answerable} == set(DOCS)
    for entry in answerable:
        (gold,) = entry["gold"]
        text = DOCS[gold["source"]]
        assert gold["quote"] in text and "\n" not in gold["quote"]
        at = text.index(gold["quote"])
        line_start = text.rfind("\n", 0, at) + 1
        assert (at, at + len(gold["quote"])) in split_sentences(text, line_start, text.index("\n", at))
    assert len({e["gold"][0]["quote"] for e in answerable}) == 6

    # unwritten: cited eval names them on one line, exit 1, no traceback
    assert main(["eval", *_common(settings), "--questions", str(skeleton), "--out", str(tmp_path / "r")], load=load) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "7 questions not written yet" in err and "lines 1-7" in err and "writing-questions.md" in err

    # written: the draft is a question set like any other
    for n, entry in enumerate(entries):
        entry["question"] = f"What does sentence {n} say?"
        del entry["note"]
    written = tmp_path / "written.jsonl"
    written.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries), encoding="utf-8")
    assert len(load_questions(written, settings.corpus_dir)) == 7
    out = tmp_path / "report"
    assert main(["eval", *_common(settings), "--questions", str(written), "--out", str(out)], load=load) == 0
    assert json.loads((out / "report.json").read_text(encoding="utf-8"))["aggregates"]["overall"]["n"] == 6
    assert (out / "hit_at_k.png").is_file()


def test_draft_never_overwrites_a_file(small: tuple[Settings, Retriever], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings, _ = small
    kept = tmp_path / "questions.jsonl"
    kept.write_text("someone's questions\n", encoding="utf-8")

    def load(*args, **kwargs):
        raise AssertionError("refused before loading anything")

    assert main(["eval", "draft", *_common(settings), "--out", str(kept)], load=load) == 1
    assert "exists" in capsys.readouterr().err and kept.read_text(encoding="utf-8") == "someone's questions\n"


def test_the_seed_questions_on_another_corpus_say_so(small: tuple[Settings, Retriever], capsys: pytest.CaptureFixture[str]) -> None:
    settings, _ = small
    questions = ROOT / "eval" / "questions.jsonl"
    assert main(["eval", *_common(settings), "--questions", str(questions)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "another corpus" in err and "seeds/" in err and "cited eval draft" in err
    with pytest.raises(QuestionSetError, match="another corpus"):
        load_questions(questions, settings.corpus_dir)

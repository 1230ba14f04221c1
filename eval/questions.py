"""The hand-written question set: reading ``questions.jsonl`` and refusing a broken one, naming where."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from index.errors import CitedError

__all__ = ["KINDS", "UNANSWERABLE", "Gold", "Question", "QuestionSetError", "load_questions"]

UNANSWERABLE = "unanswerable"
# The kinds a question may have; the report groups its aggregates by these.
KINDS = ("factoid", "paraphrase", "alias", "multi-source", UNANSWERABLE)

_FIELDS = {"id", "kind", "question", "gold", "note"}


class QuestionSetError(CitedError):
    """The question file is malformed or disagrees with the corpus; the message says where."""


@dataclass(frozen=True)
class Gold:
    """A passage that answers the question: a verbatim quote from one corpus file."""

    source: str  # file name relative to the corpus folder, as a citation shows it
    quote: str


@dataclass(frozen=True)
class Question:
    id: str
    kind: str
    question: str
    gold: tuple[Gold, ...]
    note: str = ""

    @property
    def answerable(self) -> bool:
        """Unanswerable questions have no gold and are kept out of the ranking metrics."""
        return self.kind != UNANSWERABLE


def load_questions(path: Path, corpus_dir: Path) -> tuple[Question, ...]:
    """The questions in file order; a gold quote must occur verbatim in its file, or a retyped
    quote would silently become unfindable and turn a good answer into a miss."""
    path = Path(path)
    corpus_dir = Path(corpus_dir)
    if not path.is_file():
        raise QuestionSetError(f"question file {path} not found")
    if not corpus_dir.is_dir():
        raise QuestionSetError(f"corpus folder {corpus_dir} not found (the gold quotes are checked against it)")
    questions: list[Question] = []
    seen: dict[str, int] = {}
    texts: dict[str, str] = {}
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            where = f"{path}:{number}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise QuestionSetError(f"{where}: not valid UTF-8 ({exc.reason})") from None
            if not line.strip():
                continue
            question = _parse(line, where)
            if question.id in seen:
                raise QuestionSetError(f"{where}: duplicate id {question.id!r} (first on line {seen[question.id]})")
            seen[question.id] = number
            for gold in question.gold:
                _check_quote(question.id, gold, corpus_dir, texts)
            questions.append(question)
    if not questions:
        raise QuestionSetError(f"question file {path} holds no questions")
    return tuple(questions)


def _parse(line: str, where: str) -> Question:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise QuestionSetError(f"{where}: malformed JSON ({exc.msg})") from None
    if not isinstance(record, dict):
        raise QuestionSetError(f"{where}: expected a JSON object")
    qid = record.get("id")
    if not isinstance(qid, str) or not qid.strip():
        raise QuestionSetError(f"{where}: 'id' must be a non-empty string")
    where = f"{where}: question {qid!r}"
    if unknown := set(record) - _FIELDS:
        raise QuestionSetError(f"{where}: unknown field(s) {', '.join(sorted(unknown))} (accepted: {', '.join(sorted(_FIELDS))})")
    kind = record.get("kind")
    if kind not in KINDS:
        raise QuestionSetError(f"{where}: unknown kind {kind!r} (accepted: {', '.join(KINDS)})")
    text = record.get("question")
    if not isinstance(text, str) or not text.strip():
        raise QuestionSetError(f"{where}: 'question' must be a non-empty string")
    note = record.get("note", "")
    if not isinstance(note, str):
        raise QuestionSetError(f"{where}: 'note' must be a string")
    raw_gold = record.get("gold", [])
    if not isinstance(raw_gold, list):
        raise QuestionSetError(f"{where}: 'gold' must be a list")
    gold = tuple(_parse_gold(g, where) for g in raw_gold)
    if kind == UNANSWERABLE and gold:
        raise QuestionSetError(f"{where}: an unanswerable question must have no gold quotes")
    if kind != UNANSWERABLE and not gold:
        raise QuestionSetError(f"{where}: a {kind} question needs at least one gold quote")
    if len(set(gold)) != len(gold):
        raise QuestionSetError(f"{where}: the same gold quote is listed twice")
    return Question(id=qid, kind=kind, question=text, gold=gold, note=note)


def _parse_gold(item: object, where: str) -> Gold:
    if not isinstance(item, dict) or set(item) != {"source", "quote"}:
        raise QuestionSetError(f"{where}: each gold must be an object with exactly 'source' and 'quote'")
    source, quote = item["source"], item["quote"]
    if not isinstance(source, str) or not source:
        raise QuestionSetError(f"{where}: gold 'source' must be a non-empty string")
    if not isinstance(quote, str) or not any(ch.isalnum() for ch in quote):
        # A quote without letters or digits would match (after normalisation) everywhere.
        raise QuestionSetError(f"{where}: gold quote {quote!r} must contain letters or digits")
    return Gold(source=source, quote=quote)


def _check_quote(qid: str, gold: Gold, corpus_dir: Path, texts: dict[str, str]) -> None:
    if gold.source not in texts:
        file = corpus_dir / gold.source
        inside = file.resolve().is_relative_to(corpus_dir.resolve())
        if not inside or not file.is_file():
            raise QuestionSetError(f"question {qid!r}: gold file {gold.source!r} not found in {corpus_dir}")
        try:
            texts[gold.source] = file.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise QuestionSetError(f"question {qid!r}: gold file {gold.source!r} is not valid UTF-8 ({exc.reason})") from None
    if gold.quote not in texts[gold.source]:
        raise QuestionSetError(f"question {qid!r}: quote not found verbatim in {gold.source}: {gold.quote!r}")

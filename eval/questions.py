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
    quote would silently become unfindable and turn a good answer into a miss.

    Every line is checked before anything is refused, and the error lists each problem on a line of
    its own (``path:line: question 'id': what is wrong``), so one run shows everything to fix.
    Questions not written yet (an empty ``question``, as ``cited eval draft`` leaves them) are
    named together on one line. A set whose gold files are all missing from ``corpus_dir`` was
    written for another corpus, and says so in one line instead.
    """
    path = Path(path)
    corpus_dir = Path(corpus_dir)
    if not path.is_file():
        raise QuestionSetError(f"question file {path} not found")
    if not corpus_dir.is_dir():
        raise QuestionSetError(f"corpus folder {corpus_dir} not found (the gold quotes are checked against it)")
    questions: list[Question] = []
    problems: list[str] = []
    unwritten: list[tuple[int, str]] = []  # line and id of each question still to be written
    missing: dict[str, list[str]] = {}  # gold file not in the corpus → where it is named
    seen: dict[str, int] = {}
    texts: dict[str, str | None] = {}  # None: not in the corpus
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            where = f"{path}:{number}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                problems.append(f"{where}: not valid UTF-8 ({exc.reason})")
                continue
            if not line.strip():
                continue
            try:
                question, written = _parse(line, where)
            except QuestionSetError as exc:
                problems.append(str(exc))
                continue
            if question.id in seen:
                problems.append(f"{where}: duplicate id {question.id!r} (first on line {seen[question.id]})")
                continue
            seen[question.id] = number
            if not written:
                unwritten.append((number, question.id))
            ok = True
            for gold in question.gold:
                problem = _check_quote(gold, corpus_dir, texts)
                if problem == _MISSING:
                    missing.setdefault(gold.source, []).append(f"{where}: question {question.id!r}")
                    problem = f"gold file {gold.source!r} not found in {corpus_dir}"
                if problem:
                    problems.append(f"{where}: question {question.id!r}: {problem}")
                    ok = False
            if ok:
                questions.append(question)
    named = {g.source for q in questions for g in q.gold} | set(missing)
    if missing and set(missing) == named:
        raise QuestionSetError(_wrong_corpus(path, corpus_dir, missing))
    if unwritten:
        problems.append(_unwritten(path, unwritten))
    if len(problems) == 1:
        raise QuestionSetError(problems[0])
    if problems:
        shown = problems[:_MAX_SHOWN] + ([f"… and {len(problems) - _MAX_SHOWN} more"] if len(problems) > _MAX_SHOWN else [])
        raise QuestionSetError("\n".join([f"{path}: {len(problems)} problems", *shown]))
    if not questions:
        raise QuestionSetError(f"question file {path} holds no questions")
    return tuple(questions)


_MAX_SHOWN = 50  # problems listed in one error; a file broken on every line says so in the count
_MISSING = "missing"


def _wrong_corpus(path: Path, corpus_dir: Path, missing: dict[str, list[str]]) -> str:
    first = next(iter(missing))  # in the order the file names them
    qid = missing[first][0].rpartition(": question ")[2]
    count = f"the {len(missing)} gold files it names" if len(missing) > 1 else "the gold file it names"
    return (
        f"{path} was written for another corpus: none of {count} (e.g. {first!r}, named by question {qid}) "
        f"is in {corpus_dir}. The default question set belongs to seeds/; for {corpus_dir}, draft a set with "
        f"`cited eval draft --corpus-dir {corpus_dir}`, write its questions, then pass it with --questions"
    )


def _unwritten(path: Path, unwritten: list[tuple[int, str]]) -> str:
    """One line for every question not written yet: a fresh draft has dozens, all alike."""
    n = len(unwritten)
    lines = _ranges([number for number, _ in unwritten])
    ids = f" ({', '.join(repr(qid) for _, qid in unwritten)})" if n <= 5 else ""
    return (
        f"{path}: {n} question{'s' if n > 1 else ''} not written yet (empty 'question') on line{'s' if n > 1 else ''} "
        f"{lines}{ids}: write the question each gold quote answers, see docs/writing-questions.md"
    )


def _ranges(numbers: list[int]) -> str:
    """``[1, 2, 3, 5]`` → ``"1-3, 5"``."""
    spans: list[list[int]] = []
    for n in sorted(numbers):
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def _parse(line: str, where: str) -> tuple[Question, bool]:
    """The question on one line, and whether its text is written (a draft's is empty)."""
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
    if not isinstance(text, str):
        raise QuestionSetError(f"{where}: 'question' must be a string")
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
    return Question(id=qid, kind=kind, question=text, gold=gold, note=note), bool(text.strip())


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


def _check_quote(gold: Gold, corpus_dir: Path, texts: dict[str, str | None]) -> str | None:
    """What is wrong with one gold quote (``_MISSING`` when its file is not in the corpus), or None."""
    if gold.source not in texts:
        file = corpus_dir / gold.source
        inside = file.resolve().is_relative_to(corpus_dir.resolve())
        if not inside or not file.is_file():
            texts[gold.source] = None
        else:
            try:
                texts[gold.source] = file.read_bytes().decode("utf-8")
            except UnicodeDecodeError as exc:
                return f"gold file {gold.source!r} is not valid UTF-8 ({exc.reason})"
    text = texts[gold.source]
    if text is None:
        return _MISSING
    if gold.quote not in text:
        return (
            f"quote not found verbatim in {gold.source}: {gold.quote!r} (copy it from the file as it is: "
            "same quote marks, dashes, spacing and line breaks)"
        )
    return None

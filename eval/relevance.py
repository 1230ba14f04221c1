"""What counts as a relevant result: gold quotes become spans in any file, spans judge citations."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from eval.questions import Question, QuestionSetError

__all__ = [
    "MIN_OVERLAP",
    "Corpus",
    "GoldSpan",
    "citations_of",
    "covered_golds",
    "covers",
    "covers_pieces",
    "find_spans",
    "gold_id",
    "gold_spans",
    "normalise",
    "quote_qrels",
    "quote_ranking",
]

# Share of a gold span's characters a passage must overlap to count as covering it. A
# Fraction, so the boundary (exactly half) is compared without float rounding.
MIN_OVERLAP = Fraction(1, 2)

SpansPerGold = tuple[tuple["GoldSpan", ...], ...]  # index i: the alternative spans of gold quote i


@dataclass(frozen=True, order=True)
class GoldSpan:
    """Where a gold quote sits in one file: ``text[start:end]`` (original offsets)."""

    source: str
    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


def covers(span: GoldSpan, source: str, start: int, end: int) -> bool:
    """Overlap of at least MIN_OVERLAP of the span's own length in its file, so a quote in the
    stripped scrape (a few characters shorter) is judged against the text that is there."""
    return covers_pieces(span, source, ((start, end),))


def covers_pieces(span: GoldSpan, source: str, pieces: Iterable[tuple[int, int]]) -> bool:
    """:func:`covers` for pieces of one file counted together (each character once), so a quote
    running over two highlighted sentences is covered by the pair though neither holds half of it."""
    if source != span.source:
        return False
    overlap, reached = 0, span.start  # characters of span counted so far all lie before `reached`
    for start, end in sorted(pieces):
        start, end = max(start, reached), min(end, span.end)
        if end > start:
            overlap += end - start
            reached = end
    return overlap > 0 and overlap >= MIN_OVERLAP * span.length


def normalise(text: str) -> tuple[str, list[int]]:
    """Casefolded letters and digits with their offsets in ``text``: quote marks, apostrophes,
    dashes and spacing stop mattering, and a match maps back to the original text."""
    chars: list[str] = []
    offsets: list[int] = []
    for i, ch in enumerate(text):
        if ch.isalnum():
            for piece in ch.casefold():
                if piece.isalnum():
                    chars.append(piece)
                    offsets.append(i)
    return "".join(chars), offsets


class Corpus:
    """Every ``*.txt`` under the folder as UTF-8 without newline translation, keyed as a citation's ``source``:
    read the way the index reads it, so offsets agree."""

    def __init__(self, texts: Mapping[str, str]) -> None:
        self.texts = dict(texts)
        self._normalised: dict[str, tuple[str, list[int]]] = {}

    @classmethod
    def read(cls, corpus_dir: Path) -> Corpus:
        corpus_dir = Path(corpus_dir)
        if not corpus_dir.is_dir():
            raise QuestionSetError(f"corpus folder {corpus_dir} not found")
        texts = {}
        for path in sorted(p for p in corpus_dir.rglob("*.txt") if p.is_file()):
            source = path.relative_to(corpus_dir).as_posix()
            try:
                texts[source] = path.read_bytes().decode("utf-8")
            except UnicodeDecodeError as exc:
                raise QuestionSetError(f"corpus file {source} is not valid UTF-8 ({exc.reason})") from None
        return cls(texts)

    def normalised(self, source: str) -> tuple[str, list[int]]:
        if source not in self._normalised:
            self._normalised[source] = normalise(self.texts[source])
        return self._normalised[source]


def _occurrences(needle: str, haystack: str) -> Iterable[int]:
    """Start of every occurrence, overlapping ones included."""
    at = haystack.find(needle)
    while at >= 0:
        yield at
        at = haystack.find(needle, at + 1)


def find_spans(quote: str, corpus: Corpus) -> tuple[GoldSpan, ...]:
    """Every place ``quote`` occurs in any file, exactly or after normalisation, each place once (exact wins)."""
    spans: set[GoldSpan] = set()
    for source, text in corpus.texts.items():
        spans.update(GoldSpan(source, at, at + len(quote)) for at in _occurrences(quote, text))
    target, _ = normalise(quote)
    if target:
        for source in corpus.texts:
            norm, offsets = corpus.normalised(source)
            exact = [s for s in spans if s.source == source]
            for at in _occurrences(target, norm):
                span = GoldSpan(source, offsets[at], offsets[at + len(target) - 1] + 1)
                if not any(s.start < span.end and span.start < s.end for s in exact):
                    spans.add(span)
    return tuple(sorted(spans))


def gold_spans(questions: Iterable[Question], corpus: Corpus) -> dict[str, SpansPerGold]:
    """The alternative spans of each gold quote; a quote found nowhere is the question's fault, not a miss."""
    result: dict[str, SpansPerGold] = {}
    for question in questions:
        per_gold = []
        for gold in question.gold:
            spans = find_spans(gold.quote, corpus)
            if not spans:
                raise QuestionSetError(f"question {question.id!r}: quote found in no corpus file (named {gold.source}): {gold.quote!r}")
            per_gold.append(spans)
        result[question.id] = tuple(per_gold)
    return result


def gold_id(index: int) -> str:
    """The id of gold quote ``index`` (0-based) in qrels and rankings: "g1", "g2", ..."""
    return f"g{index + 1}"


def quote_qrels(spans: Mapping[str, SpansPerGold]) -> dict[str, dict[str, int]]:
    """One binary judgment per gold quote: the complete list of what a question needs, unlike passages."""
    return {qid: {gold_id(i): 1 for i in range(len(per_gold))} for qid, per_gold in spans.items()}


def citations_of(result: Mapping[str, Any]) -> list[tuple[str, int, int]]:
    """``(source, start, end)`` of the result's citation, then of each ``also_in`` entry (a citation or a result)."""
    found = []
    for item in [result, *(result.get("also_in") or ())]:
        citation = item.get("citation", item)
        found.append((citation["source"], int(citation["start"]), int(citation["end"])))
    return found


def covered_golds(result: Mapping[str, Any], per_gold: SpansPerGold) -> list[int]:
    """Indexes of the gold quotes this result covers, through any of its citations."""
    citations = citations_of(result)
    return [
        i
        for i, spans in enumerate(per_gold)
        if any(covers(span, *citation) for span in spans for citation in citations)
    ]


def quote_ranking(results: Sequence[Mapping[str, Any]], per_gold: SpansPerGold) -> list[str]:
    """Each result named after the first gold quote it is first to cover, else ``"-<rank>"``: a second
    passage with the same quote earns nothing, so each quote is credited once."""
    ranking: list[str] = []
    seen: set[int] = set()
    for position, result in enumerate(results, start=1):
        new = [i for i in covered_golds(result, per_gold) if i not in seen]
        if new:
            seen.add(new[0])
            ranking.append(gold_id(new[0]))
        else:
            ranking.append(f"-{position}")
    return ranking

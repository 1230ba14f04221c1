"""What counts as a relevant result: gold quotes become spans, spans judge citations.

This module owns three decisions, so the runner never has to make them:

* **Where a gold quote is.** A quote becomes every span, in *any* corpus file, where it
  occurs exactly or after :func:`normalise` (casefold, letters and digits only). The corpus
  holds two scrapes of one article, one with curly quotes and apostrophes and one with them
  stripped ("what’s" / "whats"); a passage from either scrape answers the question equally
  well, and hard-coding which files are duplicates would break with the next corpus. Each
  occurrence is an alternative span of the same gold: covering any one of them finds it.
* **When a passage covers a span** (:func:`covers`): it must be in the same file and overlap
  the span by at least :data:`MIN_OVERLAP` of the span's length. Passages are cut by a
  token budget, so a quote often straddles two passages; requiring the whole quote would
  call both of them misses, while any overlap at all would reward a passage that merely
  touches the quote's first word. The same rule judges the answer sentence and highlighted
  sentences (:func:`covers_pieces` counts several pieces of one file together).
* **How a result list becomes a ranking the metrics can score** (:func:`quote_ranking`):
  each result is named after the first gold quote it covers that no higher result already
  covered, so :mod:`eval.metrics` sees each gold quote at most once -- see the runner's
  "quote-level nDCG".

Results are dicts shaped like the API's ``QueryResponse.results`` items. A result may carry
``also_in`` (citations of near-duplicate passages in other files); it covers a span when its
own citation or any ``also_in`` citation does.
"""

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
    """True when the passage ``source[start:end]`` overlaps ``span`` by >= MIN_OVERLAP of its length.

    The length is the span's own length in its file, so a quote found in the stripped
    scrape (a few characters shorter) is judged against the text that is actually there.
    """
    return covers_pieces(span, source, ((start, end),))


def covers_pieces(span: GoldSpan, source: str, pieces: Iterable[tuple[int, int]]) -> bool:
    """:func:`covers` for text shown in several pieces of one file, e.g. two highlighted sentences.

    The pieces' characters inside ``span`` are counted together (each character once, should
    pieces overlap), so a quote that runs over two highlighted sentences is covered by the
    pair even when neither sentence alone holds half of it.
    """
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
    """Casefolded letters and digits of ``text``, and for each of them its offset in ``text``.

    Dropping everything else makes curly and straight quotes, stripped apostrophes, dashes
    and whitespace differences irrelevant; the offsets map a match back to the original
    text. A character whose casefold is longer ("ß" -> "ss") maps every piece to itself.
    """
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
    """The corpus files' texts by source name, read the way the index reads them.

    Every ``*.txt`` under the folder, decoded as UTF-8 without newline translation, keyed by
    its path relative to the folder -- exactly what a citation's ``source`` shows.
    """

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
    """Every place ``quote`` occurs in any corpus file, exactly or after normalisation.

    An exact occurrence keeps the quote's exact boundaries; a normalised occurrence that
    overlaps an exact one in the same file is the same place and is dropped, so each place
    is listed once. Sorted by file, then offset.
    """
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
    """For each question id, the alternative spans of each of its gold quotes (in gold order).

    Raises :class:`QuestionSetError` when a quote is found nowhere: that gold could never be
    retrieved, and scoring it as a miss would blame the retriever for a bad question.
    """
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
    """``{question id: {gold id: 1}}``: one binary judgment per gold *quote*, not per passage.

    Only retrieved passages are ever seen, never all passages of the corpus that overlap a
    quote, so passage-level qrels would be incomplete; quotes are the complete list of what
    a question needs.
    """
    return {qid: {gold_id(i): 1 for i in range(len(per_gold))} for qid, per_gold in spans.items()}


def citations_of(result: Mapping[str, Any]) -> list[tuple[str, int, int]]:
    """``(source, start, end)`` of the result's citation, then of each ``also_in`` entry.

    An ``also_in`` entry may be a citation itself or a result-shaped dict with a ``citation``.
    """
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
    """The results as a ranking over gold ids, for :mod:`eval.metrics`.

    A result becomes the id of the first gold quote it covers that no higher-ranked result
    already covered; any other result becomes a unique non-relevant id (``"-<rank>"``). So
    a second passage with the same quote earns nothing, and the ranking never lists an id
    twice. A passage covering two new quotes is credited with one of them.
    """
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

"""Whether a generated answer's citations hold: each ``[n]`` names a passage that was sent, and each
sentence says only what a passage it cites says.

A language model's citations are claims like any other. Peers pass them on unchecked; here each
answer sentence is compared with the sentences of the passages it cites, and marked supported
only when one of them contains it:

- **lexical containment**: at least ``LEXICAL_SUPPORT`` of the sentence's distinct content terms
  (the BM25 tokenizer's: lower case, stopwords out, Snowball stems, so "pressed" meets "press")
  occur in one sentence of the cited passage; or
- **sentence-vector similarity**: the sentence's embedding (the index's own model) has cosine at
  least ``VECTOR_SUPPORT`` with one sentence of the cited passage,

and, either way, every number the sentence states occurs in that passage sentence: a changed
figure ("90 tons" for "45 tons") keeps most words and most of the meaning, and is exactly the
error a reader cannot afford.

Markers: ``[2]``, ``[1, 3]``, ``[1][2]`` (and ranges ``[1-3]``). A marker naming a number that was
not sent is listed as invalid. Markers opening a sentence ("... in 2000. [1] Then ...") belong
to the sentence before: models put them on either side of the full stop.

A sentence without any marker is **not** passed silently: it is ``supported: false`` with reason
``"uncited"`` (a reader cannot check it), except the one sentence the prompt asks for when the
passages do not answer (``NO_ANSWER``), which claims nothing and is supported. ``match`` still
names a sent passage that contains an uncited sentence, if any, so a client can show where it
could have come from.

The thresholds were chosen by ``cited eval support-threshold`` (eval/support_threshold.py) on
the project's question set: docs/generation.md gives the separation it measured.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from index.sentences import split_sentences
from index.types import Passage, Span

__all__ = [
    "LEXICAL_SUPPORT",
    "NO_ANSWER",
    "VECTOR_SUPPORT",
    "CheckedAnswer",
    "CheckedSentence",
    "InvalidMarker",
    "Match",
    "Marker",
    "Signals",
    "check_answer",
    "containment",
    "markers",
    "numbers",
    "signals",
    "strip_markers",
    "support_kind",
]

# Chosen by `cited eval support-threshold` (eval/support_threshold.py) on eval/questions.jsonl and the
# 36 hand-written paraphrases of eval/support_paraphrases.jsonl: per test, one grid step above the lowest
# value that supports no gold sentence against another question's passage (7,604 pairs). Measured:
# copies 71/72 and paraphrases 31/36 supported, 0 of 7,604 other-question and 0 of 324 nearest other
# passages; docs/generation.md has the whole separation table.
LEXICAL_SUPPORT = 0.65
VECTOR_SUPPORT = 0.84

# What the prompt (index/generate.py) asks the model to say when the passages do not answer.
NO_ANSWER = "The passages do not answer the question."

# [3], [1, 2], [1,2], [1-3], [1–3]; several in a row ([1][2]) are several markers
_MARKER = re.compile(r"\[\s*(\d+(?:\s*(?:,|-|–)\s*\d+)*)\s*\]")
_LEADING_MARKERS = re.compile(r"(?:\s*\[\s*\d+(?:\s*(?:,|-|–)\s*\d+)*\s*\])+[\s.,;:!?]*")
_NUMBER = re.compile(r"\d[\d,.]*\d|\d")
_MAX_RANGE = 50  # a range wider than this is a typo, not fifty citations


@dataclass(frozen=True)
class Marker:
    """One ``[...]`` in the answer: where it is and the passage numbers it names."""

    start: int
    end: int
    numbers: tuple[int, ...]


@dataclass(frozen=True)
class InvalidMarker:
    """A marker naming a passage number that was not sent."""

    start: int
    end: int
    text: str
    number: int


@dataclass(frozen=True)
class Match:
    """The passage sentence that contains an answer sentence: which passage, where in its file, how."""

    passage: int  # the [n] it was sent as
    span: Span  # the passage sentence's offsets in the passage's document (as its citation's)
    text: str
    how: str  # "lexical" or "vector"
    containment: float  # share of the answer sentence's content terms in this sentence
    cosine: float


@dataclass(frozen=True)
class CheckedSentence:
    span: Span  # offsets in the answer text, markers included
    text: str
    citations: tuple[int, ...]  # the valid passage numbers its markers name, in order of first mention
    supported: bool
    reason: str  # "supported", "no_answer", "uncited", "invalid_citation" or "not_in_cited"
    match: Match | None = None  # supported: the passage sentence that holds it; uncited: one that would


@dataclass(frozen=True)
class CheckedAnswer:
    sentences: tuple[CheckedSentence, ...]
    invalid: tuple[InvalidMarker, ...] = field(default=())

    @property
    def supported(self) -> bool:
        """False if any sentence is unsupported, any marker names a passage that was not sent, or there is no sentence at all."""
        return bool(self.sentences) and not self.invalid and all(s.supported for s in self.sentences)

    @property
    def supported_share(self) -> float | None:
        return sum(s.supported for s in self.sentences) / len(self.sentences) if self.sentences else None


def _numbers_in(body: str) -> tuple[int, ...]:
    found: list[int] = []
    for part in body.split(","):
        bounds = re.split(r"\s*[-–]\s*", part.strip())
        if len(bounds) == 2:
            low, high = int(bounds[0]), int(bounds[1])
            if low <= high and high - low <= _MAX_RANGE:
                found.extend(range(low, high + 1))
                continue
        found.extend(int(b) for b in bounds if b)
    return tuple(dict.fromkeys(found))


def markers(text: str) -> list[Marker]:
    """Every citation marker in ``text``, in order."""
    return [Marker(m.start(), m.end(), _numbers_in(m.group(1))) for m in _MARKER.finditer(text)]


def strip_markers(text: str) -> str:
    """The sentence as a claim: markers out, spacing tidied."""
    return " ".join(_MARKER.sub(" ", text).split()).replace(" .", ".").replace(" ,", ",")


def numbers(text: str) -> set[str]:
    """Figures stated in ``text``, thousands separators and trailing stops dropped ("1,000." is "1000")."""
    return {n.replace(",", "").rstrip(".") for n in _NUMBER.findall(_MARKER.sub(" ", text))}


def _answer_sentences(answer: str) -> list[tuple[int, int]]:
    """The answer's sentences (the project's splitter), with leading markers given to the sentence before."""
    spans: list[list[int]] = []
    for start, end in split_sentences(answer):
        lead = _LEADING_MARKERS.match(answer, start, end)
        if lead and spans and lead.end() > start:
            spans[-1][1] = max(spans[-1][1], start + len(answer[start:lead.end()].rstrip()))
            start = lead.end()
            while start < end and answer[start].isspace():
                start += 1
            if start >= end:
                continue
        spans.append([start, end])
    return [(s, e) for s, e in spans]


@dataclass(frozen=True)
class _PassageSentences:
    spans: list[Span]  # document offsets
    texts: list[str]
    terms: list[set[str]]
    vectors: np.ndarray


def _passage_sentences(passages: Sequence[Passage], terms: Callable[[list[str]], list[list[str]]],
                       encode: Callable[[list[str]], np.ndarray]) -> list[_PassageSentences]:
    spans = [[(p.start + s, p.start + e) for s, e in split_sentences(p.text)] for p in passages]
    texts = [[p.text[s - p.start : e - p.start] for s, e in ss] for p, ss in zip(passages, spans, strict=True)]
    flat = [t for ts in texts for t in ts]
    flat_terms = terms(flat) if flat else []
    flat_vectors = encode(flat) if flat else np.zeros((0, 0), dtype=np.float32)
    out: list[_PassageSentences] = []
    at = 0
    for ss, ts in zip(spans, texts, strict=True):
        out.append(_PassageSentences([Span(s, e) for s, e in ss], ts, [set(t) for t in flat_terms[at : at + len(ts)]],
                                     flat_vectors[at : at + len(ts)]))
        at += len(ts)
    return out


def containment(claim_terms: set[str], sentence_terms: set[str]) -> float:
    """Share of the claim's distinct content terms that occur in the sentence; 0 for a claim without any."""
    return len(claim_terms & sentence_terms) / len(claim_terms) if claim_terms else 0.0


@dataclass(frozen=True)
class Signals:
    """How well one passage sentence contains a claim."""

    containment: float  # share of the claim's content terms in the sentence
    cosine: float  # of their sentence vectors
    figures_kept: bool  # every number the claim states is in the sentence


def signals(claim: str, claim_terms: set[str], claim_vector: np.ndarray, texts: Sequence[str],
            terms: Sequence[set[str]], vectors: np.ndarray) -> list[Signals]:
    """The claim against each sentence (``texts``, their ``terms`` and unit ``vectors``)."""
    figures = numbers(claim)
    cosines = vectors @ claim_vector if len(texts) else np.zeros(0)
    return [Signals(containment(claim_terms, t), float(c), figures <= numbers(x)) for x, t, c in zip(texts, terms, cosines, strict=True)]


def support_kind(s: Signals, lexical: float = LEXICAL_SUPPORT, cosine: float = VECTOR_SUPPORT) -> str | None:
    """"lexical" or "vector" when the sentence contains the claim by that test, else None."""
    if not s.figures_kept:
        return None
    return "lexical" if s.containment >= lexical else "vector" if s.cosine >= cosine else None


def _best_match(number: int, claim: str, claim_terms: set[str], vector: np.ndarray, sentences: _PassageSentences,
                lexical: float, cosine: float) -> Match | None:
    """The passage sentence that contains the claim most clearly, if one does."""
    best: tuple[float, Match] | None = None
    found = signals(claim, claim_terms, vector, sentences.texts, sentences.terms, sentences.vectors)
    for i, s in enumerate(found):
        how = support_kind(s, lexical, cosine)
        if how is None:
            continue
        strength = max(s.containment - lexical, s.cosine - cosine)
        if best is None or strength > best[0]:
            best = (strength, Match(number, sentences.spans[i], sentences.texts[i], how, round(s.containment, 4), round(s.cosine, 4)))
    return None if best is None else best[1]


def _best_of(numbers_: Sequence[int], claim: str, claim_terms: set[str], vector: np.ndarray,
             table: Sequence[_PassageSentences], lexical: float, cosine: float) -> Match | None:
    """The clearest match among the passages ``numbers_``; on equal strength, the first named."""
    found = [m for n in numbers_ if (m := _best_match(n, claim, claim_terms, vector, table[n - 1], lexical, cosine)) is not None]
    return max(found, key=lambda m: max(m.containment - lexical, m.cosine - cosine), default=None)


def check_answer(
    answer: str,
    passages: Sequence[Passage],
    terms: Callable[[list[str]], list[list[str]]],
    encode: Callable[[list[str]], np.ndarray],
    lexical: float = LEXICAL_SUPPORT,
    cosine: float = VECTOR_SUPPORT,
) -> CheckedAnswer:
    """Check every sentence of ``answer`` against the passages sent as [1]..[len(passages)].

    ``terms`` is the BM25 tokenizer (``Retriever.lexicon.terms``); ``encode`` the embedding model
    (unit vectors, ``Embedder.encode``). One forward pass covers the answer's sentences and every
    sentence of the passages.
    """
    found = markers(answer)
    invalid = tuple(
        InvalidMarker(m.start, m.end, answer[m.start : m.end], n) for m in found for n in m.numbers if not 1 <= n <= len(passages)
    )
    spans = _answer_sentences(answer)
    claims = [strip_markers(answer[s:e]) for s, e in spans]
    claim_terms = [set(t) for t in terms(claims)] if claims else []
    claim_vectors = encode(claims) if claims else np.zeros((0, 0), dtype=np.float32)
    table = _passage_sentences(passages, terms, encode)
    checked: list[CheckedSentence] = []
    for (start, end), claim, words, vector in zip(spans, claims, claim_terms, claim_vectors, strict=True):
        named = tuple(dict.fromkeys(n for m in found if start <= m.start < end for n in m.numbers))
        cited = tuple(n for n in named if 1 <= n <= len(passages))
        text = answer[start:end]
        if not named:
            if _is_no_answer(claim):
                checked.append(CheckedSentence(Span(start, end), text, (), True, "no_answer"))
                continue
            match = _best_of(range(1, len(passages) + 1), claim, words, vector, table, lexical, cosine)
            checked.append(CheckedSentence(Span(start, end), text, (), False, "uncited", match))
            continue
        match = _best_of(cited, claim, words, vector, table, lexical, cosine)
        if match is not None:
            checked.append(CheckedSentence(Span(start, end), text, cited, True, "supported", match))
        else:
            checked.append(CheckedSentence(Span(start, end), text, cited, False, "invalid_citation" if not cited else "not_in_cited"))
    return CheckedAnswer(tuple(checked), invalid)


def _is_no_answer(claim: str) -> bool:
    return " ".join(claim.lower().split()).rstrip(".") == NO_ANSWER.lower().rstrip(".")

"""The extractive answer: which one sentence of the top results answers the question.

Every sentence of the top ``ANSWER_FROM`` results is a candidate, scored with what the service
already knows about it, at the cost of a few dot products and a tokenization per sentence:

    score = cosine                      the sentence's dense cosine with the question (build-time vectors)
          + lexical · overlap           share of the question's terms (IDF-weighted) the sentence holds
          + neighbour · context         the best cosine of the sentences next to it in its passage (an
                                        answer often follows the sentence that restates the question)
          + expected · holds            the question asks how many / when / who and the sentence holds
                                        a number / a date / a name
          - rank · (passage rank - 1)   the ranker's verdict on the passage it sits in

``overlap`` uses the BM25 index's own tokenizer (lower case, stopwords, Snowball stems), so
"killed" matches "kill" the way retrieval does, and its IDF, so a shared rare name counts more
than a shared "China". Interrogatives and auxiliaries ("how", "many", "did") are left out of the
question's terms: they say what is asked, not what about. The answer-type rules are a few regular
expressions over the question's wording and the sentence, the same for every corpus.

Each result's highlights are its best sentences by the same score (the rank term is the same for
all of them), so the answer is always highlighted in its passage.

The weights were chosen on the seed question set with a coarse grid, and checked on held-out
halves and kinds (``cited eval answer-weights``, eval/answer_weights.py; docs/results.md,
"Highlights and the answer sentence"). Ties within ``index.ties.TIE_TOLERANCE`` go by document id,
then offset, as everywhere.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from index.highlight import HIGHLIGHT_MARGIN, MAX_HIGHLIGHTS, SentenceTable
from index.ties import ranked, stable_key
from index.types import Passage, Span

__all__ = [
    "ANSWER_FROM",
    "WEIGHTS",
    "AnswerSentence",
    "AnswerWeights",
    "Candidate",
    "answer_type",
    "candidates",
    "choose",
    "highlights",
    "holds",
    "idf_of",
    "Lexicon",
    "lexical_overlap",
]

ANSWER_FROM = 3  # the answer is a sentence of one of this many top results


@dataclass(frozen=True)
class AnswerSentence:
    """The single sentence that best answers the question, and the passage it sits in."""

    span: Span
    text: str
    passage: Passage


@dataclass(frozen=True)
class AnswerWeights:
    """How much each signal adds to a candidate's cosine (see the module docstring)."""

    lexical: float = 0.0
    neighbour: float = 0.0
    expected: float = 0.0
    rank: float = 0.0


# Chosen by `cited eval answer-weights` on the seed set (docs/results.md, "Highlights and the answer sentence").
WEIGHTS = AnswerWeights(lexical=0.5, neighbour=0.3, expected=0.3, rank=0.05)


@dataclass(frozen=True)
class Candidate:
    """One sentence of one top result, with the signals it is scored on."""

    rank: int  # of the passage it sits in, from 1
    passage: Passage
    span: Span  # file offsets
    cosine: float
    overlap: float  # in [0, 1]
    context: float  # best cosine of its neighbours in the passage; its own cosine without any
    holds: bool  # the question expects a number, date or name and the sentence has one

    @property
    def text(self) -> str:
        return self.passage.text[self.span.start - self.passage.start : self.span.end - self.passage.start]

    def score(self, weights: AnswerWeights) -> float:
        return (self.cosine + weights.lexical * self.overlap + weights.neighbour * self.context
                + weights.expected * self.holds - weights.rank * (self.rank - 1))


# -- what the question asks for ----------------------------------------------------------------

NUMBER, DATE, NAME = "number", "date", "name"

# Searched anywhere in the question ("Roughly how much ...", "According to X, about how many ...");
# the first kind that matches wins, dates first, so "since what year" is a date. A relative "who"
# ("Andrew Small, who talked ...") counts as a "who" question: the answer is then usually a name too.
_ASKS = (
    (DATE, re.compile(r"\b(when|since when|(in |since |by )?(what|which) (year|month|date|day|decade))\b", re.I)),
    (NUMBER, re.compile(r"\b(how (many|much|long|far|old|large|big)|what (share|percentage|proportion|number|amount))\b", re.I)),
    (NAME, re.compile(r"\b(who|whom|whose)\b", re.I)),
)

_MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
_NUMBER_WORDS = ("one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty|"
                 "hundred|hundreds|thousand|thousands|million|millions|billion|billions|dozen|dozens|decade|decades|half")
_YEAR = r"\b(?:1[89]\d\d|20\d\d)s?\b"
_FINDERS: dict[str, re.Pattern[str]] = {
    # a year is a date, not a count: "how many" wants another number, or a number word
    NUMBER: re.compile(rf"(?<![\w.,])(?!(?:1[89]\d\d|20\d\d)s?\b)\d[\d,.]*\d|(?<![\w.,])\d\b|\b(?:{_NUMBER_WORDS})\b", re.I),
    DATE: re.compile(rf"{_YEAR}|\b(?:{_MONTHS})\b|['’]\d0s\b|\b(?:nineties|eighties)\b", re.I),
    # two or more capitalised words in a row ("Jabbar Abdul Jabbar", "Muhammad al-Uyghuri")
    NAME: re.compile(r"[A-Z][\w'’.-]*(?:\s+(?:(?:al|el|bin|ibn|de|van|von)[- ])?[A-Z][\w'’-]*)+"),
}
_WORD = re.compile(r"\w+")
_FUNCTION_WORDS = frozenset("a an the this that these those in on at of for and but or as by from to with his her its their".split())


@lru_cache(maxsize=256)  # one question's candidates all ask it
def _words(text: str) -> frozenset[str]:
    return frozenset(w.lower() for w in _WORD.findall(text))


def answer_type(question: str) -> str | None:
    """What the question's wording asks for: ``"number"``, ``"date"``, ``"name"`` or None."""
    for kind, pattern in _ASKS:
        if pattern.search(question):
            return kind
    return None


def holds(kind: str | None, sentence: str, question: str = "") -> bool:
    """Whether ``sentence`` has what a question of ``kind`` asks for, beyond what the question itself says.

    A number, date or name the question already mentions is not an answer to it ("Who carried
    out the December 2022 attack?" is not answered by "On December 12, 2022, two men ..."). A
    name must have a word that is neither in the question nor a function word ("The ISKP").
    False when ``kind`` is None.
    """
    if kind is None:
        return False
    asked = _words(question)
    for match in _FINDERS[kind].finditer(sentence):
        words = [w.lower() for w in _WORD.findall(match.group())]
        if kind == NAME:
            words = [w for w in words if w not in _FUNCTION_WORDS]
            if len(words) < 2:
                continue
        if any(w not in asked for w in words):
            return True
    return False


# -- lexical overlap ---------------------------------------------------------------------------

# Words that say what is asked rather than what about; stemmed like the rest before comparing.
QUESTION_WORDS = frozenset(
    """how many much what which who whom whose when where why whether does did do has have had
    is are was were according roughly about approximately""".split()
)


class Lexicon:
    """Stemmed terms and their IDF, from the BM25 index's tokenizer and statistics."""

    def __init__(self, terms: Callable[[list[str]], list[list[str]]], idf: Callable[[str], float]) -> None:
        self._terms = terms
        self._idf = idf
        self._ignore = frozenset(t for ts in terms(sorted(QUESTION_WORDS)) for t in ts)

    def terms(self, texts: list[str]) -> list[list[str]]:
        return self._terms(texts)

    def question_terms(self, question: str) -> dict[str, float]:
        """The question's distinct terms with their IDF; words not in the corpus cannot match and are left out."""
        found = {t: self._idf(t) for t in self._terms([question])[0] if t not in self._ignore}
        return {t: w for t, w in found.items() if w > 0}


def lexical_overlap(question_terms: dict[str, float], sentence_terms: Sequence[str]) -> float:
    """The IDF-weighted share of the question's terms that occur in the sentence, in [0, 1]."""
    total = sum(question_terms.values())
    if total <= 0:
        return 0.0
    present = set(sentence_terms)
    return sum(w for t, w in question_terms.items() if t in present) / total


# -- the choice --------------------------------------------------------------------------------


def candidates(
    question: str,
    query: np.ndarray,
    top: Sequence[tuple[int, Passage]],
    table: SentenceTable,
    lexicon: Lexicon,
    sentence_terms: Callable[[Sequence[int], Sequence[str]], list[list[str]]] | None = None,
) -> list[Candidate]:
    """Every sentence of the ``top`` results, (row, passage) best first, with its signals.

    ``sentence_terms(ids, texts)`` gives the terms of the sentences with those ids (a cache of
    the caller's); by default they are tokenized here.
    """
    kind = answer_type(question)
    wanted = lexicon.question_terms(question)
    found: list[tuple[int, Passage, int, np.ndarray, int]] = []  # rank, passage, position, scores, sentence id
    for rank, (row, passage) in enumerate(top, 1):
        ids = np.asarray(table.members[row], dtype=np.int64)
        if len(ids) == 0:
            continue
        scores = table.vectors[ids] @ query
        found.extend((rank, passage, j, scores, int(ids[j])) for j in range(len(ids)))
    if not found:
        return []
    texts = [p.text[int(table.starts[i]) - p.start : int(table.ends[i]) - p.start] for _, p, _, _, i in found]
    ids = [i for *_, i in found]
    terms = sentence_terms(ids, texts) if sentence_terms is not None else lexicon.terms(texts)
    out = []
    for (rank, passage, j, scores, i), text, words in zip(found, texts, terms, strict=True):
        around = [float(scores[k]) for k in (j - 1, j + 1) if 0 <= k < len(scores)]
        out.append(Candidate(
            rank=rank,
            passage=passage,
            span=Span(int(table.starts[i]), int(table.ends[i])),
            cosine=float(scores[j]),
            overlap=lexical_overlap(wanted, words),
            context=max(around, default=float(scores[j])),
            holds=holds(kind, text, question),
        ))
    return out


def choose(found: Sequence[Candidate], weights: AnswerWeights = WEIGHTS) -> Candidate | None:
    """The best-scoring candidate; scores within the tie tolerance go by document id, then offset."""
    if not found:
        return None
    key = stable_key([(c.passage.doc_id, c.span.start, c.span.end, c.rank) for c in found])
    best, _ = ranked(((i, c.score(weights)) for i, c in enumerate(found)), key)[0]
    return found[best]


def highlights(found: Sequence[Candidate], weights: AnswerWeights = WEIGHTS) -> list[Span]:
    """One passage's highlighted sentences, in reading order: its best by the answer score, and up to
    ``MAX_HIGHLIGHTS - 1`` more within ``HIGHLIGHT_MARGIN`` of it (ties in reading order).

    The same score as the answer's, so the answer sentence is always highlighted in its passage.
    ``found`` are the candidates of one passage, in reading order.
    """
    if not found:
        return []
    order = ranked((i, c.score(weights)) for i, c in enumerate(found))
    best = order[0][1]
    chosen = sorted(i for i, s in order[:MAX_HIGHLIGHTS] if s >= best - HIGHLIGHT_MARGIN)
    return [found[i].span for i in chosen]


def idf_of(num_docs: int, df: int) -> float:
    """Lucene's BM25 IDF, as bm25s scores with it: ln(1 + (N - df + 0.5) / (df + 0.5)); 0 for an unseen term."""
    return math.log(1 + (num_docs - df + 0.5) / (df + 0.5)) if df > 0 else 0.0

"""Which sentences of a passage answer the question: sentence spans and vectors, scored by cosine.

Sentence vectors are computed once at build time, so highlighting a result costs a few dot
products at query time instead of a model call per sentence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from index.sentences import split_sentences
from index.ties import ranked
from index.types import Passage, Span

HIGHLIGHT_MARGIN = 0.05  # other sentences within this cosine of the best one are highlighted too
MAX_HIGHLIGHTS = 2


@dataclass(frozen=True)
class SentenceTable:
    """Unique sentences of the corpus and which passage holds which of them.

    ``starts[i]``, ``ends[i]`` are sentence i's offsets in its source file; ``members[p]`` the sentence ids
    of passage row p in reading order; ``vectors`` (n, d) unit vectors.
    """

    starts: np.ndarray  # (n,) int64 offsets into the source file
    ends: np.ndarray
    members: list[np.ndarray]
    vectors: np.ndarray

    @cached_property
    def _flat(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Member ids laid end to end, each passage's first position, and which passages have any."""
        lengths = np.array([len(m) for m in self.members], dtype=np.int64)
        flat = np.concatenate([np.asarray(m, dtype=np.int64) for m in self.members]) if lengths.sum() else np.zeros(0, np.int64)
        firsts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        return flat, firsts, lengths > 0

    def best_per_passage(self, query: np.ndarray) -> np.ndarray:
        """Each passage's best sentence cosine with ``query`` (-1 for a passage without sentences)."""
        flat, firsts, nonempty = self._flat
        best = np.full(len(self.members), -1.0, dtype=np.float32)
        if len(flat):
            scores = (self.vectors @ query)[flat]
            best[nonempty] = np.maximum.reduceat(scores, firsts[nonempty])
        return best


@dataclass(frozen=True)
class Sentence:
    source: str
    start: int
    end: int
    text: str


def sentence_spans(passages: Sequence[Passage]) -> tuple[list[Sentence], list[list[int]]]:
    """Unique sentences (as file spans) and, per passage, the ids of its sentences.

    Overlapping passages share sentences; each is embedded once.
    """
    ids: dict[tuple[str, int, int], int] = {}
    sentences: list[Sentence] = []
    members: list[list[int]] = []
    for p in passages:
        row: list[int] = []
        for start, end in split_sentences(p.text):
            key = (p.source, p.start + start, p.start + end)
            if key not in ids:
                ids[key] = len(sentences)
                sentences.append(Sentence(*key, p.text[start:end]))
            row.append(ids[key])
        members.append(row)
    return sentences, members


def best_sentences(table: SentenceTable, passage_row: int, query: np.ndarray) -> tuple[list[Span], float]:
    """The passage's best-answering sentence(s) as file spans, in reading order, and the best cosine."""
    ids = table.members[passage_row]
    if len(ids) == 0:
        return [], float("-inf")
    scores = table.vectors[ids] @ query
    best = float(scores.max())
    # tied sentences go in reading order (index.ties), whatever the float noise
    chosen = [i for i, s in ranked(enumerate(scores.tolist()))[:MAX_HIGHLIGHTS] if s >= best - HIGHLIGHT_MARGIN]
    spans = [Span(int(table.starts[ids[i]]), int(table.ends[ids[i]])) for i in sorted(chosen)]
    return spans, best

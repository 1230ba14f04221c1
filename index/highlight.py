"""Which sentences of a passage answer the question: sentence spans and vectors, scored by cosine.

Sentence vectors are computed once at build time, so highlighting a result costs a few dot
products at query time instead of a model call per sentence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import faiss
import numpy as np

from index.sentences import split_sentences
from index.ties import TIE_SLACK, Key, cut_is_settled, ranked, top
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
    search_index: faiss.Index | None = None  # approximate, past exact_up_to sentences; else None: an exact scan

    @cached_property
    def _owners(self) -> list[list[int]]:
        """owners[i]: the passage rows holding sentence i (overlapping passages share sentences)."""
        owners: list[list[int]] = [[] for _ in range(len(self.vectors))]
        for row, ids in enumerate(self.members):
            for i in ids:
                owners[int(i)].append(row)
        return owners

    @cached_property
    def _scan(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Passages that have sentences, their sentence ids laid end to end, and where each starts."""
        rows = np.flatnonzero([len(m) > 0 for m in self.members])
        lengths = np.array([len(self.members[r]) for r in rows], dtype=np.int64)
        flat = np.concatenate([np.asarray(self.members[r], dtype=np.int64) for r in rows]) if len(rows) else np.zeros(0, np.int64)
        return rows, flat, np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` sentences per query: the stored approximate index, or an exact scan of the
        vectors themselves (an IndexFlatIP would hold a second copy of them in memory)."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if self.search_index is not None:
            return self.search_index.search(queries, k)
        return faiss.knn(queries, np.ascontiguousarray(self.vectors, dtype=np.float32), k, metric=faiss.METRIC_INNER_PRODUCT)

    def best_of(self, rows: Sequence[int], query: np.ndarray) -> np.ndarray:
        """Each row's best sentence cosine with ``query`` (-1 for a passage without sentences).

        Costs the sentences of ``rows`` only, so scoring a bounded candidate set stays bounded
        however large the corpus grows.
        """
        best = np.full(len(rows), -1.0, dtype=np.float32)
        groups = [self.members[row] for row in rows]
        lengths = np.array([len(g) for g in groups], dtype=np.int64)
        nonempty = lengths > 0
        if nonempty.any():
            scores = self.vectors[np.concatenate([g for g in groups if len(g)]).astype(np.int64)] @ query
            firsts = np.concatenate([[0], np.cumsum(lengths[nonempty])[:-1]]).astype(np.int64)
            best[nonempty] = np.maximum.reduceat(scores, firsts)
        return best

    def passages_by_sentence(self, queries: np.ndarray, depth: int, key: Key = None) -> list[list[int]]:
        """Per query, the ``depth`` passages whose best sentence scores highest (ties settled by ``key``).

        Asked of a FAISS index over the sentences, not of every sentence's cosine: a passage's
        best sentence is its first in the sentence ranking, so walking that ranking until
        ``depth`` passages are seen and the cut is settled (index.ties) gives exactly the
        passages a full scan would, at the cost of a search. Past ``exact_up_to`` sentences the
        index is approximate (index.ann), and so is this list.
        """
        n = len(self.vectors)
        if n == 0 or depth <= 0:
            return [[] for _ in queries]
        fetch = min(n, 4 * depth + TIE_SLACK)  # a passage usually holds several of the top sentences
        if 2 * fetch >= n:  # most sentences would be fetched anyway: one scan of them all is cheaper
            rows, flat, firsts = self._scan
            return [[row for row, _ in top(np.maximum.reduceat((self.vectors @ q)[flat], firsts), depth, key, rows=rows)] for q in queries]
        while True:
            scores, ids = self._search(queries, fetch)
            found = [self._first_seen(ss, ii) for ss, ii in zip(scores, ids, strict=True)]
            if fetch >= n or all(cut_is_settled([*best.values(), float(ss[-1])], depth) for best, ss in zip(found, scores, strict=True)):
                break
            fetch = min(n, 2 * fetch)
        return [[row for row, _ in top(np.fromiter(best.values(), np.float64, len(best)), depth, key, rows=np.fromiter(best, np.int64, len(best)))]
                for best in found]

    def _first_seen(self, scores: np.ndarray, ids: np.ndarray) -> dict[int, float]:
        """Passage rows in the order their best sentence appears, with that sentence's score."""
        best: dict[int, float] = {}
        for score, i in zip(scores.tolist(), ids.tolist(), strict=True):
            if i < 0:  # FAISS pads with -1 beyond the vectors it has
                break
            for row in self._owners[i]:
                best.setdefault(row, score)
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

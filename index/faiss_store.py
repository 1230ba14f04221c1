"""The embedded store: FAISS over the passage vectors and bm25s over their text, both files of the build folder."""

from __future__ import annotations

from collections.abc import Sequence

import faiss
import numpy as np

from index.lexical import BM25Index
from index.passage_store import one_after_the_other
from index.ties import TIE_SLACK, Key, cut_is_settled, top


class FaissStore:
    name = "faiss"

    def __init__(self, vector_index: faiss.Index, lexical: BM25Index) -> None:
        self.vector_index = vector_index
        self.lexical_index = lexical

    @property
    def dimension(self) -> int:
        return int(self.vector_index.d)

    def dense(self, queries: np.ndarray, depth: int, key: Key) -> list[list[tuple[int, float]]]:
        total = self.vector_index.ntotal
        fetch = min(total, depth + TIE_SLACK)
        while True:  # FAISS cuts ties at k by arrival order: ask until every tie at the cut is in
            scores, rows = self.vector_index.search(queries, fetch)
            if fetch >= total or all(cut_is_settled(s, depth) for s in scores):
                break
            fetch = min(total, 2 * fetch)
        # FAISS pads with -1 when fewer than k vectors exist (or an IVF index's probed lists hold fewer).
        return [top(ss[rr >= 0], depth, key, rows=rr[rr >= 0]) for rr, ss in zip(rows, scores, strict=True)]

    def lexical(self, questions: Sequence[str], depth: int, key: Key) -> list[list[tuple[int, float]]]:
        return self.lexical_index.search_batch(questions, depth, key=key)

    def vectors(self, rows: Sequence[int]) -> np.ndarray:
        # one reconstruct per row: the loaded index may be IVF (direct map) or exact, and a few rows are asked at a time
        return np.stack([self.vector_index.reconstruct(int(r)) for r in rows]) if len(rows) else np.zeros((0, self.dimension), np.float32)

    def candidates(self, queries: np.ndarray, questions: Sequence[str], depth: int, key: Key, dense: bool, lexical: bool):
        return one_after_the_other(self, queries, questions, depth, key, dense, lexical)

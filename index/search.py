"""Question in, ranked passages out: the one retrieval path shared by the API, the CLI and the eval."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from index.embed import Embedder
from index.store import StoredIndex
from index.types import Hit


@dataclass(frozen=True)
class SearchOptions:
    top_k: int = 5
    token_budget: int | None = None  # cl100k tokens the returned passages may add up to


class Retriever:
    """Holds the loaded model and index; safe to share between threads (read-only after init)."""

    def __init__(self, embedder: Embedder, stored: StoredIndex) -> None:
        if stored.vectors.d != embedder.info.dimension:
            raise ValueError(
                f"index vectors have dimension {stored.vectors.d}, model {embedder.info.name} gives {embedder.info.dimension}"
            )
        self.embedder = embedder
        self.stored = stored
        self.passages = stored.passages
        self.manifest = stored.manifest

    def search(self, question: str, options: SearchOptions = SearchOptions()) -> list[Hit]:
        return self.search_batch([question], options)[0]

    def search_batch(self, questions: Sequence[str], options: SearchOptions = SearchOptions()) -> list[list[Hit]]:
        if not questions:
            return []
        k = min(options.top_k, len(self.passages))
        if k <= 0:
            return [[] for _ in questions]
        query_vectors = self.embedder.encode(questions)
        scores, rows = self.stored.vectors.search(query_vectors, k)
        return [self._hits(s, r, options) for s, r in zip(scores, rows, strict=True)]

    def _hits(self, scores: np.ndarray, rows: np.ndarray, options: SearchOptions) -> list[Hit]:
        hits: list[Hit] = []
        used = 0
        for score, row in zip(scores.tolist(), rows.tolist(), strict=True):
            if row < 0:  # FAISS pads with -1 when fewer than k vectors exist
                continue
            passage = self.passages[row]
            if options.token_budget is not None:
                if used + passage.tokens > options.token_budget:
                    continue  # skip what does not fit; a shorter, lower-ranked passage still may
                used += passage.tokens
            hits.append(Hit(rank=len(hits) + 1, score=float(score), passage=passage))
        return hits


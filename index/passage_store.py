"""Where the ranking code gets its candidates: the one seam between ranking and the engines that search.

index.search (fusion, sentence blending, feedback, collapse, MMR, token budget, highlights, the
answer, citations) asks a store three things, all in passage rows (line i of passages.jsonl):

- dense candidates: per question vector, the best ``depth`` rows by cosine, the tie at the cut
  settled by ``key`` (index.ties), so every backend cuts a tie the same way;
- lexical candidates: per question, the best ``depth`` rows by BM25, rows without a query term left out;
- passage vectors by row, for sentence blending, feedback, MMR and best_cosine.

Two backends: :mod:`index.faiss_store` (the default: FAISS and bm25s files in the build folder)
and :mod:`index.milvus_store` (a Milvus collection per build; pymilvus is imported only there).
The build folder stays the source of truth for passages, sentences and document texts either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from index.config import StoreConfig
from index.ties import Key

if TYPE_CHECKING:
    from index.components import Components
    from index.store import StoredIndex


class PassageStore(Protocol):
    name: str  # "faiss" or "milvus": reported with measurements

    @property
    def dimension(self) -> int: ...

    def dense(self, queries: np.ndarray, depth: int, key: Key) -> list[list[tuple[int, float]]]:
        """Per row of ``queries`` (unit vectors), up to ``depth`` (row, cosine) pairs, in index.ties order."""
        ...

    def lexical(self, questions: Sequence[str], depth: int, key: Key) -> list[list[tuple[int, float]]]:
        """Per question, up to ``depth`` (row, BM25 score) pairs with a score above 0, in index.ties order."""
        ...

    def vectors(self, rows: Sequence[int]) -> np.ndarray:
        """The passage vectors of ``rows``, one per row in that order (float32, unit length)."""
        ...

    def candidates(self, queries: np.ndarray, questions: Sequence[str], depth: int, key: Key, dense: bool, lexical: bool
                   ) -> tuple[list[list[tuple[int, float]]], list[list[tuple[int, float]]]]:
        """Both lists at once (each [] per question when not asked): a store behind a network asks for them concurrently."""
        ...


def one_after_the_other(store: PassageStore, queries: np.ndarray, questions: Sequence[str], depth: int, key: Key, dense: bool, lexical: bool
                        ) -> tuple[list[list[tuple[int, float]]], list[list[tuple[int, float]]]]:
    """:meth:`PassageStore.candidates` for an in-process store: the two lists in turn."""
    none: list[list[tuple[int, float]]] = [[] for _ in questions]
    return (store.dense(queries, depth, key) if dense else none), (store.lexical(questions, depth, key) if lexical else none)


def open_store(config: StoreConfig, stored: StoredIndex, components: Components) -> PassageStore:
    """The store ``config`` names, for the build ``stored``."""
    if config.kind == "milvus":
        from index.milvus_store import MilvusStore  # pymilvus only when asked for

        return MilvusStore.open(config.uri(stored.path.parent), config.milvus_token, stored, components.lexical.terms)
    from index.faiss_store import FaissStore

    return FaissStore(stored.vector_index, components.lexical)

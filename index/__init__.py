"""From files on disk to ranked, cited passages. No HTTP, no environment variables.

This is the public API of the index package; other packages import only these names. They are
loaded on first use (PEP 562): the model libraries take seconds to import, and a command that
only prints its help, or only needs an error class, must not wait for them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "build_index": "index.build",
    "open_index": "index.build",
    "ChunkSpec": "index.chunk",
    "DEFAULT_MODEL": "index.config",
    "EXPERIMENTS": "index.config",
    "IndexConfig": "index.config",
    "RankingConfig": "index.config",
    "Embedder": "index.embed",
    "CitedError": "index.errors",
    "CorpusError": "index.errors",
    "IndexCorrupt": "index.errors",
    "IndexMissing": "index.errors",
    "IndexStale": "index.errors",
    "ModelError": "index.errors",
    "AnswerSentence": "index.search",
    "Retriever": "index.search",
    "SearchOptions": "index.search",
    "SearchResult": "index.search",
    "Hit": "index.types",
    "Passage": "index.types",
    "Span": "index.types",
}

__all__ = [
    "AnswerSentence",
    "ChunkSpec",
    "CitedError",
    "CorpusError",
    "DEFAULT_MODEL",
    "EXPERIMENTS",
    "Embedder",
    "Hit",
    "IndexConfig",
    "IndexCorrupt",
    "IndexMissing",
    "IndexStale",
    "ModelError",
    "Passage",
    "RankingConfig",
    "Retriever",
    "SearchOptions",
    "SearchResult",
    "Span",
    "build_index",
    "open_index",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'index' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from index.build import build_index, open_index
    from index.chunk import ChunkSpec
    from index.config import DEFAULT_MODEL, EXPERIMENTS, IndexConfig, RankingConfig
    from index.embed import Embedder
    from index.errors import CitedError, CorpusError, IndexCorrupt, IndexMissing, IndexStale, ModelError
    from index.search import AnswerSentence, Retriever, SearchOptions, SearchResult
    from index.types import Hit, Passage, Span

"""From files on disk to ranked, cited passages. No HTTP, no environment variables.

This is the public API of the index package; other packages import only these names.
"""

from index.build import build_index, open_index
from index.chunk import ChunkSpec
from index.config import DEFAULT_MODEL, EXPERIMENTS, IndexConfig, RankingConfig
from index.embed import Embedder
from index.errors import CitedError, CorpusError, IndexCorrupt, IndexMissing, IndexStale, ModelError
from index.search import AnswerSentence, Retriever, SearchOptions, SearchResult
from index.types import Hit, Passage, Span

__all__ = [
    "AnswerSentence",
    "RankingConfig",
    "SearchResult",
    "DEFAULT_MODEL",
    "EXPERIMENTS",
    "ChunkSpec",
    "CitedError",
    "CorpusError",
    "Embedder",
    "Hit",
    "IndexConfig",
    "IndexCorrupt",
    "IndexMissing",
    "IndexStale",
    "ModelError",
    "Passage",
    "Retriever",
    "SearchOptions",
    "Span",
    "build_index",
    "open_index",
]

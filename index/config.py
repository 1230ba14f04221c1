"""The plain configuration object the index package is driven by (it never reads the environment)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from index.chunk import ChunkSpec

DEFAULT_MODEL = "all-MiniLM-L6-v2"


@dataclass(frozen=True)
class IndexConfig:
    corpus_dir: Path
    index_dir: Path
    model: str = DEFAULT_MODEL  # a sentence-transformers model name or a local folder
    chunk: ChunkSpec = field(default_factory=ChunkSpec)
    batch_size: int = 32  # passages per embedding batch

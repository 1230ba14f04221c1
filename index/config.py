"""The configuration objects the index package is driven by: each setting's one definition.

The service's Settings (environment variables and flags) are generated from these fields, so a
setting has one name, one default, one description and one validation from the environment
down to the ranking code. The index package itself never reads the environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic.dataclasses import dataclass as validated_dataclass

from index.chunk import ChunkSpec
from index.ingest import FilePolicy

# numpy-free on purpose: the settings (and so `cited --help`) import this module.
RRF_K = 60  # the constant of Cormack, Clarke & Büttcher (SIGIR 2009); damps the head of each list

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# Exhaustive search costs n·384 multiply-adds per question: about 2 ms at 20k passages on the
# 2-core benchmark machine, 5-10 ms at 100k, 99 ms at 1M (docs/results.md, "Scale"); past 20k an
# approximate index keeps search well under a millisecond at recall@10 about 0.99.
EXACT_UP_TO = 20_000

Retrieval = Literal["dense", "bm25", "hybrid"]
Store = Literal["faiss", "milvus"]
MILVUS_LITE_FILE = "milvus.db"  # Milvus Lite's data file inside the index folder when milvus_uri is unset
Engine = Literal["local", "ray"]
Fusion = Literal["rrf", "weighted"]


@dataclass(frozen=True)
class StoreConfig:
    """Where the dense vectors and the lexical index are searched (index.passage_store).

    The build folder is written either way and stays the source of truth; with ``milvus`` a
    collection per build is written beside it before the build is published.
    """

    kind: Store = field(default="faiss", metadata={"description": "Where passages are searched: faiss (embedded FAISS + bm25s files in the build folder) or milvus (a Milvus collection per build, dense vectors and BM25; needs the milvus extra). docs/stores.md."})
    milvus_uri: str | None = field(default=None, metadata={"description": "With store=milvus: a Milvus Lite file (a path ending in .db; one process at a time), or http://host:19530 for a Milvus standalone or cluster (any number of replicas). Unset: milvus.db in index_dir."})
    milvus_token: str | None = field(default=None, metadata={"description": "With store=milvus: the token (user:password, or an API key) of a Milvus server that needs one."})

    def uri(self, index_dir: Path) -> str:
        return self.milvus_uri or str(index_dir / MILVUS_LITE_FILE)


@dataclass(frozen=True)
class IndexConfig:
    corpus_dir: Path
    index_dir: Path
    model: str = DEFAULT_MODEL  # a sentence-transformers model name or a local folder
    chunk: ChunkSpec = field(default_factory=ChunkSpec)
    batch_size: int = 32  # passages per embedding batch
    files: FilePolicy = field(default_factory=FilePolicy)  # which corpus files may be read
    exact_up_to: int = field(
        default=EXACT_UP_TO,
        metadata={"description": "Passages up to which the vector index is exact (FAISS flat); above it, approximate (IVF; recall@10 0.99 against exact in docs/results.md)."},
    )
    store: StoreConfig = field(default_factory=StoreConfig)
    engine: Engine = field(
        default="local",
        metadata={"description": "Where a build runs the model: local (this process) or ray (Ray Data actors, one model each; needs the ray extra, docs/ray.md). The index written is the same."},
    )
    ray_address: str | None = field(
        default=None,
        metadata={"description": "Ray cluster for engine=ray, from one of its nodes: HOST:6379 (the head) or auto; unset, the build starts a private Ray on this machine (loopback, no dashboard) and stops it after."},
    )


@validated_dataclass(frozen=True)
class RankingConfig:
    """How a question's candidates are ranked. Every stage is switchable so the eval can measure it."""

    retrieval: Retrieval = Field("hybrid", description="Ranker: dense (embeddings), bm25 (lexical) or hybrid (both, fused).")
    fusion: Fusion = Field("weighted", description="How hybrid fuses the two lists: reciprocal rank fusion or weighted min-max scores.")
    dense_weight: float = Field(1.0, ge=0.0, le=10.0, description="Weight of the dense list in fusion (BM25's weight is 1).")
    rrf_k: int = Field(RRF_K, ge=1, le=1000, description="Rank constant of reciprocal rank fusion.")
    candidates: int = Field(50, ge=1, le=1000, description="Passages taken from each ranker before fusion, collapse and diversification.")
    collapse_duplicates: bool = Field(True, description="Show near-duplicate text once, listing the other sources in also_in.")
    mmr_lambda: float = Field(1.0, ge=0.0, le=1.0, description="Maximal marginal relevance trade-off; 1 keeps the ranking, lower values favour diverse results.")
    feedback_passages: int = Field(0, ge=0, le=100, description="Dense pseudo-relevance feedback: move the question towards this many top fused passages and search again; 0 turns it off.")
    feedback_weight: float = Field(1.0, ge=0.0, le=10.0, description="Weight of the feedback passages' mean vector added to the question's.")
    sentence_weight: float = Field(0.5, ge=0.0, le=1.0, description="Share of a passage's dense score taken from its best sentence's cosine instead of the whole passage's.")
    highlight: bool = Field(True, description="Mark the best-answering sentences of each result and return an extractive answer.")


# Ranking settings the eval measured no better than the default (docs/results.md). They stay
# for experiments (``cited eval --set name=value``) but are not settings of ``cited serve``.
EXPERIMENTS = ("fusion", "dense_weight", "rrf_k", "mmr_lambda", "feedback_passages", "feedback_weight")

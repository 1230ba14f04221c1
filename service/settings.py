"""The one settings object: environment variables (CITED_*) and CLI flags land here, nowhere else."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from index.chunk import ChunkSpec
from index.config import DEFAULT_MODEL, IndexConfig
from index.search import RankingConfig


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CITED_", env_ignore_empty=True, extra="forbid")

    corpus_dir: Path = Field(Path("seeds"), description="Folder of UTF-8 .txt documents to index (searched recursively).")
    index_dir: Path = Field(Path(".cited/index"), description="Where the built index lives; created on first run.")
    model: str = Field(DEFAULT_MODEL, description="sentence-transformers model: a name in the local cache or a folder. The default is bundled.")
    chunk_tokens: int = Field(128, ge=16, le=4096, description="Largest passage, in cl100k tokens.")
    overlap_tokens: int = Field(32, ge=0, description="cl100k tokens of trailing sentences repeated at the start of the next passage of the same paragraph.")
    embed_context: bool = Field(False, description="Embed the document title and section heading with each passage.")
    batch_size: int = Field(32, ge=1, le=1024, description="Passages per embedding batch when building.")
    auto_rebuild: bool = Field(True, description="Rebuild a missing or stale index on start (a corrupt one is always refused).")
    retrieval: Literal["dense", "bm25", "hybrid"] = Field("hybrid", description="Ranker: dense (embeddings), bm25 (lexical) or hybrid (both, fused).")
    fusion: Literal["rrf", "weighted"] = Field("weighted", description="How hybrid fuses the two lists: reciprocal rank fusion or weighted min-max scores.")
    dense_weight: float = Field(1.0, ge=0.0, le=10.0, description="Weight of the dense list in fusion (BM25's weight is 1).")
    rrf_k: int = Field(60, ge=1, le=1000, description="Rank constant of reciprocal rank fusion.")
    candidates: int = Field(50, ge=1, le=1000, description="Passages taken from each ranker before fusion, collapse and diversification.")
    expand_aliases: bool = Field(False, description="Let BM25 also search the other form of abbreviations the corpus defines, e.g. ETIM for East Turkestan Islamic Movement.")
    collapse_duplicates: bool = Field(True, description="Show near-duplicate text once, listing the other sources in also_in.")
    mmr_lambda: float = Field(1.0, ge=0.0, le=1.0, description="Maximal marginal relevance trade-off; 1 keeps the ranking, lower values favour diverse results.")
    sentence_weight: float = Field(0.5, ge=0.0, le=1.0, description="Share of a passage's dense score taken from its best sentence's cosine instead of the whole passage's.")
    feedback_passages: int = Field(0, ge=0, le=100, description="Dense pseudo-relevance feedback: move the question towards this many top fused passages and search again; 0 turns it off.")
    feedback_weight: float = Field(1.0, ge=0.0, le=10.0, description="Weight of the feedback passages' mean vector added to the question's.")
    highlight: bool = Field(True, description="Mark the best-answering sentences of each result and return an extractive answer.")
    low_confidence_below: float = Field(0.0, ge=-1.0, le=1.0, description="Flag low_confidence when the best passage's cosine similarity is below this.")
    host: str = Field("127.0.0.1", description="Address the HTTP server binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port the HTTP server listens on.")
    max_body_bytes: int = Field(16_384, ge=256, description="Largest request body accepted, in bytes.")
    log_level: str = Field("info", description="Logging level: debug, info, warning or error.")

    @model_validator(mode="after")
    def _overlap_below_chunk(self) -> Settings:
        if self.overlap_tokens >= self.chunk_tokens:
            raise ValueError(f"overlap_tokens ({self.overlap_tokens}) must be smaller than chunk_tokens ({self.chunk_tokens})")
        return self

    def index_config(self) -> IndexConfig:
        return IndexConfig(
            corpus_dir=self.corpus_dir,
            index_dir=self.index_dir,
            model=self.model,
            chunk=ChunkSpec(self.chunk_tokens, self.overlap_tokens, self.embed_context),
            batch_size=self.batch_size,
        )

    def ranking_config(self) -> RankingConfig:
        return RankingConfig(
            mode=self.retrieval,
            fusion=self.fusion,
            dense_weight=self.dense_weight,
            rrf_k=self.rrf_k,
            candidates=self.candidates,
            expand_aliases=self.expand_aliases,
            collapse_duplicates=self.collapse_duplicates,
            mmr_lambda=self.mmr_lambda,
            sentence_weight=self.sentence_weight,
            feedback_passages=self.feedback_passages,
            feedback_weight=self.feedback_weight,
            highlight=self.highlight,
            low_confidence_below=self.low_confidence_below,
        )

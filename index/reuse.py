"""Vectors of the live build, found again by what was embedded, so a rebuild encodes only new text."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from index.chunk import embedding_input
from index.components import read_sentence_origins, read_sentences
from index.store import StoredIndex
from index.types import Passage

Key = bytes

# How the build makes sentence vectors; recorded in the manifest. A build made any other way
# (sentences encoded on their own, before 2026-11-23) offers no sentence vectors to reuse.
POOLED = "pooled"


def text_key(fingerprint: str, text: str) -> Key:
    """A vector depends only on the model's weights and the text it was given."""
    return hashlib.sha256(f"{fingerprint}\0{text}".encode()).digest()


def input_span(embedded: str, passage: Passage, start: int, end: int) -> tuple[int, int]:
    """File offsets of a span of ``passage`` as offsets into its embedding input, which ends with the passage text."""
    shift = len(embedded) - len(passage.text) - passage.start
    return start + shift, end + shift


def span_key(fingerprint: str, embedded: str, span: tuple[int, int]) -> Key:
    """A pooled sentence vector depends on the whole input its tokens were read in, not only on
    the sentence: the same sentence pooled from another passage, or with the title embedded, differs."""
    return hashlib.sha256(f"{fingerprint}\0{span[0]}:{span[1]}\0{embedded}".encode()).digest()


@dataclass(frozen=True)
class KnownVectors:
    passages: Mapping[Key, np.ndarray] = field(default_factory=dict)
    sentences: Mapping[Key, np.ndarray] = field(default_factory=dict)


def known_vectors(previous: StoredIndex | None) -> KnownVectors:
    """Every passage and sentence vector of ``previous``: passages keyed by :func:`text_key`,
    sentences by :func:`span_key` in the passage they were pooled from.

    Keys use the embedding input ``previous`` was built with (its own ``embed_context``), so a
    changed setting finds nothing rather than the wrong vector.
    """
    if previous is None:
        return KnownVectors()
    fingerprint = previous.manifest["model"]["fingerprint"]
    context = bool(previous.manifest["chunking"]["embed_context"])
    embedded = [embedding_input(p.title, p.heading, p.text, context) for p in previous.passages]
    vectors = previous.vector_index.reconstruct_n(0, previous.vector_index.ntotal)
    passages = {text_key(fingerprint, text): vectors[row] for row, text in enumerate(embedded)}
    sentences = {}
    if previous.manifest.get("sentence_vectors", {}).get("method") == POOLED:
        table = read_sentences(previous.path)
        for sid, row in enumerate(read_sentence_origins(previous.path)):
            span = input_span(embedded[row], previous.passages[row], int(table.starts[sid]), int(table.ends[sid]))
            sentences[span_key(fingerprint, embedded[row], span)] = table.vectors[sid]
    return KnownVectors(passages, sentences)

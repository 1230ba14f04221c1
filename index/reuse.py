"""Vectors of the live build, found again by what was embedded, so a rebuild encodes only new text."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from index.chunk import embedding_input
from index.components import read_sentences
from index.embed import Embedder
from index.store import StoredIndex

Key = bytes


def text_key(fingerprint: str, text: str) -> Key:
    """A vector depends only on the model's weights and the text it was given."""
    return hashlib.sha256(f"{fingerprint}\0{text}".encode()).digest()


@dataclass(frozen=True)
class KnownVectors:
    passages: Mapping[Key, np.ndarray] = field(default_factory=dict)
    sentences: Mapping[Key, np.ndarray] = field(default_factory=dict)


def known_vectors(previous: StoredIndex | None) -> KnownVectors:
    """Every passage and sentence vector of ``previous``, keyed as :func:`text_key` keys them.

    Passages are keyed by the embedding input ``previous`` was built with (its own
    ``embed_context``), so a changed setting finds nothing rather than the wrong vector.
    """
    if previous is None:
        return KnownVectors()
    fingerprint = previous.manifest["model"]["fingerprint"]
    context = bool(previous.manifest["chunking"]["embed_context"])
    vectors = previous.vector_index.reconstruct_n(0, previous.vector_index.ntotal)
    passages = {
        text_key(fingerprint, embedding_input(p.title, p.heading, p.text, context)): vectors[row]
        for row, p in enumerate(previous.passages)
    }
    table = read_sentences(previous.path)
    sentences = {}
    for row, p in enumerate(previous.passages):
        for sid in table.members[row]:
            text = p.text[int(table.starts[sid]) - p.start : int(table.ends[sid]) - p.start]
            sentences[text_key(fingerprint, text)] = table.vectors[sid]
    return KnownVectors(passages, sentences)


def encode_reusing(
    embedder: Embedder, texts: Sequence[str], known: Mapping[Key, np.ndarray], batch_size: int = 32, progress: bool = False
) -> tuple[np.ndarray, int]:
    """Vectors of ``texts``: known ones copied, the rest encoded once each; also how many were reused."""
    keys = [text_key(embedder.info.fingerprint, t) for t in texts]
    first: dict[Key, str] = {}
    for key, text in zip(keys, texts, strict=True):
        if key not in known:
            first.setdefault(key, text)
    found: dict[Key, np.ndarray] = {}
    if first:
        encoded = embedder.encode(list(first.values()), batch_size=batch_size, progress=progress)
        found = dict(zip(first, encoded, strict=True))
    vectors = np.zeros((len(keys), embedder.info.dimension), dtype=np.float32)
    for i, key in enumerate(keys):
        vectors[i] = found[key] if key in found else known[key]
    return vectors, sum(1 for key in keys if key in known)

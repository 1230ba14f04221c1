"""Vectors of the live build, found again by what was embedded, so a rebuild encodes only new text."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from index.chunk import embedding_input
from index.components import read_sentence_origins, read_sentences
from index.embed import Embedder
from index.store import StoredIndex
from index.types import Passage

Key = bytes

POOLED = "pooled"  # ChunkSpec.sentence_vectors


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


def known_vectors(previous: StoredIndex | None, sentence_vectors: str) -> KnownVectors:
    """Every passage and sentence vector of ``previous``: passages keyed by :func:`text_key`;
    sentences by :func:`span_key` in the passage they were pooled from, or by :func:`text_key`
    when they were encoded on their own.

    Keys use the embedding input ``previous`` was built with (its own ``embed_context``), so a
    changed setting finds nothing rather than the wrong vector; sentences made the other way
    than ``sentence_vectors`` asks are not offered at all.
    """
    if previous is None:
        return KnownVectors()
    fingerprint = previous.manifest["model"]["fingerprint"]
    context = bool(previous.manifest["chunking"]["embed_context"])
    embedded = [embedding_input(p.title, p.heading, p.text, context) for p in previous.passages]
    vectors = previous.vector_index.reconstruct_n(0, previous.vector_index.ntotal)
    passages = {text_key(fingerprint, text): vectors[row] for row, text in enumerate(embedded)}
    sentences = {}
    # builds from before sentence_vectors existed encoded their sentences
    if previous.manifest.get("sentence_vectors", {}).get("method", "encoded") != sentence_vectors:
        return KnownVectors(passages, sentences)
    table = read_sentences(previous.path)
    try:
        rows = read_sentence_origins(previous.path)  # for encoded sentences, any passage holding them will do
    except FileNotFoundError:  # builds before index format 4 kept no origins, and only encoded sentences
        first: dict[int, int] = {}
        for row, ids in enumerate(table.members):
            for sid in ids.tolist():
                first.setdefault(sid, row)
        rows = np.array([first[sid] for sid in range(len(table.vectors))], dtype=np.int64)
    for sid, row in enumerate(rows):
        p, start, end = previous.passages[row], int(table.starts[sid]), int(table.ends[sid])
        if sentence_vectors == POOLED:
            key = span_key(fingerprint, embedded[row], input_span(embedded[row], p, start, end))
        else:
            key = text_key(fingerprint, p.text[start - p.start : end - p.start])
        sentences[key] = table.vectors[sid]
    return KnownVectors(passages, sentences)


def encode_reusing(
    embedder: Embedder, groups: Sequence[tuple[Sequence[str], Mapping[Key, np.ndarray], str]], batch_size: int = 32, progress: bool = False
) -> list[tuple[np.ndarray, int]]:
    """For each group ``(texts, known, what)``: the vectors of ``texts``, known ones copied and the
    rest encoded once each, and how many were reused.

    The groups' new texts go to the model in one :meth:`Embedder.encode_groups` call: one pass of
    an engine that starts workers per pass (index/ray_embed.py), each group batched on its own.
    """
    fingerprint = embedder.info.fingerprint
    keys = [[text_key(fingerprint, t) for t in texts] for texts, _, _ in groups]
    firsts: list[dict[Key, str]] = []
    for group_keys, (texts, known, _) in zip(keys, groups, strict=True):
        first: dict[Key, str] = {}
        for key, text in zip(group_keys, texts, strict=True):
            if key not in known:
                first.setdefault(key, text)
        firsts.append(first)
    encoded = embedder.encode_groups([list(f.values()) for f in firsts], [what for _, _, what in groups], batch_size=batch_size, progress=progress)
    out = []
    for group_keys, first, vectors, (_, known, _) in zip(keys, firsts, encoded, groups, strict=True):
        found = dict(zip(first, vectors, strict=True))
        result = np.zeros((len(group_keys), embedder.info.dimension), dtype=np.float32)
        for i, key in enumerate(group_keys):
            result[i] = found[key] if key in found else known[key]
        out.append((result, sum(1 for key in group_keys if key in known)))
    return out

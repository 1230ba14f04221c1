"""Passage and sentence vectors, made one of two ways (ChunkSpec.sentence_vectors).

``encoded`` (the default) runs the model over the passages and then over every sentence on its
own. ``pooled`` runs it over the passages only: a sentence's vector is the mean of its token
embeddings inside its passage. Pooling builds twice as fast but ranks worse (Cranfield nDCG@10
0.400 against 0.406; seed answer_hit two questions lower; docs/results.md), so it is not the default.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from index.embed import Embedder
from index.highlight import Sentence
from index.reuse import Key, KnownVectors, encode_reusing, input_span, span_key, text_key
from index.types import Passage


@dataclass(frozen=True)
class Embedded:
    passages: np.ndarray  # (passages, d) unit vectors, as Embedder.encode gives them
    sentences: np.ndarray  # (sentences, d) unit vectors
    origins: list[int]  # the passage row each sentence is pooled from (or would be, when encoded)
    counts: dict[str, int]  # for the manifest: vectors copied from the live build, vectors computed
    encoded_apart: int  # sentences this build encoded on their own (pooled: those no token of their passage's input covers)


def origins(passages: Sequence[Passage], sentences: Sequence[Sentence], members: Sequence[Sequence[int]]) -> list[int]:
    """For each sentence, the passage it sits most centrally in (the larger of its smaller margins);
    the earliest passage on a tie.

    Overlap puts a sentence at the end of one passage and the start of the next. At an edge its
    tokens attend to text on one side only; in the middle they read it with both neighbours, as a
    reader does. The choice depends only on the sentence's own document, so a rebuild that leaves
    the document alone chooses the same passage and reuses the vector.
    """
    best: list[tuple[int, int]] = [(-1, -1)] * len(sentences)  # (margin, row)
    for row, (passage, ids) in enumerate(zip(passages, members, strict=True)):
        for sid in ids:
            margin = min(sentences[sid].start - passage.start, passage.end - sentences[sid].end)
            if margin > best[sid][0]:
                best[sid] = (margin, row)
    return [row for _, row in best]


def embed_apart(
    embedder: Embedder,
    passages: Sequence[Passage],
    texts: Sequence[str],
    sentences: Sequence[Sentence],
    members: Sequence[Sequence[int]],
    known: KnownVectors,
    batch_size: int = 32,
    progress: bool = False,
) -> Embedded:
    """Vectors of every passage (embedded as ``texts``), then of every unique sentence on its own."""
    (vectors, passage_reused), (found, sentence_reused) = encode_reusing(
        embedder, [(texts, known.passages, "passages"), ([s.text for s in sentences], known.sentences, "sentences")], batch_size, progress
    )
    return Embedded(
        passages=vectors,
        sentences=found,
        origins=origins(passages, sentences, members),
        counts={
            "passages_reused": passage_reused,
            "passages_embedded": len(texts) - passage_reused,
            "sentences_reused": sentence_reused,
            "sentences_embedded": len(sentences) - sentence_reused,
        },
        encoded_apart=len(sentences) - sentence_reused,
    )


def embed_pooled(
    embedder: Embedder,
    passages: Sequence[Passage],
    texts: Sequence[str],
    sentences: Sequence[Sentence],
    members: Sequence[Sequence[int]],
    known: KnownVectors,
    batch_size: int = 32,
    progress: bool = False,
) -> Embedded:
    """Vectors of every passage (embedded as ``texts``) and sentence; known ones are copied.

    A passage goes through the model when its vector is unknown or a sentence pooled from it is;
    identical inputs go through once.
    """
    fingerprint = embedder.info.fingerprint
    rows = origins(passages, sentences, members)
    spans = [input_span(texts[r], passages[r], s.start, s.end) for s, r in zip(sentences, rows, strict=True)]
    pkeys = [text_key(fingerprint, t) for t in texts]
    skeys = [span_key(fingerprint, texts[r], span) for r, span in zip(rows, spans, strict=True)]
    todo: dict[Key, dict[tuple[int, int], int]] = {}  # input key -> {span: sentence id} to pool from it
    first: dict[Key, str] = {}
    for row, key in enumerate(pkeys):
        if key not in known.passages:
            todo.setdefault(key, {})
            first.setdefault(key, texts[row])
    for sid, key in enumerate(skeys):
        if key not in known.sentences:
            todo.setdefault(pkeys[rows[sid]], {})[spans[sid]] = sid
            first.setdefault(pkeys[rows[sid]], texts[rows[sid]])
    inputs = list(todo)
    vectors, pooled = embedder.encode_pooling_spans(
        [first[k] for k in inputs], [list(todo[k]) for k in inputs], batch_size, progress
    )
    fresh_passages = dict(zip(inputs, vectors, strict=True))
    fresh_sentences: dict[Key, np.ndarray] = {}
    apart: dict[Key, str] = {}  # spans without a token the model saw: encoded on their own
    for key, found in zip(inputs, pooled, strict=True):
        for sid, vector in zip(todo[key].values(), found, strict=True):
            if vector is None:
                apart[skeys[sid]] = sentences[sid].text
            else:
                fresh_sentences[skeys[sid]] = vector
    if apart:
        fresh_sentences.update(zip(apart, embedder.encode(list(apart.values()), batch_size=batch_size), strict=True))
    passage_reused = sum(k not in fresh_passages for k in pkeys)
    sentence_reused = sum(k not in fresh_sentences for k in skeys)
    return Embedded(
        passages=_stack([fresh_passages.get(k, known.passages.get(k)) for k in pkeys], embedder.info.dimension),
        sentences=_stack([fresh_sentences.get(k, known.sentences.get(k)) for k in skeys], embedder.info.dimension),
        origins=rows,
        counts={
            "passages_reused": passage_reused,
            "passages_embedded": len(pkeys) - passage_reused,
            "sentences_reused": sentence_reused,
            "sentences_embedded": len(skeys) - sentence_reused,
        },
        encoded_apart=len(apart),
    )


def _stack(vectors: list[np.ndarray], dimension: int) -> np.ndarray:
    return np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, dimension), dtype=np.float32)

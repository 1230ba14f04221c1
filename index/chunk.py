"""Pack sentences of cleaned text into passages sized in tokens, as exact slices of the original file."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import groupby
from typing import Literal

from index.sentences import split_sentences
from index.tokens import ModelLength, count_tokens
from index.types import Block, Cleaned, Document, Passage

_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class ChunkSpec:
    """How passages are cut. Part of the index manifest: changing any field forces a rebuild."""

    chunk_tokens: int = 128  # cl100k tokens per passage, at most
    overlap_tokens: int = 32  # cl100k tokens of trailing sentences repeated at the start of the next passage
    embed_context: bool = False  # embed "title — heading" before the passage text (measured worse on the seeds)
    # How sentence vectors are made: "encoded", each sentence on its own after the passages, or
    # "pooled" from its passage's forward pass (builds twice as fast, ranks worse: docs/results.md).
    # Here because a sentence vector is part of what the build embeds: changing it rebuilds.
    sentence_vectors: Literal["encoded", "pooled"] = "encoded"

    def __post_init__(self) -> None:
        if self.sentence_vectors not in ("encoded", "pooled"):
            raise ValueError(f"sentence_vectors must be 'encoded' or 'pooled', got {self.sentence_vectors!r}")
        if not 16 <= self.chunk_tokens <= 4096:
            raise ValueError(f"chunk_tokens must be between 16 and 4096, got {self.chunk_tokens}")
        if not 0 <= self.overlap_tokens < self.chunk_tokens:
            raise ValueError(
                f"overlap_tokens must be in [0, chunk_tokens) = [0, {self.chunk_tokens}), got {self.overlap_tokens}"
            )


def embedding_input(title: str, heading: str | None, text: str, context: bool) -> str:
    """The string the model embeds for a passage.

    Prefixing the document title and section heading lets a passage that says "the group"
    still match a question naming the group in the title; the citation is unaffected because
    only ``text`` is ever returned.
    """
    if not context:
        return text
    label = f"{title} — {heading}" if heading else title
    return f"{label}\n{text}"


@dataclass(frozen=True)
class _Unit:
    """A sentence (or a piece of an over-long one) with the block it came from."""

    start: int
    end: int
    tokens: int
    block: int


def chunk_document(
    doc: Document, cleaned: Cleaned, spec: ChunkSpec, model_length: ModelLength, model_limit: int
) -> list[Passage]:
    """Cut one cleaned document into passages.

    A passage never spans two segments (so it never crosses removed furniture or a heading),
    ends on a sentence boundary, prefers to end on a paragraph boundary, holds at most
    ``spec.chunk_tokens`` cl100k tokens, and its embedding input fits in ``model_limit``
    word pieces, so the model never silently truncates it.
    """
    passages: list[Passage] = []
    for _, group in groupby(cleaned.blocks, key=lambda b: b.segment):
        blocks = list(group)
        heading = blocks[0].heading
        overhead = model_length(embedding_input(cleaned.title, heading, "", spec.embed_context))

        def fits(start: int, end: int) -> bool:
            text = doc.text[start:end]
            if count_tokens(text) > spec.chunk_tokens:
                return False
            return model_length(embedding_input(cleaned.title, heading, text, spec.embed_context)) <= model_limit

        units = _units(doc.text, blocks, spec.chunk_tokens, model_limit - overhead, model_length)
        for lo, hi in _pack(units, spec, fits):
            start, end = units[lo].start, units[hi - 1].end
            text = doc.text[start:end]
            passages.append(
                Passage(
                    doc_id=doc.doc_id,
                    source=doc.source,
                    title=cleaned.title,
                    start=start,
                    end=end,
                    text=text,
                    tokens=count_tokens(text),
                    heading=heading,
                )
            )
    return passages


def _units(
    text: str, blocks: list[Block], max_tokens: int, max_model: int, model_length: ModelLength
) -> list[_Unit]:
    units: list[_Unit] = []
    for index, block in enumerate(blocks):
        for start, end in split_sentences(text, block.start, block.end):
            tokens = count_tokens(text[start:end])
            if tokens <= max_tokens and model_length(text[start:end]) <= max_model:
                units.append(_Unit(start, end, tokens, index))
            else:
                units.extend(_split_long(text, start, end, max_tokens, max_model, model_length, index))
    return units


def _split_long(
    text: str, start: int, end: int, max_tokens: int, max_model: int, model_length: ModelLength, block: int
) -> list[_Unit]:
    """Split a sentence too long for one passage at word boundaries (rare: tables, run-ons).

    A single "word" longer than a passage (a URL, a run of text without spaces) is cut
    inside the word, so no passage ever exceeds its budget.
    """

    def fits(a: int, b: int) -> bool:
        return count_tokens(text[a:b]) <= max_tokens and model_length(text[a:b]) <= max_model

    words: list[tuple[int, int]] = []
    for m in _WORD.finditer(text, start, end):
        words.extend(_cut_word(m.start(), m.end(), fits))
    pieces: list[_Unit] = []
    i = 0
    while i < len(words):
        j = i + 1
        while j < len(words):
            if not fits(words[i][0], words[j][1]):
                break
            j += 1
        piece_start, piece_end = words[i][0], words[j - 1][1]
        pieces.append(_Unit(piece_start, piece_end, count_tokens(text[piece_start:piece_end]), block))
        i = j
    return pieces


def _cut_word(start: int, end: int, fits: Callable[[int, int], bool]) -> list[tuple[int, int]]:
    """``[start, end)`` as is if it fits, else the longest fitting prefixes one after another."""
    cuts: list[tuple[int, int]] = []
    while start < end and not fits(start, end):
        lo, hi = start + 1, end - 1  # binary search for the longest prefix that fits
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fits(start, mid):
                lo = mid
            else:
                hi = mid - 1
        cuts.append((start, lo))
        start = lo
    if start < end:
        cuts.append((start, end))
    return cuts


def _pack(units: list[_Unit], spec: ChunkSpec, fits: Callable[[int, int], bool]) -> list[tuple[int, int]]:
    """Greedy packing of unit indices [lo, hi) with sentence overlap inside a paragraph."""
    chunks: list[tuple[int, int]] = []
    lo = 0
    while lo < len(units):
        hi = lo + 1
        total = units[lo].tokens
        while hi < len(units):
            nxt = units[hi]
            if total + nxt.tokens > spec.chunk_tokens:
                break
            if nxt.block != units[hi - 1].block and total >= spec.chunk_tokens // 2:
                # Starting a new paragraph half-way through a passage: end here if the whole
                # paragraph would not fit, so passages follow the author's paragraphs.
                rest = sum(u.tokens for u in units[hi:] if u.block == nxt.block)
                if total + rest > spec.chunk_tokens:
                    break
            total += nxt.tokens
            hi += 1
        # Per-sentence counts are an estimate of the slice's count; the exact check shrinks.
        while hi - lo > 1 and not fits(units[lo].start, units[hi - 1].end):
            hi -= 1
        chunks.append((lo, hi))
        if hi >= len(units):
            break
        lo = _overlap_start(units, lo, hi, spec.overlap_tokens)
    return chunks


def _overlap_start(units: list[_Unit], lo: int, hi: int, overlap_tokens: int) -> int:
    """First unit of the next passage: repeat trailing sentences of the same paragraph."""
    start = hi
    carried = 0
    while start - 1 > lo and units[start - 1].block == units[hi].block:
        carried += units[start - 1].tokens
        if carried > overlap_tokens:
            break
        start -= 1
    return start


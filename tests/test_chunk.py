from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from index.chunk import ChunkSpec, chunk_document, embedding_input
from index.clean import clean
from index.ingest import read_corpus
from index.tokens import count_tokens
from index.types import Document
from tests.conftest import SEEDS


def words_length(text: str) -> int:
    """A stand-in for the model's tokenizer where only offsets are under test: ~1 piece per word."""
    return len(text.split()) + 2


def chunk(text: str, spec: ChunkSpec, model_length=words_length, limit: int = 256):
    doc = Document(doc_id="d", source="d.txt", text=text)
    return chunk_document(doc, clean(text, fallback_title="d"), spec, model_length, limit)


PARAGRAPHS = (
    "The Board met on Monday. It approved the budget for the year. "
    "Members argued about the cost of the new bridge. The vote was close.\n\n"
    "A second paragraph starts here. It has two sentences.\n\n"
    "Budget Details\n\n"
    "The bridge will cost nine million dollars. Work starts in May."
)


def test_every_passage_slices_back_and_respects_the_token_limit() -> None:
    passages = chunk(PARAGRAPHS, ChunkSpec(chunk_tokens=20, overlap_tokens=8))
    assert len(passages) > 2
    for p in passages:
        assert PARAGRAPHS[p.start : p.end] == p.text
        assert p.tokens == count_tokens(p.text) <= 20


def test_passages_end_on_sentence_boundaries_and_overlap_within_a_paragraph() -> None:
    passages = chunk(PARAGRAPHS, ChunkSpec(chunk_tokens=20, overlap_tokens=8))
    assert all(p.text.rstrip().endswith((".", "!", "?")) for p in passages)
    first, second = passages[0], passages[1]
    assert second.start < first.end, "the next passage of the same paragraph repeats the last sentence"
    assert PARAGRAPHS[second.start : first.end].strip() in first.text


def test_heading_is_metadata_of_the_passages_under_it_and_not_text() -> None:
    passages = chunk(PARAGRAPHS, ChunkSpec(chunk_tokens=64, overlap_tokens=0))
    under = [p for p in passages if "nine million" in p.text]
    assert under and under[0].heading == "Budget Details"
    assert all("Budget Details" not in p.text for p in passages)
    assert all(p.heading is None for p in passages if "Board met" in p.text)


def test_no_overlap_across_paragraphs_and_no_passage_spans_a_heading() -> None:
    passages = chunk(PARAGRAPHS, ChunkSpec(chunk_tokens=200, overlap_tokens=20))
    assert [p.heading for p in passages] == [None, "Budget Details"]
    assert passages[0].end < PARAGRAPHS.index("Budget Details")


def test_a_sentence_longer_than_a_passage_is_split_at_word_boundaries() -> None:
    text = "Intro line here.\n\n" + " ".join(f"word{i}" for i in range(300)) + ".\n"
    passages = chunk(text, ChunkSpec(chunk_tokens=40, overlap_tokens=0))
    assert len(passages) > 5
    for p in passages:
        assert text[p.start : p.end] == p.text and p.tokens <= 40
        assert not p.text[0].isspace() and not p.text[-1].isspace()


def test_model_limit_shrinks_passages_even_when_cl100k_would_allow_more() -> None:
    # A model that counts 10 pieces per word: a 128-token passage would overflow 64 pieces.
    passages = chunk(PARAGRAPHS, ChunkSpec(chunk_tokens=128, overlap_tokens=0, embed_context=True), lambda t: 10 * len(t.split()) + 2, 64)
    for p in passages:
        assert 10 * len(embedding_input(p.title, p.heading, p.text, True).split()) + 2 <= 64


@pytest.mark.parametrize(("size", "overlap"), [(8, 0), (64, 64), (64, -1)])
def test_chunk_spec_rejects_impossible_sizes(size: int, overlap: int) -> None:
    with pytest.raises(ValueError, match="chunk_tokens|overlap_tokens"):
        ChunkSpec(chunk_tokens=size, overlap_tokens=overlap)


_text = st.lists(
    st.one_of(
        st.sampled_from(["Alpha", "beta", "Gamma.", "delta!", "U.S.", "“Quote.”", "ALSO READ | x", "12", "Ünïcode."]),
        st.sampled_from([" ", "  ", "\n", "\n\n", "\r\n", "\t"]),
    ),
    max_size=120,
).map("".join)


@given(_text, st.integers(16, 60), st.integers(0, 15))
@example("AlphaAlphaAlphaAlphaAlphabeta“Quote.”“Quote.”U.S.", 16, 0)  # once found by hypothesis
@settings(max_examples=150, deadline=None)
def test_offsets_hold_for_arbitrary_text(text: str, size: int, overlap: int) -> None:
    for p in chunk(text, ChunkSpec(chunk_tokens=size, overlap_tokens=overlap)):
        assert text[p.start : p.end] == p.text and p.text.strip() == p.text and p.text
        assert p.tokens <= size


def test_a_word_longer_than_a_passage_is_cut_inside_the_word() -> None:
    text = "See https://example.org/" + "a-very-long-path-segment/" * 20 + " for details."
    passages = chunk(text, ChunkSpec(chunk_tokens=16, overlap_tokens=0))
    assert all(p.tokens <= 16 and text[p.start : p.end] == p.text for p in passages)
    assert "".join(text[p.start : p.end] for p in passages).replace(" ", "") == text.replace(" ", "")


# --- the real seeds, with the real model's tokenizer -------------------------------------------


@pytest.fixture(scope="module")
def seed_passages(embedder):
    spec = ChunkSpec()
    out = []
    for doc in read_corpus(SEEDS).documents:
        cleaned = clean(doc.text, fallback_title=Path(doc.source).stem)
        out.append((doc, cleaned, chunk_document(doc, cleaned, spec, embedder.model_length, embedder.info.max_seq_length)))
    return out


def test_seed_passages_slice_back_exactly_to_the_file_bytes(seed_passages) -> None:
    for doc, _, passages in seed_passages:
        on_disk = (SEEDS / doc.source).read_bytes().decode("utf-8")
        for p in passages:
            assert on_disk[p.start : p.end] == p.text
            assert p.tokens == count_tokens(p.text) <= ChunkSpec().chunk_tokens


def test_no_seed_passage_is_truncated_by_the_model(seed_passages, embedder) -> None:
    """all-MiniLM-L6-v2 silently drops word pieces past 256: every embedded input must fit."""
    limit = embedder.info.max_seq_length
    tokenizer = embedder.model.tokenizer
    for _, _, passages in seed_passages:
        for p in passages:
            text = embedding_input(p.title, p.heading, p.text, ChunkSpec().embed_context)
            full = tokenizer(text, truncation=False)["input_ids"]
            truncated = tokenizer(text, truncation=True, max_length=limit)["input_ids"]
            assert full == truncated, f"{p.key} loses {len(full) - limit} word pieces"


def test_seed_passages_never_span_two_segments(seed_passages) -> None:
    for _, cleaned, passages in seed_passages:
        for p in passages:
            touched = {b.segment for b in cleaned.blocks if b.start < p.end and p.start < b.end}
            assert len(touched) == 1, f"{p.key} crosses removed furniture or a heading"

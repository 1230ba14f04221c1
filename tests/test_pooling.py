"""Sentence vectors pooled from their passage's forward pass: same passage vectors as encode,
sentence vectors close to the sentence encoded on its own, a fallback where no token is in range."""

from __future__ import annotations

import re

import numpy as np
import pytest

from index.chunk import embedding_input
from index.highlight import sentence_spans
from index.pooling import embed_pooled, origins
from index.reuse import KnownVectors, input_span
from index.types import Passage


def _passage(text: str, start: int = 0, title: str = "Doc", heading: str | None = None) -> Passage:
    return Passage("doc", "doc.txt", title, start, start + len(text), text, tokens=0, heading=heading)


@pytest.fixture(scope="module")
def seeds_pooled(retriever, embedder):
    """The seed index's passages, embedded with sentences pooled (the index itself encodes them apart)."""
    passages = retriever.passages
    sentences, members = sentence_spans(passages)
    return embed_pooled(embedder, passages, [p.text for p in passages], sentences, members, KnownVectors(), batch_size=7), sentences


def test_pooled_passage_vectors_equal_encode(retriever, seeds_pooled) -> None:
    pooled, _ = seeds_pooled
    encoded = retriever.stored.vector_index.reconstruct_n(0, len(retriever.passages))
    np.testing.assert_allclose(pooled.passages, encoded, atol=1e-5)


def test_a_pooled_sentence_is_nearest_its_own_encoding(retriever, seeds_pooled) -> None:
    pooled, sentences = seeds_pooled
    table = retriever.components.sentences  # the same sentences, in the same order, encoded apart
    assert [(s.start, s.end) for s in sentences] == list(zip(table.starts.tolist(), table.ends.tolist(), strict=True))
    assert pooled.encoded_apart == 0
    similarity = pooled.sentences @ table.vectors.T
    # the two scrapes of one article hold the same sentences: a copy is not "another sentence"
    words = [" ".join(re.findall(r"\w+", s.text.lower())) for s in sentences]
    same = np.array([[a == b for b in words] for a in words])
    margin = np.diag(similarity) - np.where(same, -2.0, similarity).max(axis=1)
    # measured on the seeds: 87% nearest their own, median margin 0.125; short sentences read in
    # context ("It is not quite the same now.") take on their neighbours' meaning
    assert (margin > 0).mean() >= 0.8 and np.median(margin) >= 0.08


def test_spans_are_shifted_past_the_title_and_heading(embedder) -> None:
    passage = _passage("The ferry runs at six. The last boat leaves at nine.", start=40, heading="Winter timetable")
    embedded = embedding_input(passage.title, passage.heading, passage.text, True)
    sentences, members = sentence_spans([passage])
    spans = [input_span(embedded, passage, s.start, s.end) for s in sentences]
    assert [embedded[a:b] for a, b in spans] == [s.text for s in sentences]
    with_context = embed_pooled(embedder, [passage], [embedded], sentences, members, KnownVectors())
    plain = embed_pooled(embedder, [passage], [passage.text], sentences, members, KnownVectors())
    assert with_context.encoded_apart == plain.encoded_apart == 0
    # the same tokens read after a title: close, not equal
    assert all(0.8 < float(a @ b) < 1 - 1e-4 for a, b in zip(with_context.sentences, plain.sentences, strict=True))


def test_a_sentence_the_model_never_saw_is_encoded_on_its_own(embedder) -> None:
    last = "The ferry leaves at nine."
    passage = _passage("word " * 400 + "end. " + last)
    sentences, members = sentence_spans([passage])
    got = embed_pooled(embedder, [passage], [passage.text], sentences, members, KnownVectors())
    assert sentences[-1].text == last and got.encoded_apart == 1
    np.testing.assert_allclose(got.sentences[-1], embedder.encode([last])[0], atol=1e-5)


def test_a_shared_sentence_is_pooled_where_it_sits_most_centrally() -> None:
    text = "One is here. Two is here. Three is here. Four is here."
    cuts = [(0, 25), (0, 40), (26, 54)]  # "Two" ends the first passage and is central in the second
    passages = [_passage(text[a:b], start=a) for a, b in cuts]
    sentences, members = sentence_spans(passages)
    rows = dict(zip((s.text for s in sentences), origins(passages, sentences, members), strict=True))
    assert rows == {"One is here.": 0, "Two is here.": 1, "Three is here.": 1, "Four is here.": 2}

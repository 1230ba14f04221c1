"""A rebuild encodes only text the live build has not embedded, and gives the index a fresh build would."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest

from index import IndexConfig, IndexStale, build_index, open_index
from index.chunk import ChunkSpec
from index.components import read_sentences
from tests.conftest import SMALL_DOCS

NEW_DOC = (
    "Ferry Timetable Changes for Winter\n\n"
    "The island ferry will run four times a day from November. The last boat leaves at six in the evening.\n"
)


class _Counting:
    """The real embedder, counting the texts it is asked to encode."""

    def __init__(self, embedder) -> None:
        self._embedder = embedder
        self.info, self.model, self.model_length = embedder.info, embedder.model, embedder.model_length
        self.encoded: list[str] = []

    def encode(self, texts, **kwargs):
        self.encoded += list(texts)
        return self._embedder.encode(texts, **kwargs)

    def encode_groups(self, groups, whats, **kwargs):
        self.encoded += [t for texts in groups for t in texts]
        return self._embedder.encode_groups(groups, whats, **kwargs)

    def encode_pooling_spans(self, texts, spans, *args):
        self.encoded += list(texts)
        return self._embedder.encode_pooling_spans(texts, spans, *args)


POOLED = dataclasses.replace(ChunkSpec(), sentence_vectors="pooled")


@pytest.mark.parametrize("chunk", [ChunkSpec(), POOLED], ids=["encoded", "pooled"])
def test_adding_a_file_embeds_only_its_text_and_matches_a_fresh_build(small_corpus: Path, tmp_path: Path, embedder, chunk) -> None:
    config = IndexConfig(corpus_dir=small_corpus, index_dir=tmp_path / "index", chunk=chunk)
    first = build_index(config, embedder)
    (small_corpus / "ferry.txt").write_text(NEW_DOC, encoding="utf-8")
    counting = _Counting(embedder)
    again = build_index(config, counting)
    new = [p for p in again.passages if p.source == "ferry.txt"]
    reuse = again.manifest["reuse"]
    assert reuse["passages_reused"] == len(first.passages) and reuse["passages_embedded"] == len(new) >= 1
    assert reuse["sentences_embedded"] >= 2 and all("ferry" in t.lower() or "boat" in t.lower() or "winter" in t.lower()
                                                     for t in counting.encoded)
    fresh = build_index(dataclasses.replace(config, index_dir=tmp_path / "fresh"), embedder)
    assert fresh.manifest["reuse"]["passages_reused"] == 0
    assert again.passages == fresh.passages
    n = len(fresh.passages)
    # reused vectors were encoded in other batches: equal up to float noise (~1e-7), far below any score gap
    np.testing.assert_allclose(again.vector_index.reconstruct_n(0, n), fresh.vector_index.reconstruct_n(0, n), atol=1e-5)
    s_again, s_fresh = read_sentences(again.path), read_sentences(fresh.path)
    assert np.array_equal(s_again.starts, s_fresh.starts) and np.array_equal(s_again.ends, s_fresh.ends)
    np.testing.assert_allclose(s_again.vectors, s_fresh.vectors, atol=1e-5)


def test_editing_a_file_chunks_and_embeds_only_that_file_and_matches_a_fresh_build(small_corpus: Path, tmp_path: Path, embedder) -> None:
    config = IndexConfig(corpus_dir=small_corpus, index_dir=tmp_path / "index")
    build_index(config, embedder)
    edited = small_corpus / "orchard.txt"
    edited.write_text(edited.read_text(encoding="utf-8").replace("52,000 tonnes", "61,500 tonnes"), encoding="utf-8")
    counting = _Counting(embedder)
    measured: list[str] = []
    counting.model_length = lambda text: measured.append(text) or embedder.model_length(text)
    again = build_index(config, counting)
    assert measured and all(t in edited.read_text(encoding="utf-8") for t in measured)  # only its text was chunked
    assert counting.encoded and all("61,500" in t for t in counting.encoded)  # only the changed passage and sentence
    fresh = build_index(dataclasses.replace(config, index_dir=tmp_path / "fresh"), embedder)
    assert again.passages == fresh.passages and again.manifest["documents"] == fresh.manifest["documents"]


def test_deleting_a_file_removes_its_passages_and_embeds_nothing(small_corpus: Path, tmp_path: Path, embedder) -> None:
    config = IndexConfig(corpus_dir=small_corpus, index_dir=tmp_path / "index")
    build_index(config, embedder)
    (small_corpus / sorted(SMALL_DOCS)[0]).unlink()
    counting = _Counting(embedder)
    again = build_index(config, counting)
    assert counting.encoded == [] and again.manifest["reuse"]["passages_embedded"] == 0
    assert {p.source for p in again.passages} == set(sorted(SMALL_DOCS)[1:])


def test_a_changed_embedding_input_is_embedded_again(small_corpus: Path, tmp_path: Path, embedder) -> None:
    config = IndexConfig(corpus_dir=small_corpus, index_dir=tmp_path / "index")
    build_index(config, embedder)
    with_context = dataclasses.replace(config, chunk=dataclasses.replace(config.chunk, embed_context=True))
    again = build_index(with_context, embedder)
    # passages now embed title and heading too: nothing matches; their sentences are unchanged
    assert again.manifest["reuse"]["passages_reused"] == 0
    assert again.manifest["reuse"]["sentences_embedded"] == 0


def test_a_fresh_index_opens_without_reading_the_corpus(small_corpus: Path, tmp_path: Path, embedder, monkeypatch) -> None:
    for path in small_corpus.rglob("*.txt"):  # files not written just before the build read them
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - 10**10))
    config = IndexConfig(corpus_dir=small_corpus, index_dir=tmp_path / "index")
    built = build_index(config, embedder)
    reads: list[Path] = []
    original = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(self) or original(self))
    assert open_index(config, embedder, rebuild=False).path == built.path
    assert not [p for p in reads if p.is_relative_to(small_corpus)]
    (small_corpus / "new.txt").write_text("A new document about glaciers.\n", encoding="utf-8")
    with pytest.raises(IndexStale, match="added: new.txt"):
        open_index(config, embedder, rebuild=False)
    assert [p.name for p in reads if p.is_relative_to(small_corpus)] == ["new.txt"]


def test_a_pooled_sentence_is_pooled_again_when_its_passage_input_changes(small_corpus: Path, tmp_path: Path, embedder) -> None:
    config = IndexConfig(corpus_dir=small_corpus, index_dir=tmp_path / "index", chunk=POOLED)
    before = read_sentences(build_index(config, embedder).path).vectors
    with_context = dataclasses.replace(config, chunk=dataclasses.replace(POOLED, embed_context=True))
    again = build_index(with_context, embedder)
    # a pooled vector depends on the whole input its tokens were read in
    assert again.manifest["reuse"]["sentences_reused"] == 0
    assert again.manifest["sentence_vectors"] == {"method": "pooled", "encoded_apart": 0}
    assert not np.allclose(before, read_sentences(again.path).vectors, atol=1e-3)


def test_switching_how_sentences_are_made_rebuilds_and_reuses_only_passages(small_corpus: Path, tmp_path: Path, embedder) -> None:
    config = IndexConfig(corpus_dir=small_corpus, index_dir=tmp_path / "index")
    first = build_index(config, embedder)
    pooled = dataclasses.replace(config, chunk=POOLED)
    with pytest.raises(IndexStale, match="sentence_vectors encoded → pooled"):
        open_index(pooled, embedder, rebuild=False)
    again = build_index(pooled, embedder)
    reuse = again.manifest["reuse"]
    assert reuse["passages_embedded"] == len(first.passages)  # pooling needs each passage's forward pass
    assert reuse["sentences_reused"] == 0 and again.manifest["chunking"]["sentence_vectors"] == "pooled"
    back = build_index(config, embedder)  # pooled vectors are never taken for encoded ones
    assert back.manifest["reuse"]["sentences_reused"] == 0 and back.manifest["reuse"]["passages_embedded"] == 0


def test_a_build_from_before_sentence_origins_is_reused(small_corpus: Path, tmp_path: Path, embedder) -> None:
    """An index of format 3 has no sentences/origins.npy; its vectors are still found again."""
    config = IndexConfig(corpus_dir=small_corpus, index_dir=tmp_path / "index")
    old = build_index(config, embedder)
    (old.path / "sentences" / "origins.npy").unlink()
    manifest = json.loads((old.path / "manifest.json").read_text(encoding="utf-8"))
    del manifest["files"]["sentences/origins.npy"]
    (old.path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    counting = _Counting(embedder)
    again = build_index(config, counting)
    assert counting.encoded == [] and again.manifest["reuse"]["sentences_reused"] == len(read_sentences(again.path).vectors)

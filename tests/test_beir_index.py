"""eval.beir_index: a collection written as one file per document, under ids that survive the trip."""

from __future__ import annotations

import os

import pytest

from eval.beir import BeirDoc, CollectionError
from eval.beir_index import decode_doc_id, doc_file_text, encode_doc_id, materialise


AWKWARD_IDS = ["a/b", "with space", "100%", "../up", "back\\slash", "ü-ñ", ".", "CON", "q?x*y:z", "%2F"]


@pytest.mark.parametrize("doc_id", AWKWARD_IDS)
def test_doc_id_encoding_round_trips_into_one_safe_file_name(doc_id):
    name = encode_doc_id(doc_id)
    assert decode_doc_id(name) == doc_id
    assert not set(name) & set('/\\ :*?"<>|')
    assert name not in {".", ".."}


def test_encoding_is_injective():
    names = [encode_doc_id(i) for i in AWKWARD_IDS]
    assert len(set(names)) == len(names)


def test_doc_file_text():
    assert doc_file_text(BeirDoc("1", "Title", "Body.")) == "Title\n\nBody."
    assert doc_file_text(BeirDoc("1", "", "Body.")) == "Body."
    assert doc_file_text(BeirDoc("1", "", "")) == ""
    assert doc_file_text(BeirDoc("1", "wings in a slipstream .", "Body.")) == "wings in a slipstream\n\nBody."
    assert doc_file_text(BeirDoc("1", " . ", "Body.")) == "Body."


def test_materialise_writes_files_and_keeps_the_mapping(tmp_path):
    docs = [BeirDoc(i, f"T {n}" if n % 2 else "", f"text of {i} ✓") for n, i in enumerate(AWKWARD_IDS)]
    corpus = tmp_path / "corpus"
    result = materialise(docs, corpus)
    assert result.written == len(docs) and result.removed == 0
    assert sorted(result.names.values()) == sorted(AWKWARD_IDS)
    files = sorted(p.name for p in corpus.iterdir())
    assert len(files) == len(docs) and all(p.parent == corpus for p in corpus.rglob("*.txt"))
    for doc in docs:
        stem = encode_doc_id(doc.doc_id)
        assert result.names[stem] == doc.doc_id
        assert (corpus / f"{stem}.txt").read_bytes().decode("utf-8") == doc_file_text(doc)


def test_materialise_leaves_identical_files_untouched(tmp_path):
    docs = [BeirDoc("a/b", "Title", "one"), BeirDoc("c d", "", "two")]
    corpus = tmp_path / "corpus"
    materialise(docs, corpus)
    past = 1_000_000_000  # 2001: any rewrite would move the mtime to now
    for path in corpus.iterdir():
        os.utime(path, ns=(past * 10**9, past * 10**9))
    again = materialise(docs, corpus)
    assert again.written == 0 and again.removed == 0
    assert all(p.stat().st_mtime_ns == past * 10**9 for p in corpus.iterdir())

    changed = materialise([BeirDoc("a/b", "Title", "one, edited"), docs[1]], corpus)
    assert changed.written == 1
    assert (corpus / f"{encode_doc_id('a/b')}.txt").stat().st_mtime_ns != past * 10**9
    assert (corpus / f"{encode_doc_id('c d')}.txt").stat().st_mtime_ns == past * 10**9


def test_materialise_removes_documents_no_longer_in_the_collection(tmp_path):
    corpus = tmp_path / "corpus"
    materialise([BeirDoc("a", "", "one"), BeirDoc("b", "", "two")], corpus)
    (corpus / "sub").mkdir()
    (corpus / "sub" / "stray.txt").write_text("x", encoding="utf-8")
    result = materialise([BeirDoc("a", "", "one")], corpus)
    assert result.removed == 2
    assert sorted(p.relative_to(corpus).as_posix() for p in corpus.rglob("*.txt")) == ["a.txt"]


def test_materialise_refuses_ids_that_differ_only_in_case(tmp_path):
    with pytest.raises(CollectionError, match="differ only in case"):
        materialise([BeirDoc("Doc", "", "x"), BeirDoc("doc", "", "y")], tmp_path / "corpus")

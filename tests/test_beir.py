"""Tests for eval.beir (collection loading) and index.lexical (BM25, the lexical ranker and baseline)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from eval import metrics
from eval.beir import BeirCollection, BeirDoc, CollectionError, load_beir
from index.errors import CitedError
from index.lexical import BM25Index

CRANFIELD = Path(__file__).parent.parent / "eval" / "cranfield"

QRELS_HEADER = "query-id\tcorpus-id\tscore\n"


def write_collection(
    folder: Path,
    docs: list[dict] | str | None = None,
    queries: list[dict] | str | None = None,
    qrels: str | None = None,
) -> Path:
    """A tiny valid collection; pass a raw string for any file to corrupt it."""
    if docs is None:
        docs = [
            {"_id": "d1", "title": "Cats", "text": "cats purr"},
            {"_id": "d2", "text": "dogs bark"},  # no title field: allowed
            {"_id": "d3", "title": "", "text": ""},  # empty doc, like Cranfield 995
        ]
    if queries is None:
        queries = [
            {"_id": "q1", "text": "purring cats"},
            {"_id": "q2", "text": "unjudged query"},
            {"_id": "q3", "text": "barking", "extra": 1},  # extra fields are ignored
        ]
    if qrels is None:
        qrels = QRELS_HEADER + "q3\td2\t2\nq1\td1\t1\nq1\td3\t0\n"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "qrels").mkdir(exist_ok=True)
    for name, content in (("corpus.jsonl", docs), ("queries.jsonl", queries)):
        if not isinstance(content, str):
            content = "".join(json.dumps(record) + "\n" for record in content)
        (folder / name).write_text(content, encoding="utf-8")
    (folder / "qrels" / "test.tsv").write_text(qrels, encoding="utf-8")
    return folder


# ---------------------------------------------------------------- loading


def test_load_tiny_collection(tmp_path):
    collection = load_beir(write_collection(tmp_path / "tiny"))
    assert isinstance(collection, BeirCollection)
    assert collection.name == "tiny"
    assert list(collection.docs) == ["d1", "d2", "d3"]  # file order
    assert collection.docs["d1"] == BeirDoc("d1", "Cats", "cats purr")
    assert collection.docs["d2"].title == ""
    assert collection.docs["d3"] == BeirDoc("d3", "", "")
    # Only judged queries, in queries.jsonl order (q1 before q3 although qrels lists q3 first).
    assert collection.queries == {"q1": "purring cats", "q3": "barking"}
    assert list(collection.queries) == ["q1", "q3"]
    assert collection.qrels == {"q3": {"d2": 2}, "q1": {"d1": 1, "d3": 0}}
    with pytest.raises(AttributeError):
        collection.name = "other"  # frozen


def test_blank_lines_and_crlf_are_tolerated(tmp_path):
    folder = write_collection(
        tmp_path / "c",
        docs='{"_id": "d1", "title": "", "text": "a b"}\r\n\r\n',
        queries='{"_id": "q1", "text": "a"}\n\n',
        qrels="query-id\tcorpus-id\tscore\r\nq1\td1\t1\r\n\r\n",
    )
    collection = load_beir(folder)
    assert collection.qrels == {"q1": {"d1": 1}}


def test_other_qrels_file(tmp_path):
    folder = write_collection(tmp_path / "c")
    (folder / "qrels" / "dev.tsv").write_text(QRELS_HEADER + "q2\td1\t1\n", encoding="utf-8")
    assert load_beir(folder, qrels_file="dev.tsv").queries == {"q2": "unjudged query"}


def _error(folder: Path, **kwargs) -> CollectionError:
    with pytest.raises(CollectionError) as info:
        load_beir(folder, **kwargs)
    assert isinstance(info.value, CitedError)  # the CLI prints it as one line
    return info.value


@pytest.mark.parametrize("missing", ["corpus.jsonl", "queries.jsonl", "qrels/test.tsv"])
def test_missing_file(tmp_path, missing):
    folder = write_collection(tmp_path / "c")
    (folder / missing).unlink()
    error = _error(folder)
    assert error.path == folder / missing
    assert error.line is None
    assert missing.split("/")[-1] in str(error) and "not found" in str(error)


def test_missing_folder(tmp_path):
    assert "not found" in str(_error(tmp_path / "nope"))


@pytest.mark.parametrize(
    ("file", "content", "line", "message"),
    [
        ("corpus.jsonl", '{"_id": "d1", "text": "x"}\n{"_id": "d2", "text": \n', 2, "malformed JSON"),
        ("corpus.jsonl", '{"_id": "d1", "text": "x"}\n["d2"]\n', 2, "JSON object"),
        ("corpus.jsonl", '{"_id": "d1"}\n', 1, "missing field 'text'"),
        ("corpus.jsonl", '{"text": "x"}\n', 1, "missing field '_id'"),
        ("corpus.jsonl", '{"_id": 1, "text": "x"}\n', 1, "'_id' must be a string"),
        ("corpus.jsonl", '{"_id": "d1", "title": null, "text": "x"}\n', 1, "'title' must be a string"),
        ("corpus.jsonl", '{"_id": "d1", "text": "x"}\n\n{"_id": "d1", "text": "y"}\n', 3, "duplicate _id 'd1'"),
        ("queries.jsonl", '{"_id": "q1", "text": "a"}\n{"_id": "q3"}\n', 2, "missing field 'text'"),
        ("queries.jsonl", '{"_id": "q1", "text": "a"}\nnot json\n', 2, "malformed JSON"),
    ],
)
def test_malformed_jsonl(tmp_path, file, content, line, message):
    kwargs = {"docs": content} if file == "corpus.jsonl" else {"queries": content}
    error = _error(write_collection(tmp_path / "c", **kwargs))
    assert error.path.name == file
    assert error.line == line
    assert f"{file}:{line}:" in str(error)
    assert message in str(error)


def test_invalid_utf8_names_the_line(tmp_path):
    folder = write_collection(tmp_path / "c")
    with (folder / "corpus.jsonl").open("ab") as f:
        f.write(b'{"_id": "d9", "text": "\xff"}\n')
    error = _error(folder)
    assert (error.path.name, error.line) == ("corpus.jsonl", 4)
    assert "UTF-8" in str(error)


@pytest.mark.parametrize(
    ("rows", "line", "message"),
    [
        ("q1\td1\n", 2, "expected 3 tab-separated fields, got 2"),
        ("q1 d1 1\n", 2, "expected 3 tab-separated fields, got 1"),
        ("q1\td1\t1\t9\n", 2, "got 4"),
        ("q1\td1\tyes\n", 2, "score 'yes' is not an integer"),
        ("q1\td1\t1.5\n", 2, "not an integer"),
        ("q1\t\t1\n", 2, "empty query-id or corpus-id"),
        ("q1\td1\t1\nq9\td1\t1\n", 3, "query-id 'q9' is not in queries.jsonl"),
        ("q1\td1\t1\nq1\td9\t1\n", 3, "corpus-id 'd9' is not in corpus.jsonl"),
        ("q1\td1\t1\nq1\td1\t2\n", 3, "judges doc 'd1' twice"),
    ],
)
def test_bad_qrels_rows(tmp_path, rows, line, message):
    error = _error(write_collection(tmp_path / "c", qrels=QRELS_HEADER + rows))
    assert (error.path.name, error.line) == ("test.tsv", line)
    assert message in str(error)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("q1\td1\t1\n", "header"),  # header forgotten: first data row must not be eaten
        ("", "empty file"),
        (QRELS_HEADER, "no judgments"),
    ],
)
def test_bad_qrels_file(tmp_path, content, message):
    error = _error(write_collection(tmp_path / "c", qrels=content))
    assert error.path.name == "test.tsv"
    assert message in str(error)


# ---------------------------------------------------------------- the real collection


@pytest.fixture(scope="module")
def cranfield() -> BeirCollection:
    if not (CRANFIELD / "corpus.jsonl").is_file():
        pytest.skip(f"Cranfield collection not present at {CRANFIELD}")
    return load_beir(CRANFIELD)


def test_cranfield_counts(cranfield):
    assert cranfield.name == "cranfield"
    assert len(cranfield.docs) == 1400
    assert len(cranfield.queries) == 225
    assert sum(1 for rels in cranfield.qrels.values() for g in rels.values() if g > 0) == 1612
    assert sum(len(rels) for rels in cranfield.qrels.values()) == 1837
    assert cranfield.docs["995"] == BeirDoc("995", "", "")
    assert cranfield.qrels["125"]["995"] > 0  # the empty doc is judged relevant (README)
    # Every query has a relevant doc, so none is skipped by the metrics.
    assert all(any(g > 0 for g in rels.values()) for rels in cranfield.qrels.values())


# ---------------------------------------------------------------- BM25

SENTENCES = [
    "The cat sat on the mat.",
    "Dogs are loyal animals and love long walks.",
    "Stock markets fell sharply after the announcement.",
    "A recipe for bread needs flour, water, yeast and salt.",
]


@pytest.fixture(scope="module")
def small_index() -> BM25Index:
    return BM25Index.build(SENTENCES)


def test_bm25_top_doc(small_index):
    results = small_index.search_batch(["walking my dog", "baking bread with yeast", "cats"], k=2)
    # Stemming applies at both ends: walking~walks, dog~dogs, cats~cat.
    assert [hits[0][0] for hits in results] == [1, 3, 0]
    for hits in results:
        scores = [score for _, score in hits]
        assert scores == sorted(scores, reverse=True)
        assert all(isinstance(row, int) and isinstance(score, float) for row, score in hits)


def test_bm25_drops_zero_scores_and_clamps_k(small_index):
    # Only sentence 0 mentions a mat; the others score 0 and are dropped, even with k=100.
    (hits,) = small_index.search_batch(["mat"], k=100)
    assert [row for row, _ in hits] == [0]
    # Stopwords only, or unknown words: nothing matches.
    assert small_index.search_batch(["the and a", "zyzzyva", ""], k=4) == [[], [], []]
    assert small_index.search_batch([], k=4) == []
    # k larger than the corpus is clamped, not an error.
    (hits,) = small_index.search_batch(["the cat and the dogs and the bread"], k=50)
    assert sorted(row for row, _ in hits) == [0, 1, 3]


def test_bm25_rejects_bad_arguments(small_index):
    with pytest.raises(ValueError):
        small_index.search_batch(["cat"], k=0)
    with pytest.raises(TypeError):
        small_index.search_batch("cat", k=1)
    with pytest.raises(ValueError):
        BM25Index.build([])


def test_bm25_save_load_round_trip(tmp_path, small_index):
    queries = ["walking my dog", "cats on mats", "markets", "flour and salt", "nothing here"]
    small_index.save(tmp_path / "idx")
    files = sorted(p.name for p in (tmp_path / "idx").iterdir())
    assert all(name.endswith((".npy", ".json")) for name in files), files
    assert "tokenizer.json" in files
    for name in files:  # arrays are plain, loadable without pickle
        if name.endswith(".npy"):
            np.load(tmp_path / "idx" / name, allow_pickle=False)
    config = json.loads((tmp_path / "idx" / "tokenizer.json").read_text(encoding="utf-8"))
    assert config["stemmer"] == "english" and "the" in config["stopwords"]

    loaded = BM25Index.load(tmp_path / "idx")
    assert len(loaded) == len(small_index) == 4
    assert loaded.search_batch(queries, k=4) == small_index.search_batch(queries, k=4)


def test_bm25_load_refuses_foreign_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        BM25Index.load(tmp_path)


def test_bm25_cranfield_reference_numbers(cranfield):
    """Reproduces the BM25 row of eval/cranfield/README.md (bm25s lucene, k1=1.5, b=0.75)."""
    doc_ids = list(cranfield.docs)
    index = BM25Index.build([f"{d.title} {d.text}" for d in cranfield.docs.values()])
    query_ids = list(cranfield.queries)
    results = index.search_batch([cranfield.queries[q] for q in query_ids], k=100)
    run = {qid: [doc_ids[row] for row, _ in hits] for qid, hits in zip(query_ids, results)}
    per_query = metrics.evaluate(cranfield.qrels, run, ["ndcg@10", "recall@100", "mrr@10"])
    assert len(per_query) == 225
    means = metrics.mean(per_query)
    assert means["ndcg@10"] == pytest.approx(0.3735, abs=0.01)
    assert means["recall@100"] == pytest.approx(0.738, abs=0.01)
    assert means["mrr@10"] == pytest.approx(0.5315, abs=0.01)

"""The store seam (index.passage_store): FAISS and Milvus answer the same, the Milvus collection's life
follows its build's, and a missing extra or an unreachable Milvus is one line.

Tests needing Milvus are marked ``milvus`` (run them with ``pytest -m milvus``) and skip without the extra.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eval.questions import load_questions
from eval.relevance import Corpus, gold_spans
from eval.runner import InProcess, run_eval
from eval.store_bench import markdown, run_store_bench
from index import Embedder, IndexConfig, build_index
from index.config import StoreConfig
from index.errors import CitedError
from index.store import POINTER, pointed, read_index
from tests.conftest import SEEDS, _milvus_absent, table_rows

ROOT = Path(__file__).resolve().parent.parent


def needs_milvus(test):
    """Marked ``milvus`` (``pytest -m milvus``), skipped with the reason when the extra is absent."""
    return pytest.mark.milvus(pytest.mark.skipif(_milvus_absent() is not None, reason=str(_milvus_absent()))(test))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- without Milvus ------------------------------------------------------------------------------


def test_without_the_extra_store_milvus_is_one_line_naming_the_install(monkeypatch) -> None:
    from index.milvus_store import MilvusUnavailable, connect

    monkeypatch.setitem(sys.modules, "pymilvus", None)  # import pymilvus now raises ImportError
    with pytest.raises(MilvusUnavailable, match=r"needs the milvus extra .*pip install -e '\.\[milvus\]'") as caught:
        connect("unused.db")
    assert "\n" not in str(caught.value) and isinstance(caught.value, CitedError)


def test_the_store_benchmark_runs_and_its_table_shows_the_report(retriever) -> None:
    report = run_store_bench({"faiss": retriever}, ["What is ETIM?", "CPEC in Balochistan"], rounds=2)
    row = report["stores"]["faiss"]
    assert 0 < row["encoded_p50_ms"] <= row["encoded_p95_ms"] and 0 < row["search_p50_ms"] <= row["search_p95_ms"]
    build = retriever.stored.path
    assert row["store_bytes_per_passage"] == round(
        ((build / "faiss.index").stat().st_size + sum(p.stat().st_size for p in (build / "lexical").rglob("*"))) / len(retriever.passages))
    printed = {cells[0]: cells[1:] for cells in table_rows(markdown(report))[1:]}
    assert float(printed["faiss"][0]) == row["search_p50_ms"] and printed["faiss"][5] == f"{row['store_bytes_per_passage']:,}"


# -- with Milvus ---------------------------------------------------------------------------------


@needs_milvus
def test_both_stores_give_the_same_candidates_and_vectors(seed_retriever, milvus_retriever) -> None:
    faiss, milvus = seed_retriever.store, milvus_retriever.store
    questions = [q.question for q in load_questions(ROOT / "eval" / "questions.jsonl", SEEDS)]
    queries = seed_retriever.embedder.encode(questions)
    order = seed_retriever.order
    for a, b in zip(faiss.dense(queries, 50, order), milvus.dense(queries, 50, order), strict=True):
        assert [r for r, _ in a] == [r for r, _ in b]
        assert np.allclose([s for _, s in a], [s for _, s in b], atol=1e-5)
    for a, b in zip(faiss.lexical(questions, 50, order), milvus.lexical(questions, 50, order), strict=True):
        assert [r for r, _ in a] == [r for r, _ in b]  # the same terms counted: the same order (index.milvus_store.Terms)
        # Milvus scores classic BM25, bm25s Lucene's: a factor k1 + 1 apart
        assert np.allclose([s * 2.5 for _, s in a], [s for _, s in b], rtol=1e-4)
    rows = [0, 7, len(seed_retriever.passages) - 1, 7]
    assert np.array_equal(faiss.vectors(rows), milvus.vectors(rows))
    assert milvus.lexical(["the of and", "zzzzunseen"], 10, order) == [[], []]


@needs_milvus
def test_the_seed_eval_differs_by_at_most_one_question_per_metric(seed_retriever, milvus_retriever) -> None:
    questions = load_questions(ROOT / "eval" / "questions.jsonl", SEEDS)
    spans = gold_spans(questions, Corpus.read(SEEDS))
    runs = {name: run_eval(questions, spans, InProcess(r)) for name, r in (("faiss", seed_retriever), ("milvus", milvus_retriever))}
    per_question = {name: {rec["id"]: rec["metrics"] for rec in run.records if rec["metrics"] is not None} for name, run in runs.items()}
    assert per_question["faiss"].keys() == per_question["milvus"].keys()
    metrics = next(iter(per_question["faiss"].values())).keys()
    for metric in metrics:
        moved = [q for q in per_question["faiss"] if abs(per_question["faiss"][q][metric] - per_question["milvus"][q][metric]) > 1e-9]
        assert len(moved) <= 1, f"{metric} differs on {moved}"
    n = len(per_question["faiss"])
    for metric, value in runs["faiss"].aggregates["overall"].items():
        if metric != "n":
            assert abs(value - runs["milvus"].aggregates["overall"][metric]) <= 1 / n + 1e-9, metric


@needs_milvus
def test_a_milvus_store_never_loads_faiss_index(seed_retriever, milvus_retriever) -> None:
    from index import Retriever

    stored = read_index(seed_retriever.stored.path.parent, load_vectors=False)
    r = Retriever(seed_retriever.embedder, stored, seed_retriever.ranking, milvus_retriever.store_config)
    result = r.search("Who met Mullah Omar in 2000?")
    assert result.hits and result.best_cosine is not None
    assert stored.vector_index._index is None  # deferred, and nothing asked for it
    assert stored.vector_index.ntotal == len(stored.passages)  # still there for whoever asks (a rebuild's reuse)


@needs_milvus
def test_the_collection_exists_before_current_names_its_build_and_goes_with_it(small_corpus: Path, tmp_path: Path, embedder: Embedder, monkeypatch) -> None:
    import index.store as store
    from index.milvus_store import collection_name, connect

    index_dir = tmp_path / "index"
    config = IndexConfig(small_corpus, index_dir, store=StoreConfig("milvus"))
    client = connect(config.store.uri(index_dir))
    seen: dict[str, bool] = {}

    def on_step(name: str) -> None:
        if name == "current-written":  # CURRENT.tmp written, not yet renamed: nothing names the new build yet
            build = max(p.name for p in index_dir.glob("build-*"))
            seen[build] = client.has_collection(collection_name(build))

    monkeypatch.setattr(store, "on_step", on_step)
    builds = []
    for n in range(3):
        (small_corpus / f"added-{n}.txt").write_text(f"Note {n}\n\nThe harbour added note number {n} to its records.\n", encoding="utf-8")
        builds.append(build_index(config, embedder).path.name)
    assert seen == dict.fromkeys(builds, True)
    assert pointed(index_dir, POINTER) == builds[-1]
    # tidying removed the first build's folder, and with it its collection; CURRENT's and PREVIOUS's stay
    assert [client.has_collection(collection_name(b)) for b in builds] == [False, True, True]
    assert not (index_dir / builds[0]).exists()


@needs_milvus
def test_cli_on_milvus_answers_with_exact_citations_and_refuses_a_build_without_its_collection(small_corpus: Path, tmp_path: Path) -> None:
    env_args = ["--corpus-dir", str(small_corpus), "--index-dir", str(tmp_path / "index")]
    run = lambda *args: subprocess.run([sys.executable, "-m", "service.cli", *args], capture_output=True, text=True, timeout=300, cwd=ROOT)  # noqa: E731
    built = run("index", *env_args)
    assert built.returncode == 0, built.stderr
    refused = run("query", "breakwater funding", *env_args, "--store", "milvus")
    errors = [line for line in refused.stderr.splitlines() if line.startswith("cited: error")]
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert len(errors) == 1 and "no collection" in errors[0] and "cited index" in errors[0]
    rebuilt = run("index", *env_args, "--store", "milvus")  # rebuilds (reusing every vector) to write the collection
    assert rebuilt.returncode == 0 and "Traceback" not in rebuilt.stderr, rebuilt.stderr
    answered = run("query", "breakwater funding", *env_args, "--store", "milvus", "--json")
    assert answered.returncode == 0, answered.stderr
    results = json.loads(answered.stdout)["results"]
    assert results
    for r in results:
        c = r["citation"]
        assert (small_corpus / c["source"]).read_text(encoding="utf-8")[c["start"] : c["end"]] == r["text"]


@needs_milvus
def test_an_unreachable_milvus_is_one_line_naming_the_uri() -> None:
    from index.milvus_store import MilvusUnavailable, connect

    uri = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(MilvusUnavailable, match=rf"cannot reach Milvus at {uri}") as caught:
        connect(uri)
    assert "\n" not in str(caught.value)


@needs_milvus
def test_the_store_benchmark_compares_both_stores(seed_retriever, milvus_retriever) -> None:
    report = run_store_bench({"faiss": seed_retriever, "milvus": milvus_retriever}, ["What is ETIM?", "CPEC in Balochistan"], rounds=1)
    assert set(report["stores"]) == {"faiss", "milvus"}
    milvus = report["stores"]["milvus"]
    assert milvus["store_bytes_per_passage"] > 0 and milvus["encoded_p50_ms"] > 0
    assert milvus["shared_bytes_per_passage"] == report["stores"]["faiss"]["shared_bytes_per_passage"]


@needs_milvus
def test_a_hot_swap_on_milvus_opens_the_new_builds_collection(small_corpus: Path, tmp_path: Path, embedder: Embedder) -> None:
    from index import Retriever
    from index.milvus_store import collection_name
    from service.swap import IndexWatcher

    config = IndexConfig(small_corpus, tmp_path / "index", store=StoreConfig("milvus"))
    first = build_index(config, embedder)
    live = Retriever(embedder, first, store=config.store)
    swapped: list[Retriever] = []
    watcher = IndexWatcher(live, config.index_dir, swapped.append, interval=3600)
    (small_corpus / "pier.txt").write_text("Pier Reopens\n\nThe old pier reopened to anglers after a year of repairs.\n", encoding="utf-8")
    second = build_index(config, embedder)
    assert watcher.check() and len(swapped) == 1
    new = swapped[0]
    assert new.store.name == "milvus" and new.store.collection == collection_name(second.path.name)
    hit = new.search("When did the pier reopen to anglers?").hits[0]
    assert hit.passage.source == "pier.txt"
    assert new.stored.vector_index._index is None  # the swap did not load faiss.index either


@needs_milvus
def test_the_collection_of_a_build_that_died_before_publishing_goes_at_the_next_start(small_corpus: Path, tmp_path: Path, embedder: Embedder, monkeypatch) -> None:
    import index.store as store
    from index import open_index
    from index.milvus_store import collection_name, connect

    config = IndexConfig(small_corpus, tmp_path / "index", store=StoreConfig("milvus"))
    live = build_index(config, embedder).path.name

    def die(name: str) -> None:
        if name == "previous-written":  # the new build renamed and its collection written; no pointer names it
            raise KeyboardInterrupt

    (small_corpus / "late.txt").write_text("Late Note\n\nA note that arrived too late for the build.\n", encoding="utf-8")
    monkeypatch.setattr(store, "on_step", die)
    with pytest.raises(KeyboardInterrupt):
        build_index(config, embedder)
    monkeypatch.setattr(store, "on_step", None)
    orphan = next(p.name for p in config.index_dir.glob("build-*") if p.name != live)
    client = connect(config.store.uri(config.index_dir))
    assert client.has_collection(collection_name(orphan))
    with pytest.raises(CitedError):
        open_index(config, embedder, rebuild=False)  # stale (late.txt), but its start tidied first
    assert not (config.index_dir / orphan).exists() and not client.has_collection(collection_name(orphan))
    assert client.has_collection(collection_name(live))

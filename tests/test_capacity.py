"""The capacity plan: the projection is plain arithmetic of the measured costs, and the benchmark that measures them runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from eval.capacity import (DAY_S, markdown, measure_build, measure_embedding, measure_milvus, milvus_available, milvus_choice,
                           milvus_index_bytes, project, run_capacity)
from index import IndexConfig, build_index
from service.cli import main

ROOT = Path(__file__).resolve().parent.parent


def measured(s_per_1k: float = 20.0, folder: float = 8000.0, loaded: float = 6000.0) -> dict:
    return {
        "dimension": 384,
        "embedding": {"s_per_1k_passages_per_core": s_per_1k, "passage_s_per_1k": 8.0, "sentence_s_per_1k": 4.0, "sentences_per_passage": 3.0},
        "build": {"passages": 500, "folder_bytes_per_passage": folder, "loaded_bytes_per_passage": loaded, "bytes_per_passage": {"faiss.index": 1536.0},
                  "model_process_mb": 600},
        "faiss": [{"passages": 10_000, "index": "IndexIVFFlat", "bytes_per_passage": 1600.0, "search_p50_ms": 0.1, "recall_at_10": 0.99},
                  {"passages": 100_000, "index": "IndexIVFFlat", "bytes_per_passage": 1560.0, "search_p50_ms": 0.2, "recall_at_10": 0.99}],
        "bm25": [{"passages": 10_000, "search_p50_ms": 0.5}],
        "milvus": [{"passages": 100_000, "index": "HNSW", "disk_bytes_per_passage": 4000.0, "loaded_bytes_per_passage": 3000.0,
                    "dense_p50_ms": 2.0, "bm25_p50_ms": 3.0, "insert_s": 10.0}],
        "milvus_skipped": None,
    }


def test_the_projection_is_the_arithmetic_of_the_measured_costs() -> None:
    ten, hundred = project(measured())
    assert ten["passages"] == 10_000_000 and hundred["passages"] == 100_000_000
    assert ten["embedding_core_hours"] == pytest.approx(10_000 * 20.0 / 3600, abs=0.1)
    assert ten["cores_for_one_day"] == math.ceil(10_000 * 20.0 / DAY_S) == 3
    assert hundred["cores_for_one_day"] == math.ceil(100_000 * 20.0 / DAY_S) == 24 and hundred["workers_8_cores_for_one_day"] == 3
    assert ten["build_folder_gb"] == 80.0 and ten["faiss_replica_memory_gb"] == 60.0  # the RSS measured, above the files' 1,536 B
    low_rss = measured(loaded=1000.0)
    assert project(low_rss)[0]["faiss_replica_memory_gb"] == 15.4  # never less than the files a server reads: here faiss.index's 1,536 B
    assert ten["faiss_ivf_gb"] == pytest.approx(15.6)  # the largest measured IVF size is the one projected
    assert hundred["milvus_disk_gb"] == 400.0
    # rerunning with other measurements redraws the plan: nothing in it is fixed
    slower = project(measured(s_per_1k=40.0, folder=4000.0))
    assert slower[1]["cores_for_one_day"] == math.ceil(100_000 * 40.0 / DAY_S) and slower[0]["build_folder_gb"] == 40.0


def test_the_milvus_index_type_follows_the_memory_arithmetic() -> None:
    sizes = milvus_index_bytes(384)
    assert sizes["HNSW"]["ram"] == 384 * 4 + 2 * 16 * 4  # raw vectors and level-0 links
    assert sizes["IVF_PQ"]["ram"] == 48 + 8 and sizes["DiskANN"]["ram"] == 192
    assert milvus_choice(10_000_000, 384)[0] == "HNSW"  # 16.6 GB: one 64 GB node
    choice, why = milvus_choice(100_000_000, 384)
    assert choice == "DiskANN" and "166 GB" in why
    assert milvus_choice(100_000_000, 384, node_gb=512)[0] == "HNSW"  # a bigger node changes the answer


def test_the_page_shows_every_measured_row_and_both_sizes() -> None:
    report = {"measured": measured(), "projection": project(measured())}
    text = markdown(report)
    assert "10,000,000 passages" in text and "100,000,000 passages" in text
    assert "20.0 s per 1k passages" in text and "Milvus Lite (HNSW" in text and "**DiskANN**" in text


def test_the_capacity_measurements_run(small_corpus: Path, tmp_path: Path, embedder) -> None:
    """The benchmark's parts on the session's model: a real build's bytes, the model's timing, FAISS and BM25 at 1,000."""
    stored = build_index(IndexConfig(corpus_dir=small_corpus, index_dir=tmp_path / "index"), embedder)
    build = measure_build(stored.path, len(stored.passages), {"loaded_bytes": 12_345 * len(stored.passages), "model_bytes": 2**29})
    assert build["bytes_per_passage"]["faiss.index"] >= 1536 and build["loaded_bytes_per_passage"] == 12_345
    assert build["folder_bytes_per_passage"] == pytest.approx(sum(build["bytes_per_passage"].values()), abs=1)
    texts = [p.text for p in stored.passages]
    embedding = measure_embedding(embedder.encode, texts, ["The harbour fees rise.", "Apples were picked."], sentences_per_passage=2.0, rounds=1)
    assert embedding["s_per_1k_passages_per_core"] == pytest.approx(embedding["passage_s_per_1k"] + 2.0 * embedding["sentence_s_per_1k"], rel=0.01)
    anchors = stored.vector_index.reconstruct_n(0, stored.vector_index.ntotal)
    report = run_capacity(embedding, build, anchors, texts, ["breakwater cost"], [1000], 5, tmp_path / "sizes", milvus=False)
    assert {r["index"] for r in report["measured"]["faiss"]} == {"IndexFlatIP", "IndexIVFFlat"}
    assert all(r["bytes_per_passage"] >= 1536 and r["search_p50_ms"] > 0 for r in report["measured"]["faiss"])
    assert report["measured"]["bm25"][0]["search_p50_ms"] > 0 and "turned off" in report["measured"]["milvus_skipped"]
    assert report["projection"] == project(report["measured"])


@pytest.mark.slow
def test_the_capacity_benchmark_runs(tmp_path: Path) -> None:
    """`cited bench capacity` end to end, small: a real build of 8 Cranfield documents, the model on one core, FAISS and BM25 at 1,000."""
    out = tmp_path / "out"
    code = main(["bench", "capacity", "--collection", str(ROOT / "eval" / "cranfield"), "--docs", "8", "--sizes", "1000", "--queries", "5",
                 "--no-milvus", "--work", str(tmp_path / "work"), "--out", str(out)])
    assert code == 0
    report = json.loads((out / "capacity.json").read_text(encoding="utf-8"))
    m = report["measured"]
    assert m["embedding"]["s_per_1k_passages_per_core"] > 0 and m["embedding"]["sentences_per_passage"] > 0
    assert m["build"]["bytes_per_passage"]["faiss.index"] >= 1536  # 384 float32 per passage, at least
    assert m["build"]["folder_bytes_per_passage"] > m["build"]["bytes_per_passage"]["faiss.index"]
    assert m["build"]["loaded_bytes_per_passage"] > 0
    assert {r["index"] for r in m["faiss"]} == {"IndexFlatIP", "IndexIVFFlat"} and m["bm25"][0]["search_p50_ms"] > 0
    assert m["milvus"] == [] and "turned off" in m["milvus_skipped"]
    assert [r["passages"] for r in report["projection"]] == [10_000_000, 100_000_000]
    assert "## Projection" in (out / "capacity.md").read_text(encoding="utf-8")


@pytest.mark.milvus
@pytest.mark.skipif(milvus_available() is not None, reason="needs pymilvus and milvus-lite: pip install -e '.[milvus]'")
def test_milvus_lite_stores_and_searches_the_measured_collection(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    anchors = rng.standard_normal((50, 384)).astype(np.float32)
    anchors /= np.linalg.norm(anchors, axis=1, keepdims=True)
    sentences = ["The harbour fees will rise next year.", "Apple growers picked a record harvest.", "The ferry leaves at six in the evening."]
    row = measure_milvus(anchors, sentences, ["harbour fees", "ferry evening"], n=1000, queries=5, folder=tmp_path)
    assert row["passages"] == 1000 and row["disk_bytes_per_passage"] >= 384 * 4  # the raw vectors at least
    assert row["dense_p50_ms"] > 0 and row["bm25_p50_ms"] > 0
    assert not (tmp_path / "milvus-1000.db").exists()

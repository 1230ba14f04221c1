"""The capacity plan: per-passage costs measured on this machine, projected to 10M and 100M passages.

Measured (``run_capacity``):

- **Embedding**: seconds to encode passages and their sentences with one torch thread, per 1,000
  passages. A build encodes every passage, and the sentences the passage vectors do not already
  give (the build manifest's ``encoded_apart``), so both are counted, per passage.
- **A real build folder** of a corpus sample: bytes per passage of each part (vectors, passages,
  sentence table and vectors, lexical index, stored texts), and the resident memory a loaded
  build adds to a server (RSS before and after loading it beside the model).
- **FAISS** at a few sizes of synthetic vectors drawn around the sample's real embeddings
  (eval.scale): bytes per passage and search p50, exact and IVF (what the build switches to past
  ``exact_up_to``, index.ann); **BM25** (bm25s) search p50 on synthetic passages of real sentences.
- **Milvus** (Milvus Lite, when ``pymilvus`` and ``milvus-lite`` are installed): one collection
  holding what the service needs per passage (vector, citation fields, text, a BM25 sparse field
  made by Milvus's own BM25 function), on-disk bytes per passage, dense and BM25 search p50.

Projected (``project``, a pure function of those numbers, so rerunning the benchmark redraws the
tables): cores for a one-day build, the build folder and a FAISS replica's memory, and the memory
arithmetic of Milvus's index types (HNSW, IVF_PQ, DiskANN) from their documented layouts.
"""

from __future__ import annotations

import gc
import math
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eval.scale import CORPUS_SEED, QUERY_SEED, measure_lexical, measure_vectors, synthetic_texts, synthetic_vectors
from eval.tables import table as markdown_table, write_report
from index.ann import EXACT, IVF

DAY_S = 86_400
PROJECTED = (10_000_000, 100_000_000)
K = 10
NODE_GB = 64  # RAM of one Milvus query node the choice of index type assumes
HEADROOM = 0.7  # share of a node's RAM an index may take (segments, growing data, queries need the rest)
# Milvus index layouts (knowhere), bytes per vector of dimension d:
HNSW_M = 16  # Milvus's usual M: level-0 keeps 2·M links of 4 bytes
PQ_BYTES_PER_DIM = 1 / 8  # IVF_PQ with m = d/8 sub-quantizers of 8 bits
DISKANN_PQ_RATIO = 0.125  # DiskANN keeps PQ codes of pq_code_budget_gb_ratio (default 0.125) of the raw vectors in RAM
DISKANN_DEGREE = 56  # max_degree default: graph links of 4 bytes, on SSD beside the raw vectors


# -- measuring -----------------------------------------------------------------------------------


def rss_bytes() -> int:
    """Resident memory of this process and its children (Milvus Lite may run its server as one)."""
    total = 0
    for pid in [Path("/proc/self").resolve().name, *_children()]:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def _children() -> list[str]:
    found: list[str] = []
    for task in Path("/proc/self/task").glob("*"):
        try:
            found += (task / "children").read_text().split()
        except OSError:
            pass
    return found


def measure_embedding(encode: Callable[[list[str]], np.ndarray], passages: Sequence[str], sentences: Sequence[str],
                      sentences_per_passage: float, rounds: int = 3) -> dict[str, Any]:
    """``encode`` runs on one core (the caller sets torch to one thread). The median of ``rounds``
    timings of each side; a build's cost per passage is its passage plus ``sentences_per_passage``
    sentences encoded on their own."""
    encode(list(passages[:8]))  # the first forward passes are slower
    passage_s = statistics.median(_seconds(lambda: encode(list(passages))) for _ in range(rounds))
    sentence_s = statistics.median(_seconds(lambda: encode(list(sentences))) for _ in range(rounds))
    per_passage = passage_s / len(passages)
    per_sentence = sentence_s / len(sentences)
    return {
        "passages": len(passages),
        "sentences": len(sentences),
        "passage_s_per_1k": round(1000 * per_passage, 3),
        "sentence_s_per_1k": round(1000 * per_sentence, 3),
        "sentences_per_passage": round(sentences_per_passage, 3),
        "s_per_1k_passages_per_core": round(1000 * (per_passage + sentences_per_passage * per_sentence), 3),
    }


def _seconds(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


LOADED_CHILD = """
import gc, json, sys
from eval.capacity import rss_bytes
from index import Embedder, Retriever
from index.store import read_index
embedder = Embedder(sys.argv[2]); embedder.encode(["warm-up"]); gc.collect()
before = rss_bytes()
retriever = Retriever(embedder, read_index(__import__("pathlib").Path(sys.argv[1]))); gc.collect()
print(json.dumps({"model_bytes": before, "loaded_bytes": rss_bytes() - before, "passages": len(retriever.passages)}))
"""


def measure_loaded(index_dir: Path, model: str) -> dict[str, int]:
    """RSS of a fresh process holding the model, and what loading the build (as a server does) adds to it."""
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", LOADED_CHILD, str(index_dir), model], capture_output=True, text=True, cwd=root, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"loading the build in a child failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_build(build: Path, passages: int, loaded: dict[str, int]) -> dict[str, Any]:
    """Bytes per passage of each top-level part of a build folder, and of the whole; ``loaded`` from :func:`measure_loaded`."""
    parts: dict[str, int] = {}
    for child in sorted(build.iterdir()):
        files = [child] if child.is_file() else [p for p in child.rglob("*") if p.is_file()]
        parts[child.name] = sum(p.stat().st_size for p in files)
    return {
        "passages": passages,
        "bytes_per_passage": {name: round(size / passages, 1) for name, size in parts.items()},
        "folder_bytes_per_passage": round(sum(parts.values()) / passages, 1),
        "loaded_bytes_per_passage": round(loaded["loaded_bytes"] / passages, 1),
        "model_process_mb": round(loaded["model_bytes"] / 2**20),
    }


def measure_faiss(anchors: np.ndarray, n: int, queries: int, folder: Path) -> list[dict[str, Any]]:
    """Exact and IVF at ``n`` vectors (eval.scale.measure_vectors: bytes, p50, recall@10)."""
    rows = []
    for kind in (EXACT, IVF):
        here = folder / f"faiss-{kind}-{n}"
        here.mkdir(parents=True, exist_ok=True)
        rows.append(measure_vectors(anchors, n, queries, exact_up_to=n, kind=kind, folder=here))
        shutil.rmtree(here, ignore_errors=True)
    return rows


def measure_milvus(anchors: np.ndarray, sentences: Sequence[str], questions: Sequence[str], n: int, queries: int, folder: Path,
                   index_type: str = "HNSW") -> dict[str, Any]:
    """One Milvus Lite collection of ``n`` passages as the service would store them; its size on disk and search p50s.

    Standalone on purpose: the service's own Milvus store lives elsewhere; this measures what
    Milvus costs per passage with the same fields.
    """
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    dim = anchors.shape[1]
    vectors = synthetic_vectors(anchors, n, CORPUS_SEED)
    asked = synthetic_vectors(anchors, queries, QUERY_SEED)
    texts = synthetic_texts(sentences, n)
    path = folder / f"milvus-{n}.db"
    shutil.rmtree(path, ignore_errors=True)
    before = rss_bytes()
    client = MilvusClient(str(path))
    try:
        schema = client.create_schema(auto_id=False)
        schema.add_field("row", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        schema.add_field("doc_id", DataType.VARCHAR, max_length=256)
        schema.add_field("source", DataType.VARCHAR, max_length=1024)
        schema.add_field("title", DataType.VARCHAR, max_length=1024)
        schema.add_field("heading", DataType.VARCHAR, max_length=1024)
        schema.add_field("start", DataType.INT64)
        schema.add_field("end", DataType.INT64)
        schema.add_field("tokens", DataType.INT64)
        schema.add_field("text", DataType.VARCHAR, max_length=65_535, enable_analyzer=True)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["text"], output_field_names=["sparse"]))
        params = client.prepare_index_params()
        params.add_index(field_name="vector", index_type=index_type, metric_type="IP",
                         params={"M": HNSW_M, "efConstruction": 64} if index_type == "HNSW" else {})
        params.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        client.create_collection("capacity", schema=schema, index_params=params)
        started = time.perf_counter()
        for at in range(0, n, 5000):
            client.insert("capacity", [
                {"row": i, "vector": vectors[i].tolist(), "doc_id": f"doc-{i // 8:07d}", "source": f"doc-{i // 8:07d}.txt",
                 "title": f"Document {i // 8}", "heading": "", "start": 0, "end": len(texts[i]), "tokens": len(texts[i]) // 4, "text": texts[i]}
                for i in range(at, min(n, at + 5000))
            ])
        client.flush("capacity")
        insert_s = time.perf_counter() - started
        indexed_s = _indexed(client, ("vector", "sparse"), timeout_s=3600) - started  # searched and sized as built, not while building
        client.load_collection("capacity")
        gc.collect()
        loaded = rss_bytes() - before
        dense = _settled(lambda i: client.search("capacity", data=[asked[i].tolist()], anns_field="vector", limit=K, output_fields=["row"],
                                                 search_params={"metric_type": "IP", "params": {"ef": 64} if index_type == "HNSW" else {}}), queries)
        lexical = _timed(lambda i: client.search("capacity", data=[questions[i % len(questions)]], anns_field="sparse", limit=K,
                                                 output_fields=["row"], search_params={"metric_type": "BM25"}), queries)
        index = client.describe_index("capacity", "vector")
        size = _size(path)  # flushed, indexed, and settled
    finally:
        client.close()
    deadline = time.monotonic() + 10
    while path.exists() and time.monotonic() < deadline:  # the Lite server may still be writing as it stops
        shutil.rmtree(path, ignore_errors=True)
        time.sleep(0.2)
    return {
        "passages": n,
        "index": index.get("index_type", index_type),
        "insert_s": round(insert_s, 2),
        "indexed_s": round(indexed_s, 2),
        "disk_bytes_per_passage": round(size / n, 1),
        "loaded_bytes_per_passage": round(max(loaded, 0) / n, 1),
        "dense_p50_ms": round(statistics.median(dense), 3),
        "bm25_p50_ms": round(statistics.median(lexical), 3),
    }


def _indexed(client: Any, fields: Sequence[str], timeout_s: float) -> float:
    """Wait until Milvus has indexed every row of ``fields`` (it builds in the background after a flush); when it had."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        infos = [client.describe_index("capacity", field) for field in fields]
        if all(i.get("state") == "Finished" and not i.get("pending_index_rows") and i.get("indexed_rows") == i.get("total_rows") for i in infos):
            break
        time.sleep(0.25)
    return time.perf_counter()


def _settled(search: Callable[[int], object], count: int, rounds: int = 6) -> list[float]:
    """Timings once they stop falling: Milvus Lite reports its index finished while it still
    builds and merges segment indexes in the background, and a search meanwhile is a scan."""
    previous = None
    for _ in range(rounds):
        ms = _timed(search, count)
        median = statistics.median(ms)
        if previous is not None and median > 0.9 * previous:
            break
        previous = median
    return ms


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def _timed(search: Callable[[int], object], count: int) -> list[float]:
    for i in range(min(5, count)):
        search(i)
    out = []
    for i in range(count):
        started = time.perf_counter()
        search(i)
        out.append((time.perf_counter() - started) * 1000)
    return out


def milvus_available() -> str | None:
    """None if Milvus Lite can be measured here, else why not."""
    try:
        import milvus_lite  # noqa: F401
        import pymilvus  # noqa: F401
    except ImportError as exc:
        return f"not measured: {exc.name} is not installed (pip install pymilvus milvus-lite)"
    return None


def run_capacity(embedding: dict[str, Any], build: dict[str, Any], anchors: np.ndarray, sentences: Sequence[str],
                 questions: Sequence[str], sizes: Sequence[int], queries: int, folder: Path, milvus: bool = True,
                 progress: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """Everything measured beside the embedding and build (which need the model: the caller runs them)."""
    folder.mkdir(parents=True, exist_ok=True)
    faiss_rows, bm25_rows, milvus_rows = [], [], []
    skipped = None if milvus else "not measured: turned off"
    skipped = skipped or milvus_available()
    for n in sizes:
        faiss_rows += measure_faiss(anchors, n, queries, folder)
        progress(f"{n} passages: FAISS " + ", ".join(f"{r['index']} p50 {r['search_p50_ms']} ms" for r in faiss_rows[-2:]))
        bm25_rows.append(measure_lexical(sentences, questions, n, queries))
        progress(f"{n} passages: BM25 p50 {bm25_rows[-1]['search_p50_ms']} ms")
        if skipped is None:
            milvus_rows.append(measure_milvus(anchors, sentences, questions, n, queries, folder))
            progress(f"{n} passages: Milvus Lite dense p50 {milvus_rows[-1]['dense_p50_ms']} ms, BM25 p50 {milvus_rows[-1]['bm25_p50_ms']} ms")
    measured = {"dimension": int(anchors.shape[1]), "embedding": embedding, "build": build, "faiss": faiss_rows, "bm25": bm25_rows,
                "milvus": milvus_rows, "milvus_skipped": skipped}
    return {"measured": measured, "projection": project(measured)}


# -- projecting ----------------------------------------------------------------------------------


def milvus_index_bytes(dim: int) -> dict[str, dict[str, float]]:
    """Bytes per vector each Milvus index type keeps in RAM and on local SSD (documented layouts)."""
    raw = 4 * dim
    return {
        "HNSW": {"ram": raw + 2 * HNSW_M * 4, "ssd": 0},
        "IVF_PQ": {"ram": dim * PQ_BYTES_PER_DIM + 8, "ssd": 0},  # codes + an 8-byte id per vector
        "DiskANN": {"ram": DISKANN_PQ_RATIO * raw, "ssd": raw + 4 * DISKANN_DEGREE},
    }


def milvus_choice(n: int, dim: int, node_gb: float = NODE_GB) -> tuple[str, str]:
    """The index type for ``n`` vectors, and why: HNSW while its graph and vectors fit one query
    node's headroom (best recall at the lowest latency); past that DiskANN (recall close to HNSW,
    RAM only for PQ codes, the rest on NVMe); IVF_PQ where there is no local NVMe (least RAM,
    lower recall unless refined)."""
    sizes = milvus_index_bytes(dim)
    hnsw_gb = n * sizes["HNSW"]["ram"] / 1e9
    fit = node_gb * HEADROOM
    if hnsw_gb <= fit:
        return "HNSW", f"{hnsw_gb:.0f} GB of vectors and graph fit one query node of {node_gb:.0f} GB ({HEADROOM:.0%} of it)"
    disk = n * sizes["DiskANN"]["ram"] / 1e9
    return "DiskANN", (f"HNSW would need {hnsw_gb:.0f} GB of RAM ({math.ceil(hnsw_gb / fit)} nodes of {node_gb:.0f} GB); DiskANN keeps "
                       f"{disk:.0f} GB of PQ codes in RAM and {n * sizes['DiskANN']['ssd'] / 1e9:.0f} GB on NVMe "
                       f"(IVF_PQ: {n * sizes['IVF_PQ']['ram'] / 1e9:.1f} GB, if there is no NVMe and lower recall will do)")


def replica_bytes_per_passage(build: dict[str, Any]) -> float:
    """What a FAISS replica holds per passage: the RSS a loaded build added, but never less than the
    build's files other than the memory-mapped texts, all of which a server reads into memory. (The
    RSS difference can come out lower: memory the model's warm-up freed is reused by the load.)"""
    parts = build["bytes_per_passage"]
    held = sum(size for name, size in parts.items() if name not in ("texts", "manifest.json"))
    return max(build["loaded_bytes_per_passage"], held)


def project(measured: dict[str, Any], sizes: Sequence[int] = PROJECTED, day_s: int = DAY_S, node_gb: float = NODE_GB) -> list[dict[str, Any]]:
    """The plan at each size: a pure function of the measured costs."""
    dim = measured["dimension"]
    per_1k = measured["embedding"]["s_per_1k_passages_per_core"]
    build = measured["build"]
    largest_ivf = max((r for r in measured["faiss"] if r["index"] == IVF), key=lambda r: r["passages"], default=None)
    milvus = max(measured["milvus"], key=lambda r: r["passages"], default=None)
    layouts = milvus_index_bytes(dim)
    rows = []
    for n in sizes:
        core_s = n / 1000 * per_1k
        cores = math.ceil(core_s / day_s)
        choice, why = milvus_choice(n, dim, node_gb)
        rows.append({
            "passages": n,
            "embedding_core_hours": round(core_s / 3600, 1),
            "cores_for_one_day": cores,
            "workers_8_cores_for_one_day": math.ceil(cores / 8),
            "build_folder_gb": round(n * build["folder_bytes_per_passage"] / 1e9, 1),
            "faiss_ivf_gb": round(n * largest_ivf["bytes_per_passage"] / 1e9, 1) if largest_ivf else None,
            "faiss_replica_memory_gb": round(n * replica_bytes_per_passage(build) / 1e9, 1),
            "milvus_disk_gb": round(n * milvus["disk_bytes_per_passage"] / 1e9, 1) if milvus else None,
            "milvus_ram_gb": {name: round(n * b["ram"] / 1e9, 1) for name, b in layouts.items()},
            "milvus_ssd_gb": {name: round(n * b["ssd"] / 1e9, 1) for name, b in layouts.items()},
            "milvus_index": choice,
            "milvus_why": why,
        })
    return rows


# -- the page ------------------------------------------------------------------------------------


def _gb(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f}"


def markdown(report: dict[str, Any]) -> str:
    m = report["measured"]
    emb, build = m["embedding"], m["build"]
    cost_rows = [
        ["embedding, passages + their sentences (1 core)", f"{emb['s_per_1k_passages_per_core']} s per 1k passages",
         f"passages {emb['passage_s_per_1k']} s/1k, sentences {emb['sentence_s_per_1k']} s/1k × {emb['sentences_per_passage']} per passage"],
        ["build folder, whole", f"{build['folder_bytes_per_passage']:,.0f} B per passage",
         ", ".join(f"{k} {v:,.0f}" for k, v in build["bytes_per_passage"].items())],
        ["a loaded build in a server", f"{replica_bytes_per_passage(build):,.0f} B per passage",
         f"RSS added by loading {build['passages']} passages: {build['loaded_bytes_per_passage']:,.0f} B per passage, beside the model's "
         f"process of {build['model_process_mb']} MB; at least the files it reads into memory (all but texts and manifest)"],
    ]
    for r in m["faiss"]:
        cost_rows.append([f"FAISS {r['index']}, {r['passages']:,} vectors", f"{r['bytes_per_passage']:,.0f} B per passage",
                          f"search p50 {r['search_p50_ms']} ms, recall@10 {r['recall_at_10']}"])
    for r in m["bm25"]:
        cost_rows.append([f"BM25 (bm25s), {r['passages']:,} passages", "–", f"search p50 {r['search_p50_ms']} ms"])
    for r in m["milvus"]:
        cost_rows.append([f"Milvus Lite ({r['index']} + BM25 function), {r['passages']:,} passages", f"{r['disk_bytes_per_passage']:,.0f} B per passage on disk",
                          f"dense p50 {r['dense_p50_ms']} ms, BM25 p50 {r['bm25_p50_ms']} ms, RSS +{r['loaded_bytes_per_passage']:,.0f} B per passage, "
                          f"insert {r['insert_s']} s, indexed after {r.get('indexed_s', '?')} s"])
    if m["milvus_skipped"]:
        cost_rows.append(["Milvus Lite", "–", m["milvus_skipped"]])
    plan = report["projection"]
    head = ["", *[f"{r['passages']:,} passages" for r in plan]]
    plan_rows = [
        ["embedding, core-hours", *[f"{r['embedding_core_hours']:,}" for r in plan]],
        ["cores for a one-day build", *[f"{r['cores_for_one_day']} ({r['workers_8_cores_for_one_day']} worker{'' if r['workers_8_cores_for_one_day'] == 1 else 's'} of 8 cores)" for r in plan]],
        ["FAISS build folder, GB", *[_gb(r["build_folder_gb"]) for r in plan]],
        ["FAISS IVF vectors, GB", *[_gb(r["faiss_ivf_gb"]) for r in plan]],
        ["memory per FAISS replica, GB (+ the model)", *[_gb(r["faiss_replica_memory_gb"]) for r in plan]],
        ["Milvus collection on disk, GB", *[_gb(r["milvus_disk_gb"]) for r in plan]],
        *[[f"Milvus {name}: RAM / SSD, GB", *[f"{_gb(r['milvus_ram_gb'][name])} / {_gb(r['milvus_ssd_gb'][name])}" for r in plan]]
          for name in ("HNSW", "IVF_PQ", "DiskANN")],
        ["Milvus index type", *[f"**{r['milvus_index']}**: {r['milvus_why']}" for r in plan]],
    ]
    return "\n".join([
        "## Measured costs",
        "",
        markdown_table(["what", "cost", "detail"], cost_rows),
        "",
        "## Projection",
        "",
        markdown_table(head, plan_rows),
        "",
    ])


def write(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    return write_report(out, "capacity", report, markdown(report))

"""`cited bench store`: the same build searched through each store, side by side in one run.

Per store: milliseconds per question of the whole retrieval (Retriever.search: encoding, both
candidate lists, sentence blending, fusion, collapse, highlights, the answer) and of the part a
store changes (the same with the question vector already made), interleaved question by question
so machine noise hits every store alike; and bytes per passage on disk of what each store adds
to the build folder every store shares.
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eval.tables import table
from index import Retriever, SearchOptions
from index.components import LEXICAL
from index.store import VECTORS

FAISS_FILES = (VECTORS, LEXICAL)  # what the FAISS store reads beside the shared build files


def folder_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def store_bytes(retriever: Retriever) -> dict[str, int | None]:
    """Bytes on disk of what this retriever's store searches, and of the build folder every store reads."""
    build = retriever.stored.path
    shared = folder_bytes(build) - sum(folder_bytes(build / name) for name in FAISS_FILES)
    if retriever.store.name == "faiss":
        own: int | None = sum(folder_bytes(build / name) for name in FAISS_FILES)
    else:
        own = _milvus_lite_bytes(retriever)
    return {"store_bytes": own, "shared_bytes": shared}


def _milvus_lite_bytes(retriever: Retriever) -> int | None:
    """The collection's files in a Milvus Lite data folder; None for a server (its disk is not ours to read)."""
    uri = retriever.store_config.uri(retriever.stored.path.parent)
    data = Path(uri)
    if "://" in uri or not data.exists():
        return None
    collection = data / "collections" / retriever.store.collection  # Milvus Lite 3's layout
    return folder_bytes(collection if collection.is_dir() else data)


def run_store_bench(retrievers: Mapping[str, Retriever], questions: Sequence[str], rounds: int = 3, top_k: int = 5) -> dict[str, Any]:
    if not questions or not retrievers:
        raise ValueError("the store benchmark needs questions and at least one store")
    options = SearchOptions(top_k=top_k)
    first = next(iter(retrievers.values()))
    vectors = first.embedder.encode(list(questions))
    for r in retrievers.values():  # warm-up: first calls pay one-off costs (connections, caches)
        r.search(questions[0], options)
    whole: dict[str, list[float]] = {name: [] for name in retrievers}
    ranking: dict[str, list[float]] = {name: [] for name in retrievers}
    for _ in range(rounds):
        for i, question in enumerate(questions):
            for name, r in retrievers.items():
                started = time.perf_counter()
                r.search(question, options)
                whole[name].append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                r.search_encoded([question], vectors[i : i + 1], [options])
                ranking[name].append((time.perf_counter() - started) * 1000)
    rows = {}
    for name, r in retrievers.items():
        sizes = store_bytes(r)
        n = len(r.passages)
        rows[name] = {
            "search_p50_ms": _ms(whole[name], 50), "search_p95_ms": _ms(whole[name], 95),
            "encoded_p50_ms": _ms(ranking[name], 50), "encoded_p95_ms": _ms(ranking[name], 95),
            "store_bytes_per_passage": None if sizes["store_bytes"] is None else round(sizes["store_bytes"] / n),
            "shared_bytes_per_passage": round(sizes["shared_bytes"] / n),
            "uri": r.store_config.uri(r.stored.path.parent) if name != "faiss" else str(r.stored.path),
        }
    base = rows[next(iter(rows))]["encoded_p50_ms"]
    for row in rows.values():
        row["encoded_ratio"] = round(row["encoded_p50_ms"] / base, 2) if base else None
    return {
        "questions": len(questions), "rounds": rounds, "top_k": top_k, "passages": len(first.passages),
        "build": first.stored.path.name,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "python": platform.python_version(),
        "stores": rows,
    }


def _ms(values: Sequence[float], percentile: int) -> float:
    if len(values) == 1:
        return round(values[0], 2)
    return round(statistics.median(values) if percentile == 50 else statistics.quantiles(values, n=100)[percentile - 1], 2)


def markdown(report: dict[str, Any]) -> str:
    rows = [
        [name, f"{r['search_p50_ms']:.2f}", f"{r['search_p95_ms']:.2f}", f"{r['encoded_p50_ms']:.2f}", f"{r['encoded_p95_ms']:.2f}",
         f"{r['encoded_ratio']:.2f}", "n/a (server)" if r["store_bytes_per_passage"] is None else f"{r['store_bytes_per_passage']:,}",
         f"{r['shared_bytes_per_passage']:,}"]
        for name, r in report["stores"].items()
    ]
    return (
        f"{report['questions']} seed questions × {report['rounds']} rounds, interleaved, over {report['passages']} passages "
        f"(build {report['build']}), top_k {report['top_k']}.\n\n"
        + table(["store", "search p50 ms", "search p95 ms", "vector given p50 ms", "vector given p95 ms", "× first",
                 "store bytes/passage", "shared build bytes/passage"], rows)
        + "\n\nsearch: the whole retrieval, the question encoded; vector given: the same with its vector made beforehand (what a store "
        "changes). store bytes: FAISS's faiss.index and lexical/ files, or the Milvus Lite collection's data; the build folder's "
        "other files (passages, sentences, texts) are read by every store.\n"
    )

"""`cited eval bench`: query latency of every row of the ladder, measured side by side in one run."""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Sequence
from typing import Any

import torch

from threadpoolctl import threadpool_limits

from eval.ladder import ablation_rows
from eval.tables import table as markdown_table
from index import Retriever, SearchOptions

BLAS_THREADS = 1


def run_bench(retriever: Retriever, questions: Sequence[str], rounds: int = 3, top_k: int = 5) -> dict[str, Any]:
    """Median and p95 ms per query of every row, interleaved round by round so machine noise hits all rows alike.

    BLAS runs on one thread: the worker threads OpenBLAS leaves spinning after MMR's matrix
    product would otherwise take the cores from the next row's model call (1.5x slower).
    """
    with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):
        return _run(retriever, questions, rounds, top_k)


def _run(retriever: Retriever, questions: Sequence[str], rounds: int, top_k: int) -> dict[str, Any]:
    # the ablation's ladder, each stage on in turn, ending with the retriever's own ranking
    configured = {row.name: retriever.with_ranking(row.ranking) for row in ablation_rows(retriever.ranking)}
    for r in configured.values():  # warm-up: first calls pay one-off allocation costs
        r.search(questions[0], SearchOptions(top_k=top_k))
    samples: dict[str, list[float]] = {name: [] for name in configured}
    for _ in range(rounds):
        for question in questions:
            for name, r in configured.items():
                started = time.perf_counter()
                r.search(question, SearchOptions(top_k=top_k))
                samples[name].append((time.perf_counter() - started) * 1000)
    base = statistics.median(samples["dense"])
    rows = {
        name: {
            "median_ms": round(statistics.median(values), 2),
            "p95_ms": round(statistics.quantiles(values, n=20)[18], 2),
            "ratio_to_dense": round(statistics.median(values) / base, 2),
        }
        for name, values in samples.items()
    }
    return {
        "queries": len(questions) * rounds,
        "passages": len(retriever.passages),
        "torch_threads": torch.get_num_threads(),
        "blas_threads": BLAS_THREADS,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
        "results": rows,
    }


def table(report: dict[str, Any]) -> str:
    rows = [
        [name, f"{r['median_ms']:.2f}", f"{r['p95_ms']:.2f}", f"{r['ratio_to_dense']:.2f}"]
        for name, r in report["results"].items()
    ]
    return (
        markdown_table(["configuration", "median ms", "p95 ms", "× dense"], rows)
        + f"\n\n{report['queries']} queries per configuration over {report['passages']} passages, "
        f"torch threads {report['torch_threads']}, BLAS threads {report['blas_threads']}"
    )

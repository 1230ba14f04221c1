"""Query latency of each rung of the ablation's ladder (eval.ablation), measured side by side in one run.

Each configuration answers the same questions in the same process on the same loaded index,
interleaved round by round so machine noise hits all of them alike. Reported: median and p95
milliseconds per query and the ratio of medians to plain dense retrieval.
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Sequence
from typing import Any

import torch

from threadpoolctl import threadpool_limits

from eval.ablation import ablation_rows
from index import Retriever, SearchOptions

BLAS_THREADS = 1


def run_bench(retriever: Retriever, questions: Sequence[str], rounds: int = 3, top_k: int = 5) -> dict[str, Any]:
    """Median and p95 ms per query of every rung, on the same questions, interleaved.

    BLAS runs on one thread: otherwise the worker threads OpenBLAS leaves spinning after MMR's
    matrix product take the two cores from the next configuration's model call, which then
    measures 1.5x slower than alone (seen here: every row after diversity, 16 ms against 10).
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
    width = max(len("configuration"), *(len(name) for name in report["results"]))
    lines = [f"{'configuration':<{width}} {'median ms':>10} {'p95 ms':>8} {'× dense':>8}"]
    for name, row in report["results"].items():
        lines.append(f"{name:<{width}} {row['median_ms']:>10.2f} {row['p95_ms']:>8.2f} {row['ratio_to_dense']:>8.2f}")
    lines.append(f"{report['queries']} queries per configuration over {report['passages']} passages, torch threads {report['torch_threads']}, BLAS threads {report.get('blas_threads', '?')}")
    return "\n".join(lines)

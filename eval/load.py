"""The load benchmark: concurrent HTTP clients against a real server, beside the bare model's own speed."""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from eval.defaults import LEVELS
from eval.tables import table as markdown_table
from eval.tables import write_report
from index import Embedder

CEILING_BATCH = 16  # the batched-encode ceiling is measured at this batch size
PROBE_PAUSE_S = 0.02  # between two /livez probes: about 40 a second, a few per cent of one core on the server


@dataclass(frozen=True)
class Level:
    """One concurrency level: what the clients saw, and the server's memory around it."""

    clients: int
    requests: int
    ok: int
    refused: int  # deliberate 503s (queue full or timed out)
    errors: dict[str, int]  # any other outcome, by status code or exception name
    seconds: float
    qps: float  # successful answers per second of the level's wall time
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    rss_mb_start: float | None
    rss_mb_end: float | None
    client_cpu_ms: float  # CPU time of this (client) process per request: on one machine it competes with the server
    server_cpu_ms: float | None  # CPU time of the server process per request
    lane: dict[str, Any] | None  # the server's /health lane counters over this level (differences)
    livez_p50_ms: float | None = None  # GET /livez from one probe beside the clients: the event loop's own responsiveness
    livez_p99_ms: float | None = None
    livez_failed: int = 0


def percentile(values: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(values, q, method="linear")), 2) if values else None


async def _drive(url: str, questions: Sequence[str], clients: int, requests: int, top_k: int, timeout: float) -> tuple[list[float], Counter, float]:
    """``clients`` connections, each asking the next question as soon as its last answer is in."""
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    next_index = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as client:

        async def worker() -> None:
            nonlocal next_index
            while next_index < requests:
                i, next_index = next_index, next_index + 1
                body = {"question": questions[i % len(questions)], "top_k": top_k}
                started = time.perf_counter()
                try:
                    response = await client.post("/query", json=body)
                    outcome = str(response.status_code)
                except httpx.HTTPError as exc:
                    outcome = exc.__class__.__name__
                if outcome == "200":
                    latencies.append((time.perf_counter() - started) * 1000)
                outcomes[outcome] += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return latencies, outcomes, time.perf_counter() - started


class LivezProbe:
    """One connection asking GET /livez in a loop, in its own thread, while the clients run.

    /livez never waits on the model, so its latency under load is the HTTP server's and event
    loop's own (plus this process's scheduling: the load generator shares the machine).
    """

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url, self.timeout = url, timeout
        self.latencies: list[float] = []
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="livez-probe", daemon=True)

    def __enter__(self) -> LivezProbe:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(self.timeout + 5)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=self.timeout) as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                try:
                    ok = client.get("/livez").status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    self.latencies.append((time.perf_counter() - started) * 1000)
                else:
                    self.failed += 1
                self._stop.wait(PROBE_PAUSE_S)


def _lane(url: str) -> dict[str, Any] | None:
    try:
        return httpx.get(url + "/health", timeout=10).json().get("lane")
    except (httpx.HTTPError, ValueError):
        return None


def _lane_delta(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any] | None:
    if not before or not after:
        return None
    keys = ("batches", "questions", "encoded", "rejected", "timed_out", "skipped")
    delta = {k: after[k] - before[k] for k in keys}
    delta["mean_batch"] = round(delta["questions"] / delta["batches"], 2) if delta["batches"] else None
    delta["largest_batch_so_far"] = after["largest_batch"]
    return delta


def run_level(
    url: str,
    questions: Sequence[str],
    clients: int,
    requests: int,
    top_k: int = 5,
    timeout: float = 60.0,
    rss_mb: Callable[[], float | None] = lambda: None,
    cpu_seconds: Callable[[], float | None] = lambda: None,
) -> Level:
    before, rss_start, server_cpu, client_cpu = _lane(url), rss_mb(), cpu_seconds(), _own_cpu()
    with LivezProbe(url) as probe:
        latencies, outcomes, seconds = asyncio.run(_drive(url, questions, clients, requests, top_k, timeout))
    client_cpu, server_after = _own_cpu() - client_cpu, cpu_seconds()
    ok, refused = outcomes.pop("200", 0), outcomes.pop("503", 0)
    return Level(
        clients=clients,
        requests=requests,
        ok=ok,
        refused=refused,
        errors=dict(outcomes),
        seconds=round(seconds, 3),
        qps=round(ok / seconds, 1) if seconds else 0.0,
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
        p99_ms=percentile(latencies, 99),
        rss_mb_start=rss_start,
        rss_mb_end=rss_mb(),
        client_cpu_ms=round(1000 * client_cpu / requests, 2),
        server_cpu_ms=round(1000 * (server_after - server_cpu) / requests, 2) if server_cpu is not None and server_after is not None else None,
        lane=_lane_delta(before, _lane(url)),
        livez_p50_ms=percentile(probe.latencies, 50),
        livez_p99_ms=percentile(probe.latencies, 99),
        livez_failed=probe.failed,
    )


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def bare_encode(embedder: Embedder, questions: Sequence[str], rounds: int = 3, batch: int = CEILING_BATCH) -> dict[str, float]:
    """The model alone, in this process: one question per call (p50 ms), and ``batch`` per call (q/s).

    The ceiling is what no server can beat on this machine: every answer needs one encode.
    """
    embedder.encode(list(questions[:batch]), batch_size=batch)  # warm-up
    single = []
    for _ in range(rounds):
        for q in questions:
            started = time.perf_counter()
            embedder.encode([q])
            single.append((time.perf_counter() - started) * 1000)
    rates = []
    for _ in range(rounds):
        for i in range(0, len(questions) - batch + 1, batch):
            started = time.perf_counter()
            embedder.encode(list(questions[i : i + batch]), batch_size=batch)
            rates.append(batch / (time.perf_counter() - started))
    return {
        "single_p50_ms": round(statistics.median(single), 2),
        f"batch{batch}_qps": round(statistics.median(rates), 1),
    }


def run_load(
    url: str,
    questions: Sequence[str],
    embedder: Embedder,
    levels: Sequence[int] = LEVELS,
    requests: int = 200,
    top_k: int = 5,
    rss_mb: Callable[[], float | None] = lambda: None,
    cpu_seconds: Callable[[], float | None] = lambda: None,
    server: dict[str, Any] | None = None,
    progress: Callable[[Level], None] | None = None,
) -> dict[str, Any]:
    """Bare encode first (the server idles meanwhile), then each level in turn, one run."""
    if not questions:
        raise ValueError("no questions to ask")
    encode = bare_encode(embedder, questions)
    rows = []
    for clients in levels:
        level = run_level(url, questions, clients, max(requests, clients), top_k, rss_mb=rss_mb, cpu_seconds=cpu_seconds)
        rows.append(level)
        if progress is not None:
            progress(level)
    ceiling = encode[f"batch{CEILING_BATCH}_qps"]
    by_clients = {row.clients: row for row in rows}
    one, sixteen = by_clients.get(1), by_clients.get(16)
    return {
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": _cpus(), "python": platform.python_version()},
        "url": url,
        "server": server or {},
        "questions": len(questions),
        "top_k": top_k,
        "bare_encode": encode,
        "levels": [asdict(row) for row in rows],
        "ratios": {
            "one_client_p50_over_bare_encode_p50": round(one.p50_ms / encode["single_p50_ms"], 2) if one and one.p50_ms else None,
            "sixteen_clients_qps_over_ceiling": round(sixteen.qps / ceiling, 2) if sixteen and ceiling else None,
        },
    }


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _cell(value: Any) -> str:
    return "–" if value is None else str(value)


def _livez_p99(level: dict[str, Any]) -> str:
    failed = level.get("livez_failed", 0)
    return _cell(level.get("livez_p99_ms")) + (f" ({failed} failed)" if failed else "")


def markdown(report: dict[str, Any]) -> str:
    encode, ratios = report["bare_encode"], report["ratios"]
    headers = ["clients", "requests", "ok", "503", "other errors", "q/s", "p50 ms", "p95 ms", "p99 ms", "mean batch",
               "server RSS MB (start → end)", "CPU ms/request: server + client", "/livez p50 ms", "/livez p99 ms"]
    rows = []
    for level in report["levels"]:
        lane = level["lane"] or {}
        rss = f"{_cell(level['rss_mb_start'])} → {_cell(level['rss_mb_end'])}"
        errors = ", ".join(f"{k}: {v}" for k, v in level["errors"].items()) or "0"
        rows.append([level["clients"], level["requests"], level["ok"], level["refused"], errors, level["qps"],
                     level["p50_ms"], level["p95_ms"], level["p99_ms"], lane.get("mean_batch"), rss,
                     f"{_cell(level['server_cpu_ms'])} + {level['client_cpu_ms']}",
                     _cell(level.get("livez_p50_ms")), _livez_p99(level)])
    lines = [markdown_table(headers, [[_cell(c) for c in row] for row in rows], align="r" * len(headers))]
    server = ", ".join(f"{k}={v}" for k, v in report["server"].items())
    return "\n".join([
        "# Load benchmark",
        "",
        f"{report['created_at']}, {report['machine']['cpus']} CPUs, {report['questions']} distinct questions, top_k "
        f"{report['top_k']}, {report['url']}" + (f"; server: {server}" if server else "") + ".",
        "",
        *lines,
        "",
        f"Bare model in the same run: one question per call p50 {encode['single_p50_ms']} ms; "
        f"{CEILING_BATCH} per call {encode[f'batch{CEILING_BATCH}_qps']} q/s (the ceiling).",
        f"One client p50 / bare encode p50: {_cell(ratios['one_client_p50_over_bare_encode_p50'])}×; "
        f"16 clients q/s / ceiling: {_cell(ratios['sixteen_clients_qps_over_ceiling'])}×.",
        "",
    ])


def write(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    return write_report(out, "load", report, markdown(report))

"""The swap benchmark: builds published while concurrent clients ask, counting failed requests and the delay to the switch."""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from eval.load import percentile
from eval.tables import table as markdown_table, write_report


def run_swap(url: str, questions: Sequence[str], publish: Callable[[int], float], clients: int = 16, rounds: int = 3,
             settle_s: float = 2.0, timeout_s: float = 30.0) -> dict[str, Any]:
    """``publish(n)`` publishes a new build and returns when CURRENT named it (``time.time()``).

    The switch is seen through /health (served from the event loop, beside the questions), and
    the delay runs from the publish to the first /health that reports the new build.
    """
    outcomes: Counter[str] = Counter()
    latencies: list[float] = []
    stop = threading.Event()

    def client(offset: int) -> None:
        with httpx.Client(base_url=url, timeout=timeout_s) as http:
            n = offset
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    status = str(http.post("/query", json={"question": questions[n % len(questions)]}).status_code)
                except httpx.HTTPError as exc:
                    status = exc.__class__.__name__
                outcomes[status] += 1
                if status == "200":
                    latencies.append((time.perf_counter() - started) * 1000)
                n += 1

    def live_build(http: httpx.Client) -> str:
        return http.get("/health").json()["index_build"]

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    delays: list[float] = []
    with httpx.Client(base_url=url, timeout=timeout_s) as http:
        try:
            time.sleep(settle_s)  # under load before the first publish
            for n in range(rounds):
                before = live_build(http)
                published = publish(n)
                deadline = time.monotonic() + timeout_s
                while live_build(http) == before:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"the server did not switch within {timeout_s} s of publish {n}")
                    time.sleep(0.01)
                delays.append(time.time() - published)
                time.sleep(settle_s)  # under load after the switch
        finally:
            stop.set()
            for t in threads:
                t.join(timeout_s)
    total = sum(outcomes.values())
    return {
        "clients": clients,
        "rounds": rounds,
        "requests": total,
        "ok": outcomes["200"],
        "failed": total - outcomes["200"],
        "outcomes": dict(outcomes),
        "switch_delay_s": {"median": round(statistics.median(delays), 3), "max": round(max(delays), 3), "each": [round(d, 3) for d in delays]},
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
    }


def markdown(report: dict[str, Any]) -> str:
    delay = report["switch_delay_s"]
    row = [report["clients"], report["rounds"], report["requests"], report["failed"], f"{delay['median']:.2f}", f"{delay['max']:.2f}",
           report["p50_ms"], report["p99_ms"]]
    return "\n".join([
        "# Swap benchmark",
        "",
        markdown_table(["clients", "publishes", "requests", "failed", "switch delay s (median)", "max", "p50 ms", "p99 ms"],
                       [[str(c) for c in row]]),
        "",
        f"Outcomes: {', '.join(f'{k}: {v}' for k, v in sorted(report['outcomes'].items()))}. The delay runs from the "
        "moment CURRENT names the new build to the first /health that reports it; the server polls every "
        f"{report.get('reload_interval_s', '?')} s.",
        "",
    ])


def write(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    return write_report(out, "swap", report, markdown(report))

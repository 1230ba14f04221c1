"""The rolling-update benchmark: clients ask several replicas in turn while a writer publishes new
builds; every request is counted, and each replica's switch is timed.

A replica has switched when its /health reports the new build; the benchmark also records the
first /query each replica answered from it (responses carry ``index_build``), so "every replica
ends on the new build" is seen by the clients themselves, not only by the probe.
"""

from __future__ import annotations

import itertools
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


def run_rolling(urls: Sequence[str], questions: Sequence[str], publish: Callable[[int], tuple[str, float]], clients: int = 4,
                rounds: int = 1, settle_s: float = 1.0, timeout_s: float = 60.0) -> dict[str, Any]:
    """``publish(n)`` publishes a new build and returns its name and when CURRENT named it (``time.time()``).

    Each client thread sends its requests round-robin over ``urls`` (client i starts at replica
    i), one at a time. A request fails unless it gets 200 with at least one result.
    """
    if not urls or not questions:
        raise ValueError("need at least one replica URL and one question")
    outcomes: Counter[str] = Counter()
    per_replica: dict[str, Counter[str]] = {url: Counter() for url in urls}
    builds_seen: dict[str, dict[str, float]] = {url: {} for url in urls}  # replica -> build -> first time a /query answered from it
    latencies: list[float] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(offset: int) -> None:
        https = {url: httpx.Client(base_url=url, timeout=timeout_s) for url in urls}
        order = list(urls)
        turn = itertools.cycle(order[offset % len(order):] + order[:offset % len(order)])
        try:
            for n in itertools.count(offset):
                if stop.is_set():
                    return
                url = next(turn)
                started = time.perf_counter()
                build = None
                try:
                    reply = https[url].post("/query", json={"question": questions[n % len(questions)], "top_k": 3})
                    status = str(reply.status_code)
                    if reply.status_code == 200:
                        body = reply.json()
                        build = body.get("index_build")
                        if not body.get("results"):
                            status = "200 without results"
                except (httpx.HTTPError, ValueError) as exc:
                    status = exc.__class__.__name__
                with lock:
                    outcomes[status] += 1
                    per_replica[url][status] += 1
                    if status == "200":
                        latencies.append((time.perf_counter() - started) * 1000)
                        builds_seen[url].setdefault(build, time.time())
        finally:
            for http in https.values():
                http.close()

    first_seen: dict[str, dict[str, float]] = {url: {} for url in urls}  # replica -> build -> first /health reporting it

    def probe(url: str) -> None:  # /health is answered on the event loop, beside the questions
        with httpx.Client(base_url=url, timeout=timeout_s) as http:
            while not stop.is_set():
                try:
                    build = http.get("/health").json()["index_build"]
                except (httpx.HTTPError, ValueError, KeyError):
                    build = None
                with lock:
                    first_seen[url].setdefault(build, time.time())
                time.sleep(0.01)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    threads += [threading.Thread(target=probe, args=(url,), daemon=True) for url in urls]
    for t in threads:
        t.start()
    publishes: list[dict[str, Any]] = []
    try:
        time.sleep(settle_s)  # under load before the first publish
        for n in range(rounds):
            build, published_at = publish(n)  # a writer process: replicas may switch before it has even exited
            deadline = time.monotonic() + timeout_s
            while missing := [url for url in urls if build not in first_seen[url]]:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"replicas {missing} did not switch to {build} within {timeout_s} s of publish {n}")
                time.sleep(0.01)
            publishes.append({"build": build, "switch_s": [round(first_seen[url][build] - published_at, 3) for url in urls]})
            time.sleep(settle_s)  # under load after every replica switched
    finally:
        stop.set()
        for t in threads:
            t.join(timeout_s)
    total = sum(outcomes.values())
    last = publishes[-1]["build"] if publishes else None
    switches = [s for p in publishes for s in p["switch_s"]]
    return {
        "replicas": len(urls),
        "clients": clients,
        "rounds": rounds,
        "requests": total,
        "ok": outcomes["200"],
        "failed": total - outcomes["200"],
        "outcomes": dict(outcomes),
        "per_replica": [{"url": url, "requests": sum(per_replica[url].values()), "failed": sum(per_replica[url].values()) - per_replica[url]["200"],
                         "builds_answered_from": sorted(builds_seen[url], key=builds_seen[url].get),
                         "answered_from_last_build": last in builds_seen[url]} for url in urls],
        "publishes": publishes,
        "switch_s": {"median": round(statistics.median(switches), 3), "max": round(max(switches), 3)} if switches else None,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
    }


def markdown(report: dict[str, Any]) -> str:
    switch = report["switch_s"] or {"median": float("nan"), "max": float("nan")}
    head = [report["replicas"], report["clients"], report["rounds"], report["requests"], report["failed"],
            f"{switch['median']:.2f}", f"{switch['max']:.2f}", report["p50_ms"], report["p99_ms"]]
    rows = []
    for i, replica in enumerate(report["per_replica"]):
        times = ", ".join(f"{p['switch_s'][i]:.2f}" for p in report["publishes"])
        rows.append([replica["url"], str(replica["requests"]), str(replica["failed"]), times, "yes" if replica["answered_from_last_build"] else "no"])
    return "\n".join([
        "# Rolling update benchmark",
        "",
        markdown_table(["replicas", "clients", "publishes", "requests", "failed", "switch s (median)", "max", "p50 ms", "p99 ms"],
                       [[str(c) for c in head]]),
        "",
        markdown_table(["replica", "requests", "failed", "switch s, per publish", "answered from the last build"], rows),
        "",
        f"Outcomes: {', '.join(f'{k}: {v}' for k, v in sorted(report['outcomes'].items()))}. A switch is timed from the moment "
        "CURRENT names the new build to the first /health of that replica that reports it; replicas poll CURRENT every "
        f"{report.get('reload_interval_s', '?')} s. Clients send each request to the next replica in turn.",
        "",
    ])


def write(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    return write_report(out, "rolling", report, markdown(report))

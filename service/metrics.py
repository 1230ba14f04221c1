"""`GET /metrics` in Prometheus's text format (prometheus-client): what an operator graphs and alerts on.

Requests are counted and timed by route template and status (an unknown path counts as
"unmatched", so a scanner cannot blow up the label set). The inference lane reports each batch
(size, encode and search seconds) as it finishes; queue depth, cache and index size are read
when Prometheus scrapes, from the objects the app already holds, so nothing is counted twice.
Each app gets its own registry: two apps in one process (tests) never mix their numbers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
STAGE_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    def __init__(self, state: Callable[[], dict[str, Any]]) -> None:
        """``state`` returns, at scrape time, the live numbers: ``passages``, ``documents`` and the lane's stats."""
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("cited_http_requests", "HTTP requests answered, by route and status.", ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram(
            "cited_http_request_duration_seconds", "Time from request to the end of the response, by route.", ["method", "route"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.stages = Histogram(
            "cited_query_stage_seconds", "Time per batch of questions in each query stage: encode (the model) and search (retrieval and ranking).",
            ["stage"], buckets=STAGE_BUCKETS, registry=self.registry,
        )
        self.batch = Histogram("cited_lane_batch_size", "Questions answered per forward pass.", buckets=BATCH_BUCKETS, registry=self.registry)
        self.registry.register(_Live(state))

    def observe_batch(self, size: int, encode_s: float, search_s: float) -> None:
        """Called by the inference lane after each batch."""
        self.batch.observe(size)
        self.stages.labels("encode").observe(encode_s)
        self.stages.labels("search").observe(search_s)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _Live(Collector):
    """Gauges read when scraped: index size and the lane's queue, counters and cache."""

    def __init__(self, state: Callable[[], dict[str, Any]]) -> None:
        self.state = state

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # nothing to read before the app has loaded its index: collect only when scraped

    def collect(self) -> Iterator[GaugeMetricFamily]:
        s = self.state()
        lane = s["lane"]
        yield GaugeMetricFamily("cited_index_passages", "Passages in the served index.", value=s["passages"])
        yield GaugeMetricFamily("cited_index_documents", "Documents in the served index.", value=s["documents"])
        yield GaugeMetricFamily("cited_index_stale", "1 when the served build no longer matches CURRENT, the corpus or the settings.", value=s["stale"])
        yield GaugeMetricFamily("cited_lane_queue_depth", "Questions waiting for the model now.", value=lane["queued"])
        yield GaugeMetricFamily("cited_lane_max_queue", "Questions that may wait before requests get 503.", value=lane["max_queue"])
        for name, help_text in (("questions", "Questions answered by the lane"), ("encoded", "Questions that needed the model"),
                                ("rejected", "Requests refused with 503: queue full"), ("timed_out", "Requests answered 503: too slow"),
                                ("skipped", "Queued questions dropped because their request gave up")):
            yield GaugeMetricFamily(f"cited_lane_{name}", f"{help_text}, since start.", value=lane[name])
        cache = lane["cache"]
        yield GaugeMetricFamily("cited_cache_hits", "Question vectors found in the cache, since start.", value=cache["hits"])
        yield GaugeMetricFamily("cited_cache_misses", "Question vectors not in the cache, since start.", value=cache["misses"])


class RequestMetrics:
    """Pure ASGI middleware: counts and times every HTTP response by route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless the app starts a response

        async def seen(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, seen)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)

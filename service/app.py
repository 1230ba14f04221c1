"""The FastAPI application: loads the model and index once, then answers queries."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response

from index import Embedder, Retriever, SearchOptions, open_index
from index.build import open_serving
from index.response import response
from service import answer, errors
from service.lane import InferenceLane, NotRunning
from service.access import OPEN_PATHS, BearerKey, Cors, warn_if_open
from service.corpus_watch import CorpusWatcher
from service.disconnect import unless_disconnected
from service.drift import DriftMonitor
from service.swap import IndexWatcher, load_published
from service.headers import SecurityHeaders
from service.limits import BodySizeLimit
from service.metrics import CONTENT_TYPE, Metrics, RequestMetrics
from service.schemas import DocumentInfo, Documents, ErrorBody, Health, Probe, QueryRequest, QueryResponse, SkippedFile
from service.settings import Settings
from service import web

log = logging.getLogger(__name__)
queries_log = logging.getLogger("cited.queries")  # one line per question: its own logger, to route or silence


def load_retriever(settings: Settings, progress: bool = False, serving: bool = False) -> Retriever:
    """Model and index, loaded once per process (rebuilding a missing or stale index first).

    Only a standalone server builds (``serving``, with ``auto_rebuild``; a replica serves what CURRENT
    names, docs/replicas.md); if that build fails, the published
    build is served (and reported stale) rather than no service at all. A one-off command (query,
    eval) never rebuilds: run with other chunking or model settings, it would silently replace
    the index a server uses, so it refuses, naming `cited index`.
    """
    config = settings.index_config()
    embedder = Embedder(config.model)
    if serving and settings.role == "replica":  # the writer decides what is current: serve it as published
        retriever = load_published(config.index_dir, embedder, settings.ranking_config(), config.store)
        embedder.encode(["warm-up"])
        return retriever
    if serving and settings.auto_rebuild:
        stored = open_serving(config, embedder, progress=progress)
    else:
        stored = open_index(config, embedder, rebuild=False, progress=progress)
    embedder.encode(["warm-up"])  # the first forward pass is several times slower; pay it before serving
    return Retriever(embedder, stored, settings.ranking_config(), config.store)


def get_retriever(request: Request) -> Retriever:
    return request.app.state.retriever


def get_lane(request: Request) -> InferenceLane:
    return request.app.state.lane


RetrieverDep = Annotated[Retriever, Depends(get_retriever)]
LaneDep = Annotated[InferenceLane, Depends(get_lane)]

# Every error status each route can return (service/errors.py says what each means). 401 only when
# api_key is set, and never on the probes; 405/408/413/503 come from routing and middleware in front
# of every route (503 also at max_connections).
_ERRORS = {status: {"model": ErrorBody, **errors.RESPONSES[status]} for status in (400, 401, 405, 408, 413, 415, 422, 500, 503)}
_READ_ERRORS = {status: _ERRORS[status] for status in (401, 405, 408, 413, 500, 503)}
_PROBE_ERRORS = {status: _ERRORS[status] for status in (405, 408, 413, 500, 503)}
_ANSWER_ERRORS = {**_ERRORS, **{status: {"model": ErrorBody, **errors.RESPONSES[status]} for status in (404, 502, 504)}}


def drift_reasons(app: FastAPI) -> list[str]:
    """Why the served build is stale, as of the drift monitor's last check ([] if fresh or unchecked)."""
    drift: DriftMonitor | None = getattr(app.state, "drift", None)
    return drift.reasons_for(app.state.retriever.stored.path.name) if drift is not None else []


def create_app(settings: Settings, retriever: Retriever | None = None) -> FastAPI:
    """``retriever`` lets tests and embedders share one loaded index; otherwise the lifespan loads it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.retriever = retriever or load_retriever(settings)
        app.state.lane = InferenceLane(
            app.state.retriever,
            max_batch=settings.max_batch,
            batch_wait_ms=settings.batch_wait_ms,
            max_queue=settings.max_queue,
            cache_size=settings.cache_size,
            torch_threads=settings.torch_threads,
            on_batch=metrics.observe_batch,
        ).start()
        log.info("serving %d passages from %s", len(app.state.retriever.passages), app.state.retriever.stored.path)

        app.state.drift = None

        def swap(new: Retriever) -> None:  # two attribute writes: each request sees one index or the other
            app.state.lane.retriever = new
            app.state.retriever = new
            if app.state.drift is not None:
                app.state.drift.check()  # /health tells the truth about the new build at once

        watchers: list[IndexWatcher | CorpusWatcher | DriftMonitor] = []
        if settings.reload_interval_s > 0:
            app.state.drift = DriftMonitor(settings.index_config(), lambda: app.state.retriever, settings.reload_interval_s,
                                           corpus=settings.role != "replica").start()
            watchers.append(app.state.drift)
            watchers.append(IndexWatcher(app.state.retriever, settings.index_dir, swap, settings.reload_interval_s).start())
            if settings.watch:
                watchers.append(CorpusWatcher(settings.index_config(), settings.reload_interval_s, watchers[1].check).start())
        app.state.watchers = watchers
        try:
            yield
        finally:
            for watcher in reversed(watchers):
                watcher.close()
            app.state.lane.close()

    app = FastAPI(
        title="cited",
        summary="Ranked passages with character-exact citations.",
        version="0.1.0",
        lifespan=lifespan,
        redirect_slashes=False,  # a trailing-slash redirect would echo the request's Host header
        docs_url=None, redoc_url=None,  # service.web serves both with local assets
        **({} if settings.api_docs else {"openapi_url": None}),
    )
    errors.install(app)
    web.install_page(app)
    if settings.api_docs:
        web.install_docs(app)

    def live_state() -> dict[str, Any]:
        served: Retriever = app.state.retriever
        return {"passages": len(served.passages), "documents": len(served.manifest["documents"]),
                "stale": int(bool(drift_reasons(app))), "lane": app.state.lane.stats()}

    metrics = Metrics(live_state)
    # Outermost last: headers on every response, CORS answers preflights before the key is asked for.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if settings.api_key is not None:
        app.add_middleware(BearerKey, key=settings.api_key.get_secret_value(), open_paths=OPEN_PATHS | web.open_paths())
    if settings.cors_origins:
        app.add_middleware(Cors, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["authorization", "content-type"], max_age=600)
    app.add_middleware(RequestMetrics, metrics=metrics)  # outside the key: refused requests count too
    app.add_middleware(SecurityHeaders)
    warn_if_open(settings.host, settings.api_key is not None)
    timeout = settings.request_timeout_ms / 1000

    # Async routes: the event loop only parses, waits and writes; the model runs on the lane's
    # thread, and /health never queues behind questions.
    @app.post("/query", response_model=QueryResponse, responses=_ERRORS)
    async def query(body: QueryRequest, lane: LaneDep, request: Request) -> Response:
        """Return the passages that best answer the question, each with its citation."""
        started = time.perf_counter()
        options = SearchOptions(top_k=body.top_k, token_budget=body.token_budget)
        found = await unless_disconnected(request, lane.search(body.question, options, timeout))
        took_ms = (time.perf_counter() - started) * 1000
        payload = response(body.question, found, took_ms)
        queries_log.info(
            "query %.1f ms, top_k %d, %d results, top %s%s", took_ms, body.top_k, len(found.hits),
            ", ".join(h.passage.doc_id for h in found.hits[:3]) or "-",
            f", question {body.question!r}" if settings.log_questions else "",
        )
        return Response(json.dumps(payload, ensure_ascii=False), media_type="application/json")

    @app.get("/health", response_model=Health, responses=_READ_ERRORS)
    async def health(retriever: RetrieverDep, lane: LaneDep, request: Request) -> Health:
        """Report the index being served, whether it is still the truth, and how the inference lane is doing."""
        manifest = retriever.manifest
        stale = drift_reasons(request.app)
        drift: DriftMonitor | None = request.app.state.drift
        latest = drift.latest if drift is not None else None
        return Health(
            status="stale" if stale else "ok",
            stale_reasons=stale,
            published_build=latest.published if latest is not None else None,
            documents=len(manifest["documents"]),
            passages=len(retriever.passages),
            model=manifest["model"]["name"],
            model_fingerprint=manifest["model"]["fingerprint"],
            index_built_at=manifest["built_at"],
            index_build=retriever.stored.path.name,
            skipped=[SkippedFile(**s) for s in manifest.get("skipped", [])],
            lane=lane.stats(),
        )

    @app.get("/livez", response_model=Probe, responses=_PROBE_ERRORS)
    async def livez() -> Probe:
        """The process answers: never waits on the model, so it stays fast at any load."""
        return Probe(status="ok")

    @app.get("/readyz", response_model=Probe, responses=_PROBE_ERRORS)
    async def readyz(request: Request) -> Probe:
        """An index is loaded and the inference lane is running; no model work is done to say so."""
        if getattr(request.app.state, "draining", False):  # set by service.http_server on SIGTERM
            raise NotRunning("not ready: the server is draining connections before it exits", retry_after=1)
        lane: InferenceLane | None = getattr(request.app.state, "lane", None)
        if lane is None or not lane.running:
            raise NotRunning("not ready: the inference lane is not running", retry_after=1)
        return Probe(status="ready", index_build=request.app.state.retriever.stored.path.name)

    @app.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format."}, **_READ_ERRORS})
    async def prometheus_metrics() -> Response:
        """Request counts and latencies by route and status, query stage times, batch sizes, queue depth, index size."""
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    @app.get("/documents", response_model=Documents, responses=_READ_ERRORS)
    async def documents(retriever: RetrieverDep) -> Documents:
        """List the indexed documents with their passage counts."""
        return Documents(documents=[DocumentInfo(**d) for d in retriever.manifest["documents"]])

    answer.install(app, settings, _ANSWER_ERRORS)  # POST /answer (docs/generation.md)
    app.include_router(web.router)  # GET /documents/{doc_id}/text
    return app

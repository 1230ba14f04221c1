"""The FastAPI application: loads the model and index once, then answers queries."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request, Response

from index import Embedder, Retriever, SearchOptions, open_index
from index.response import response
from service import errors
from service.lane import InferenceLane, NotRunning
from service.corpus_watch import CorpusWatcher
from service.swap import IndexWatcher
from service.headers import SecurityHeaders
from service.limits import BodySizeLimit
from service.schemas import DocumentInfo, Documents, ErrorBody, Health, Probe, QueryRequest, QueryResponse, SkippedFile
from service.settings import Settings

log = logging.getLogger(__name__)


def load_retriever(settings: Settings, progress: bool = False) -> Retriever:
    """Model and index, loaded once per process (rebuilding a missing or stale index first)."""
    config = settings.index_config()
    embedder = Embedder(config.model)
    stored = open_index(config, embedder, rebuild=settings.auto_rebuild, progress=progress)
    embedder.encode(["warm-up"])  # the first forward pass is several times slower; pay it before serving
    return Retriever(embedder, stored, settings.ranking_config())


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
        ).start()
        log.info("serving %d passages from %s", len(app.state.retriever.passages), app.state.retriever.stored.path)

        def swap(new: Retriever) -> None:  # two attribute writes: each request sees one index or the other
            app.state.lane.retriever = new
            app.state.retriever = new

        watchers: list[IndexWatcher | CorpusWatcher] = []
        if settings.reload_interval_s > 0:
            watchers.append(IndexWatcher(app.state.retriever, settings.index_dir, swap, settings.reload_interval_s).start())
            if settings.watch:
                watchers.append(CorpusWatcher(settings.index_config(), settings.reload_interval_s, watchers[0].check).start())
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
    )
    errors.install(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)
    timeout = settings.request_timeout_ms / 1000

    # Async routes: the event loop only parses, waits and writes; the model runs on the lane's
    # thread, and /health never queues behind questions.
    @app.post("/query", response_model=QueryResponse, responses=_ERRORS)
    async def query(body: QueryRequest, lane: LaneDep) -> Response:
        """Return the passages that best answer the question, each with its citation."""
        started = time.perf_counter()
        found = await lane.search(body.question, SearchOptions(top_k=body.top_k, token_budget=body.token_budget), timeout)
        payload = response(body.question, found, (time.perf_counter() - started) * 1000)
        return Response(json.dumps(payload, ensure_ascii=False), media_type="application/json")

    @app.get("/health", response_model=Health, responses=_READ_ERRORS)
    async def health(retriever: RetrieverDep, lane: LaneDep) -> Health:
        """Report that the index is loaded, what it holds, and how the inference lane is doing."""
        manifest = retriever.manifest
        return Health(
            status="ok",
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
        lane: InferenceLane | None = getattr(request.app.state, "lane", None)
        if lane is None or not lane.running:
            raise NotRunning("not ready: the inference lane is not running", retry_after=1)
        return Probe(status="ready", index_build=request.app.state.retriever.stored.path.name)

    @app.get("/documents", response_model=Documents, responses=_READ_ERRORS)
    async def documents(retriever: RetrieverDep) -> Documents:
        """List the indexed documents with their passage counts."""
        return Documents(documents=[DocumentInfo(**d) for d in retriever.manifest["documents"]])

    return app

"""The FastAPI application: loads the model and index once, then answers queries."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from index import Embedder, Retriever, open_index
from service import errors
from service.query import run_query
from service.limits import BodySizeLimit
from service.schemas import DocumentInfo, Documents, ErrorBody, Health, QueryRequest, QueryResponse
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


RetrieverDep = Annotated[Retriever, Depends(get_retriever)]

_ERRORS = {status: {"model": ErrorBody} for status in (400, 413, 422)}


def create_app(settings: Settings, retriever: Retriever | None = None) -> FastAPI:
    """``retriever`` lets tests and embedders share one loaded index; otherwise the lifespan loads it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.retriever = retriever or load_retriever(settings)
        log.info("serving %d passages from %s", len(app.state.retriever.passages), app.state.retriever.stored.path)
        yield

    app = FastAPI(
        title="cited",
        summary="Ranked passages with character-exact citations.",
        version="0.1.0",
        lifespan=lifespan,
    )
    errors.install(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)

    # Plain `def` routes: FastAPI runs them in its thread pool, so model inference never
    # blocks the event loop.
    @app.post("/query", response_model=QueryResponse, responses=_ERRORS)
    def query(body: QueryRequest, retriever: RetrieverDep) -> QueryResponse:
        """Return the passages that best answer the question, each with its citation."""
        return run_query(retriever, body)

    @app.get("/health", response_model=Health)
    def health(retriever: RetrieverDep) -> Health:
        """Report that the index is loaded, and what it holds."""
        manifest = retriever.manifest
        return Health(
            status="ok",
            documents=len(manifest["documents"]),
            passages=len(retriever.passages),
            model=manifest["model"]["name"],
            model_fingerprint=manifest["model"]["fingerprint"],
            index_built_at=manifest["built_at"],
        )

    @app.get("/documents", response_model=Documents)
    def documents(retriever: RetrieverDep) -> Documents:
        """List the indexed documents with their passage counts."""
        return Documents(documents=[DocumentInfo(**d) for d in retriever.manifest["documents"]])

    return app

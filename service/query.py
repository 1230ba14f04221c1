"""The one query path: the API route, `cited query` and the in-process eval all call `run_query`."""

from __future__ import annotations

import time

from index import Retriever, SearchOptions
from service.schemas import QueryRequest, QueryResponse


def run_query(retriever: Retriever, request: QueryRequest) -> QueryResponse:
    started = time.perf_counter()
    found = retriever.search(request.question, SearchOptions(top_k=request.top_k, token_budget=request.token_budget))
    return QueryResponse.of(request.question, found, (time.perf_counter() - started) * 1000)

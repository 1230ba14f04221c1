"""A search result as plain JSON data: the one response shape of the API, `cited query --json` and the in-process eval.

The service documents and validates this shape with its pydantic models (service/schemas.py);
the eval reads it whether it asked in-process or over HTTP, so both paths score the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from index.search import SearchResult
from index.types import Passage, Span


def citation(passage: Passage, files: Mapping[str, str], span: Span | None = None) -> dict[str, Any]:
    """Where ``passage`` (or the ``span`` inside it) sits in its source file, and that file's
    sha256 as indexed (``files``): a client can tell that the file changed since, so that the
    offsets may no longer slice to the text."""
    return {
        "doc_id": passage.doc_id,
        "title": passage.title,
        "source": passage.source,
        "start": passage.start if span is None else span.start,
        "end": passage.end if span is None else span.end,
        "heading": passage.heading,
        "sha256": files.get(passage.source),
    }


def response(question: str, found: SearchResult, took_ms: float) -> dict[str, Any]:
    answer = found.answer
    return {
        "question": question,
        "answer": None if answer is None else {"text": answer.text, "citation": citation(answer.passage, found.files, answer.span)},
        "best_cosine": None if found.best_cosine is None else round(found.best_cosine, 6),
        "results": [
            {
                "rank": h.rank,
                "score": round(h.score, 6),
                "text": h.passage.text,
                "citation": citation(h.passage, found.files),
                "tokens": h.passage.tokens,
                "highlights": [{"start": s.start, "end": s.end} for s in h.highlights],
                "also_in": [citation(p, found.files) for p in h.also_in],
            }
            for h in found.hits
        ],
        "index_build": found.build,
        "took_ms": round(took_ms, 3),
    }

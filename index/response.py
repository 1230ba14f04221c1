"""A search result as plain JSON data: the one response shape of the API, `cited query --json` and the in-process eval.

The service documents and validates this shape with its pydantic models (service/schemas.py);
the eval reads it whether it asked in-process or over HTTP, so both paths score the same bytes.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from typing import Any

from index.search import SearchResult
from index.types import Passage, Span


def citation(passage: Passage, files: Mapping[str, str], span: Span | None = None,
             documents: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """Where ``passage`` (or the ``span`` inside it) sits in its document, and the source file's
    sha256 as indexed (``files``): a client can tell that the file changed since, so that the
    offsets may no longer slice to the text.

    ``documents`` (the manifest's, by doc_id) says which text the offsets index: ``"file"``, the
    source file decoded with ``encoding``, or ``"extracted"``, the text the index stored (HTML,
    PDF; served by GET /documents/{doc_id}/text), and for a PDF the page the span starts on.
    """
    record = (documents or {}).get(passage.doc_id, {})
    start = passage.start if span is None else span.start
    pages = record.get("pages")
    return {
        "doc_id": passage.doc_id,
        "title": passage.title,
        "source": passage.source,
        "start": start,
        "end": passage.end if span is None else span.end,
        "heading": passage.heading,
        "sha256": files.get(passage.source),
        "offsets": record.get("offsets", "file"),
        "encoding": record.get("encoding", "utf-8"),
        "page": bisect_right(pages, start) if pages else None,  # 1-based: the page the span starts on
    }


def response(question: str, found: SearchResult, took_ms: float) -> dict[str, Any]:
    answer = found.answer
    return {
        "question": question,
        "answer": None if answer is None else {"text": answer.text, "citation": citation(answer.passage, found.files, answer.span, found.documents)},
        "best_cosine": None if found.best_cosine is None else round(found.best_cosine, 6),
        "results": [
            {
                "rank": h.rank,
                "score": round(h.score, 6),
                "text": h.passage.text,
                "citation": citation(h.passage, found.files, documents=found.documents),
                "tokens": h.passage.tokens,
                "highlights": [{"start": s.start, "end": s.end} for s in h.highlights],
                "also_in": [citation(p, found.files, documents=found.documents) for p in h.also_in],
            }
            for h in found.hits
        ],
        "index_build": found.build,
        "took_ms": round(took_ms, 3),
    }

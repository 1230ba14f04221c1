"""The web front door: the question page at ``/``, document texts for its source view, and the API docs pages.

Nothing here loads from another origin: the page's own files are in ``service/static/web/``, and
the Swagger UI and ReDoc files come from the ``fastapi-offline`` package (see :data:`DOCS_ASSETS`).

The page and its files are open even when ``api_key`` is set (:func:`open_paths`): they are the
same static files for every server and reveal nothing of the corpus. Everything the page shows
comes from routes that need the key, which the page sends from a field kept in sessionStorage.
"""

from __future__ import annotations

import weakref
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from service.errors import RESPONSES, error_response
from service.schemas import ErrorBody

if TYPE_CHECKING:
    from index import Retriever

PAGE_DIR = Path(__file__).parent / "static" / "web"
PAGE_ASSETS = "/ui"

# Swagger UI and ReDoc: the maintained PyPI package fastapi-offline (MIT; depends on fastapi only)
# ships their minified dist files, which FastAPI's own docs pages otherwise take from a CDN.
# A package keeps 2.8 MB of third-party JavaScript out of this repository, and a pip upgrade
# brings their fixes. Only its files are used: its FastAPIOffline factory would replace our
# app's constructor, and our pages need local favicons and no validator badge.
DOCS_ASSETS = "/docs-assets"

# The page's only sources are this server: no CDN, no web fonts, no inline script or style.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

# The docs pages: FastAPI's Swagger UI page has an inline script, and both UIs inject styles.
# Nothing leaves the origin either: ReDoc's sidebar shows a logo from its CDN, which this blocks
# (ReDoc then drops the image).
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "worker-src 'self' blob:; connect-src 'self'; font-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)

MAX_CONTEXT_CHARS = 1_000_000


def open_paths() -> frozenset[str]:
    """The page and each of its files, by exact path: open to anyone, key or no key."""
    return frozenset({"/"} | {f"{PAGE_ASSETS}/{p.name}" for p in PAGE_DIR.iterdir() if p.is_file()})


def install_page(app: FastAPI) -> None:
    """``/`` (the question page) and ``/ui/*`` (its script, style sheet and icon)."""

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(PAGE_DIR / "index.html", media_type="text/html; charset=utf-8",
                            headers={"Content-Security-Policy": PAGE_POLICY, "Cache-Control": "no-cache"})

    app.mount(PAGE_ASSETS, StaticFiles(directory=PAGE_DIR), name="page-assets")


def install_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), their JavaScript and CSS served by this app."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=Path(str(files("fastapi_offline") / "static"))), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    favicon = f"{PAGE_ASSETS}/favicon.svg"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _local_only(get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=root + "/docs/oauth2-redirect",
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=root + favicon,
            swagger_ui_parameters={"validatorUrl": None},  # the default badge asks validator.swagger.io about the spec
        ))

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _local_only(get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=root + favicon,
            with_google_fonts=False,
        ))


def _local_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = DOCS_POLICY
    return page


# -- document texts ------------------------------------------------------------------------------


class TextSpan(BaseModel):
    start: int = Field(description="Start offset of the requested span in the document's text.")
    end: int = Field(description="End offset (exclusive) of the requested span.")


class DocumentText(BaseModel):
    doc_id: str
    title: str
    source: str = Field(description="File name inside the corpus folder.")
    sha256: str | None = Field(description="sha256 (hex) of the source file's bytes when it was indexed, as in citations.")
    format: str = Field("text", description="What the file is: text (.txt), markdown, html or pdf.")
    offsets: str = Field("file", description='"file": this text is the source file decoded with `encoding` (.txt, .md); '
                         '"extracted": it was extracted from the file (.html, .pdf) and exists only here.')
    encoding: str | None = Field("utf-8", description="The codec the file was decoded with (text formats); null for extracted text.")
    pages: list[int] | None = Field(None, description="PDF only: where each page starts in the document's text (page n at pages[n - 1]); pages are separated by a form feed.")
    length: int = Field(description="Characters in the document's whole text.")
    offset: int = Field(description="Where `text` starts in the document: document_text[offset + i] == text[i].")
    text: str = Field(description="The whole text, or the requested span with up to `context` characters on each side.")
    span: TextSpan | None = Field(description="The span asked for (start/end), if any: text[span.start - offset : span.end - offset].")
    index_build: str = Field(description="The index build whose stored text this is.")


_documents: weakref.WeakKeyDictionary[Retriever, dict[str, dict[str, Any]]] = weakref.WeakKeyDictionary()


def _document(retriever: Retriever, doc_id: str) -> dict[str, Any] | None:
    """The manifest's summary of one document; the lookup table is made once per loaded build."""
    if retriever not in _documents:
        _documents[retriever] = {d["doc_id"]: d for d in retriever.manifest["documents"]}
    return _documents[retriever].get(doc_id)


def _out_of_range(name: str, value: int, message: str) -> JSONResponse:
    return error_response(422, message, [{"loc": ["query", name], "type": "out_of_range", "msg": message, "input": value}])


router = APIRouter()

# Every error status the route can return, as service.app documents its read routes (401 only with api_key).
_TEXT_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, **RESPONSES[status]} for status in (401, 405, 408, 413, 422, 500, 503)
}
_TEXT_ERRORS[404] = {"model": ErrorBody, "description": "No document with this id in the served build (GET /documents lists them)."}
_TEXT_ERRORS[422] = {"model": ErrorBody, "description": "start, end or context is not a non-negative integer, end is past the "
                     "document's end, start is after end, or context is over the limit; details says which."}


@router.get("/documents/{doc_id:path}/text", response_model=DocumentText, responses=_TEXT_ERRORS)
async def document_text(
    doc_id: str,
    request: Request,
    start: Annotated[int | None, Query(ge=0, description="Start of a span (characters); default 0.")] = None,
    end: Annotated[int | None, Query(ge=0, description="End of a span (exclusive); default the document's end.")] = None,
    context: Annotated[int, Query(ge=0, le=MAX_CONTEXT_CHARS, description="With start or end: characters of text to add on each side of the span.")] = 0,
) -> Any:
    """Return a document's text as the index stored it (the text citations slice), whole or a span with context."""
    retriever: Retriever = request.app.state.retriever
    texts = retriever.components.texts
    summary = _document(retriever, doc_id)
    if summary is None or texts is None or doc_id not in texts:
        if summary is not None:  # a build from before texts were stored (served stale after a failed rebuild)
            return error_response(404, f"the served build stores no text for {doc_id!r}: rebuild the index (cited index --rebuild)")
        return error_response(404, f"no document {doc_id!r} in the index (GET /documents lists them)")
    text = texts.text(doc_id)
    length = len(text)
    span = None
    window_start, window_end = 0, length
    if start is not None or end is not None:
        span_start = 0 if start is None else start
        span_end = length if end is None else end
        if span_end > length:
            return _out_of_range("end", span_end, f"end {span_end} is past the end of {doc_id} ({length} characters)")
        if span_start > span_end:
            return _out_of_range("start", span_start, f"start {span_start} is after end {span_end}")
        span = TextSpan(start=span_start, end=span_end)
        window_start, window_end = max(0, span_start - context), min(length, span_end + context)
    return DocumentText(
        doc_id=doc_id,
        title=summary["title"],
        source=summary["source"],
        sha256=retriever.manifest["corpus"]["files"].get(summary["source"]),
        format=summary.get("format", "text"),
        offsets=summary.get("offsets", "file"),
        encoding=summary.get("encoding", "utf-8"),
        pages=summary.get("pages"),
        length=length,
        offset=window_start,
        text=text[window_start:window_end],
        span=span,
        index_build=retriever.stored.path.name,
    )

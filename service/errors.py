"""One JSON error shape for every non-2xx response; stack traces never reach a client."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from index.generate import GeneratorError, GeneratorTimeout
from service.answer import GenerationOff
from service.disconnect import ClientGone
from service.lane import LaneError
from service.schemas import MAX_QUESTION_CHARS, ErrorBody, ErrorDetail

log = logging.getLogger(__name__)

_RETRY_AFTER = {"description": "Seconds to wait before retrying.", "required": False, "schema": {"type": "integer", "minimum": 0}}

# What each error status means, for the OpenAPI `responses` of the routes that can return it
# (service/app.py picks the statuses per route; the body is always ErrorBody).
RESPONSES: dict[int, dict[str, Any]] = {
    400: {"description": "The body is not valid JSON."},
    401: {
        "description": "Only when api_key is set: the header Authorization: Bearer <key> is missing or wrong.",
        "headers": {"WWW-Authenticate": {"description": "The scheme to use: Bearer.", "required": True, "schema": {"type": "string"}}},
    },
    405: {
        "description": "The path exists, but not with this method.",
        "headers": {"Allow": {"description": "The methods the path accepts.", "required": True, "schema": {"type": "string"}}},
    },
    408: {"description": "The request body did not arrive in full within body_timeout_s."},
    413: {"description": "The request body is larger than max_body_bytes; refused before parsing."},
    415: {"description": "The body was not sent with the header content-type: application/json."},
    422: {"description": "A field is missing, has the wrong type or is out of range, or is unknown; details lists each."},
    404: {"description": "Generation is off on this server: llm_base_url is not set (docs/generation.md)."},
    500: {"description": "Internal error; the server log has the details."},
    502: {"description": "The chat model endpoint is unreachable, answered an error status, or answered something that is not a chat completion."},
    504: {"description": "The chat model endpoint did not answer within llm_timeout_s."},
    503: {
        "description": "Busy or not ready: more than max_queue questions wait for the model, one waited longer than "
        "request_timeout_ms, the inference lane is not running, or max_connections is reached.",
        "headers": {"Retry-After": _RETRY_AFTER},
    },
}


def error_response(
    status: int, message: str, details: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = ErrorBody(error=ErrorDetail(status=status, message=message, details=details or []))
    return JSONResponse(status_code=status, content=body.model_dump(), headers=headers)


def generator_status(exc: GeneratorError) -> int:
    """504 when the chat model endpoint timed out, else 502 (a bad gateway)."""
    return 504 if isinstance(exc, GeneratorTimeout) else 502


def describe_error(error: dict[str, Any], accepted: str = "question, top_k, token_budget") -> str:
    """A sentence a person can act on, for one pydantic error."""
    loc = [str(p) for p in error.get("loc", ()) if p != "body"]
    field = ".".join(loc)
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return f"unknown field {field!r} (accepted: {accepted})"
    if kind == "missing":
        return f"{field} is required" if field else "request body is required: a JSON object with a question"
    if field == "question" and kind in {"string_too_short", "string_pattern_mismatch"}:
        return "question must not be empty or only whitespace"
    if field == "question" and kind == "string_too_long":
        return f"question is longer than {MAX_QUESTION_CHARS} characters"
    if not field and kind in {"model_attributes_type", "dict_type", "model_type"}:
        return "request body must be a JSON object"
    return f"{field or 'body'}: {error.get('msg', 'invalid value')}"


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(400, "request body is not valid JSON")
        content_type = request.headers.get("content-type", "")
        if request.method == "POST" and "json" not in content_type.lower() and int(request.headers.get("content-length") or 0):
            # FastAPI does not parse non-JSON bodies, which would otherwise surface as a confusing type error.
            return error_response(415, "send the body as JSON with the header content-type: application/json")
        details = [{"loc": [str(p) for p in e.get("loc", ())], "type": e.get("type"), "msg": e.get("msg")} for e in errors]
        accepted = "question, top_k, token_budget, stream" if request.url.path == "/answer" else "question, top_k, token_budget"
        return error_response(422, "; ".join(describe_error(e, accepted) for e in errors), details)

    @app.exception_handler(GenerationOff)
    async def _off(_: Request, exc: GenerationOff) -> JSONResponse:
        return error_response(404, str(exc))

    @app.exception_handler(GeneratorError)
    async def _generator(_: Request, exc: GeneratorError) -> JSONResponse:
        log.warning("chat model endpoint: %s", exc)
        return error_response(generator_status(exc), str(exc))

    @app.exception_handler(LaneError)
    async def _busy(_: Request, exc: LaneError) -> JSONResponse:
        return error_response(503, str(exc), headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(ClientGone)
    async def _gone(_: Request, exc: ClientGone) -> JSONResponse:
        return error_response(499, str(exc))  # nginx's "client closed request": only the access log sees it

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 400 and message == "There was an error parsing the body":
            # FastAPI's words for a body it could not decode (not UTF-8, say): the same fault as invalid JSON.
            message = "request body is not valid JSON"
        # Keep the exception's headers: a 405 carries Allow (RFC 9110 requires it), listing the path's methods.
        headers = dict(exc.headers or {})
        if "Allow" in headers:
            headers["Allow"] = ", ".join(sorted(m.strip() for m in headers["Allow"].split(",")))
        return error_response(exc.status_code, message, headers=headers or None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal error; the server log has the details")

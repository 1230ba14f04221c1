"""POST /answer: the passages /query would return, a chat model's answer citing them, and the check of every citation.

Retrieval goes through the inference lane like /query; the model is asked over async httpx; the
check (one forward pass of the embedding model over the answer's and the passages' sentences)
runs on a worker thread. The event loop only waits and writes.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse

from index import CitedError, SearchOptions
from index.generate import ChatClient, GeneratorError, messages
from index.generated import check, generated_response, sent_passages
from index.response import response
from index.support import NO_ANSWER
from service.answer_schemas import AnswerRequest, AnswerResponse
from service.disconnect import unless_disconnected
from service.lane import InferenceLane
from service.settings import Settings

__all__ = ["GenerationOff", "install"]

EVENT_STREAM = "text/event-stream"


class GenerationOff(CitedError):
    """POST /answer on a server without a chat endpoint configured."""


def sse(event: str, data: Any) -> bytes:
    """One server-sent event; the data is JSON on one line, so it never needs splitting."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def install(app: FastAPI, settings: Settings, responses: dict[int | str, dict[str, Any]]) -> None:
    config = settings.generator_config()
    client = ChatClient(config) if config is not None else None
    timeout = settings.request_timeout_ms / 1000
    stream_doc = {
        "description": "The checked answer (JSON), or with `stream: true` server-sent events: `passages` "
        "({question, results, index_build}), `delta` ({text}) as the model writes, then `answer` (this JSON) or `error` "
        "(the error shape, e.g. status 502 or 504 when the model endpoint fails mid-answer).",
        "content": {EVENT_STREAM: {"schema": {"type": "string"}}},
    }

    @app.post("/answer", response_model=AnswerResponse, responses={200: stream_doc, **responses})
    async def answer(body: AnswerRequest, request: Request) -> Response:
        """Answer the question with a chat model over the top passages, and check that each sentence's citation holds.

        Off unless the server has llm_base_url (404). The passages are those POST /query returns for the same
        question, top_k and token_budget, numbered [1]..[k] in rank order.
        """
        if client is None:
            raise GenerationOff("generation is off on this server: set llm_base_url and llm_model "
                                "(CITED_LLM_BASE_URL, CITED_LLM_MODEL or --llm-base-url, --llm-model) to enable POST /answer")
        started = time.perf_counter()
        lane: InferenceLane = request.app.state.lane
        retriever = request.app.state.retriever
        options = SearchOptions(top_k=body.top_k, token_budget=body.token_budget)
        found = await unless_disconnected(request, lane.search(body.question, options, timeout))
        passages = sent_passages(found)
        chat = messages(body.question, passages)

        def elapsed() -> float:
            return (time.perf_counter() - started) * 1000

        async def checked(text: str, model: str) -> dict[str, Any]:
            result = await asyncio.to_thread(check, retriever, text, passages)
            return generated_response(body.question, found, text, model, result, elapsed())

        if not body.stream:
            if passages:
                completion = await unless_disconnected(request, client.acomplete(chat))
                text, model = completion.text, completion.model
            else:  # nothing to cite: no model call, the answer says so
                text, model = NO_ANSWER, client.config.model
            payload = await checked(text, model)
            return Response(json.dumps(payload, ensure_ascii=False), media_type="application/json")

        stream = await client.open_stream(chat) if passages else None  # a dead endpoint is a 502 before any event

        async def events() -> AsyncIterator[bytes]:
            head = response(body.question, found, elapsed())
            yield sse("passages", {"question": body.question, "results": head["results"], "index_build": head["index_build"]})
            parts: list[str] = []
            model = client.config.model
            if stream is None:
                parts.append(NO_ANSWER)
                yield sse("delta", {"text": NO_ANSWER})
            else:
                try:
                    async for text in stream.deltas():
                        parts.append(text)
                        yield sse("delta", {"text": text})
                except GeneratorError as exc:
                    from service.errors import generator_status

                    status = generator_status(exc)
                    yield sse("error", {"error": {"status": status, "message": str(exc), "details": []}})
                    return
                finally:
                    await stream.aclose()
                model = stream.model
            yield sse("answer", await checked("".join(parts), model))

        return StreamingResponse(events(), media_type=EVENT_STREAM, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

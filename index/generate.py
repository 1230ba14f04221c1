"""A generated answer: the top passages, numbered, in a prompt to any OpenAI-compatible chat endpoint.

Users bring their own model: vLLM, Ollama, a llama.cpp server or a hosted API all answer
``POST {base_url}/chat/completions`` the same way, so this speaks only that protocol (httpx, no
vendor SDK). The model is asked to cite each sentence's passage as ``[n]``; whether the
citations hold is checked afterwards (index.support), never taken on trust.

Errors are the project's own: the endpoint unreachable, answering an error status or something
that is not a chat completion is :class:`GeneratorFailed`; no answer within the timeout is
:class:`GeneratorTimeout`. The service maps them to 502 and 504.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from index.errors import CitedError
from index.support import NO_ANSWER
from index.tokens import count_tokens
from index.types import Passage

__all__ = [
    "RULES",
    "ChatClient",
    "Completion",
    "GeneratorConfig",
    "GeneratorError",
    "GeneratorFailed",
    "GeneratorTimeout",
    "Stream",
    "messages",
    "pack",
]

RULES = (
    "You answer questions using only the numbered passages you are given. "
    "Write a short answer of one to three sentences. End every sentence with the number of the passage that "
    "states it, in square brackets, like [1] or [2][3]. Use only facts the passages state, in their words where "
    f"you can; add nothing else. If the passages do not answer the question, reply exactly: {NO_ANSWER}"
)


class GeneratorError(CitedError):
    """The chat model endpoint did not give an answer."""


class GeneratorFailed(GeneratorError):
    """The endpoint is unreachable, answered an error status, or answered something that is not a chat completion."""


class GeneratorTimeout(GeneratorError):
    """The endpoint did not answer within the timeout."""


@dataclass(frozen=True)
class GeneratorConfig:
    base_url: str  # up to and including /v1, e.g. http://127.0.0.1:8080/v1
    model: str
    api_key: str | None = None
    timeout_s: float = 60.0
    max_tokens: int | None = 256

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"


@dataclass(frozen=True)
class Completion:
    text: str
    model: str  # as the endpoint names it (else the configured one)
    finish_reason: str | None = None


def pack(passages: Sequence[Passage], token_budget: int | None) -> list[Passage]:
    """The passages, in rank order, whose cl100k tokens add up to at most ``token_budget`` (a
    passage that would overflow is skipped, a shorter one after it still fits): the rule of
    /query's token_budget, so the passages sent are exactly the passages /query returns."""
    if token_budget is None:
        return list(passages)
    kept, used = [], 0
    for p in passages:
        if used + p.tokens <= token_budget:
            kept.append(p)
            used += p.tokens
    return kept


def _label(p: Passage) -> str:
    where = p.title if not p.heading or p.heading == p.title else f"{p.title} — {p.heading}"
    return f"({where}) " if where else ""


def messages(question: str, passages: Sequence[Passage]) -> list[dict[str, str]]:
    """The chat: one user message with the passages numbered [1]..[k], then the rules and the question
    (long context first, the ask last, as model vendors advise).

    No system message: some chat templates drop it (llama.cpp's "gemma") or refuse it (Gemma,
    older Mistral), and the rules must reach every model.
    """
    numbered = "\n\n".join(f"[{n}] {_label(p)}{' '.join(p.text.split())}" for n, p in enumerate(passages, 1))
    user = f"{numbered}\n\n{RULES}\n\nQuestion: {question}\nAnswer:"
    return [{"role": "user", "content": user}]


def prompt_tokens(chat: Sequence[dict[str, str]]) -> int:
    """cl100k tokens of the messages' text (the endpoint's own tokenizer will count differently)."""
    return sum(count_tokens(m["content"]) for m in chat)


def _headers(config: GeneratorConfig) -> dict[str, str]:
    return {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}


def _body(config: GeneratorConfig, chat: Sequence[dict[str, str]], stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": config.model, "messages": list(chat), "temperature": 0, "stream": stream}
    if config.max_tokens is not None:
        body["max_tokens"] = config.max_tokens
    return body


def _error_text(response: httpx.Response) -> str:
    try:
        data = response.json()
        error = data.get("error") if isinstance(data, dict) else None
        message = error.get("message") if isinstance(error, dict) else error if isinstance(error, str) else None
        if message:
            return str(message)[:300]
    except ValueError:
        pass
    return " ".join(response.text.split())[:300] or "(empty body)"


def _completion(config: GeneratorConfig, response: httpx.Response) -> Completion:
    where = f"the model endpoint {config.url}"
    try:
        data = response.json()
    except ValueError:
        raise GeneratorFailed(f"{where} answered {response.status_code} with a body that is not JSON: {response.text[:120]!r}") from None
    try:
        choice = data["choices"][0]
        text = choice["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise GeneratorFailed(f"{where} answered JSON that is not a chat completion (no choices[0].message.content)") from None
    if not isinstance(text, str):
        raise GeneratorFailed(f"{where} answered a chat completion whose content is not text")
    return Completion(text, str(data.get("model") or config.model), choice.get("finish_reason"))


def _check_status(config: GeneratorConfig, response: httpx.Response) -> None:
    if response.status_code >= 400:
        raise GeneratorFailed(f"the model endpoint {config.url} answered {response.status_code}: {_error_text(response)}")


def _failure(config: GeneratorConfig, exc: httpx.HTTPError) -> GeneratorError:
    if isinstance(exc, httpx.TimeoutException):
        return GeneratorTimeout(f"the model endpoint {config.url} did not answer within {config.timeout_s:g} s")
    return GeneratorFailed(f"cannot reach the model endpoint {config.url} ({exc.__class__.__name__}: {exc})")


@dataclass(frozen=True)
class _Chunk:
    text: str = ""
    model: str | None = None
    finished: bool = False  # a finish_reason came, or [DONE]
    done: bool = False  # [DONE]: nothing follows


def _chunk(config: GeneratorConfig, line: str) -> _Chunk:
    """One server-sent ``data:`` line of a streamed chat completion."""
    payload = line[5:].strip()
    if payload == "[DONE]":
        return _Chunk(finished=True, done=True)
    try:
        data = json.loads(payload)
    except ValueError:
        raise GeneratorFailed(f"the model endpoint {config.url} streamed an event that is not JSON: {payload[:120]!r}") from None
    if isinstance(data, dict) and "error" in data:
        error = data["error"]
        raise GeneratorFailed(f"the model endpoint {config.url} failed while streaming: {error.get('message') if isinstance(error, dict) else error}")
    try:
        choice = data["choices"][0] if data["choices"] else {}
    except (KeyError, TypeError):
        raise GeneratorFailed(f"the model endpoint {config.url} streamed an event that is not a chat completion chunk") from None
    if not isinstance(choice, dict):
        raise GeneratorFailed(f"the model endpoint {config.url} streamed an event that is not a chat completion chunk")
    content = (choice.get("delta") or {}).get("content")
    model = data.get("model")
    return _Chunk(content if isinstance(content, str) else "", model if isinstance(model, str) and model else None,
                  finished=choice.get("finish_reason") is not None)


def _cut_short(config: GeneratorConfig) -> GeneratorFailed:
    # OpenAI's protocol ends a stream with a finish_reason and [DONE]; a stream that just stops was
    # cut (llama-cpp-python's server, say, drops a stream when another request interrupts it).
    return GeneratorFailed(f"the model endpoint {config.url} ended the stream before the answer was complete")


class Stream:
    """An open streamed completion: its status is already checked; iterate :meth:`deltas`, then read ``model``."""

    def __init__(self, config: GeneratorConfig, client: httpx.AsyncClient, response: httpx.Response) -> None:
        self.config = config
        self.model = config.model
        self._client = client
        self._response = response
        self._json = "json" in response.headers.get("content-type", "")  # a server that does not stream answers whole

    async def deltas(self) -> AsyncIterator[str]:
        """The answer's text as it arrives; :class:`GeneratorError` if the stream breaks or stops short."""
        try:
            if self._json:
                completion = _completion(self.config, httpx.Response(200, content=await self._response.aread()))
                self.model = completion.model
                if completion.text:
                    yield completion.text
                return
            finished = False
            async for line in self._response.aiter_lines():
                if not line.startswith("data:"):
                    continue  # comments, event names, blank separators
                chunk = _chunk(self.config, line)
                self.model = chunk.model or self.model
                finished = finished or chunk.finished
                if chunk.done:
                    return
                if chunk.text:
                    yield chunk.text
            if not finished:
                raise _cut_short(self.config)
        except httpx.HTTPError as exc:
            raise _failure(self.config, exc) from None
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        await self._response.aclose()
        await self._client.aclose()


class ChatClient:
    """Chat completions from one endpoint, temperature 0; sync (the eval) and async (the service)."""

    def __init__(self, config: GeneratorConfig) -> None:
        self.config = config

    def _timeout(self) -> httpx.Timeout:
        # every wait (connect, each read) is bounded; the async calls also bound the whole answer
        return httpx.Timeout(self.config.timeout_s)

    def complete(self, chat: Sequence[dict[str, str]]) -> Completion:
        config = self.config
        try:
            with httpx.Client(timeout=self._timeout(), headers=_headers(config)) as client:
                response = client.post(config.url, json=_body(config, chat, stream=False))
        except httpx.HTTPError as exc:
            raise _failure(config, exc) from None
        _check_status(config, response)
        return _completion(config, response)

    def stream_sync(self, chat: Sequence[dict[str, str]]) -> Iterator[str]:
        """Deltas of a streamed completion, without an event loop (a script, the eval)."""
        config = self.config
        try:
            with httpx.Client(timeout=self._timeout(), headers=_headers(config)) as client:
                with client.stream("POST", config.url, json=_body(config, chat, stream=True)) as response:
                    if response.status_code >= 400:
                        response.read()
                        _check_status(config, response)
                    finished = False
                    for line in response.iter_lines():
                        if line.startswith("data:"):
                            chunk = _chunk(config, line)
                            finished = finished or chunk.finished
                            if chunk.done:
                                return
                            if chunk.text:
                                yield chunk.text
                    if not finished:
                        raise _cut_short(config)
        except httpx.HTTPError as exc:
            raise _failure(config, exc) from None

    async def acomplete(self, chat: Sequence[dict[str, str]]) -> Completion:
        import asyncio

        config = self.config
        try:
            async with httpx.AsyncClient(timeout=self._timeout(), headers=_headers(config)) as client:
                response = await asyncio.wait_for(client.post(config.url, json=_body(config, chat, stream=False)), config.timeout_s)
        except TimeoutError:
            raise GeneratorTimeout(f"the model endpoint {config.url} did not answer within {config.timeout_s:g} s") from None
        except httpx.HTTPError as exc:
            raise _failure(config, exc) from None
        _check_status(config, response)
        return _completion(config, response)

    async def open_stream(self, chat: Sequence[dict[str, str]]) -> Stream:
        """Send the request and check the status, so a dead endpoint is an error before any event is sent.

        Each chunk must arrive within the timeout (a streaming answer may take longer as a whole).
        """
        config = self.config
        client = httpx.AsyncClient(timeout=self._timeout(), headers=_headers(config))
        try:
            request = client.build_request("POST", config.url, json=_body(config, chat, stream=True))
            response = await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            await client.aclose()
            raise _failure(config, exc) from None
        if response.status_code >= 400:
            try:
                await response.aread()
            except httpx.HTTPError:
                pass
            await response.aclose()
            await client.aclose()
            _check_status(config, response)
        return Stream(config, client, response)

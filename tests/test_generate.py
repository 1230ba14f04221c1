"""The chat client and POST /answer against a real local HTTP server (tests/chat_server.py): the
protocol, streaming, and every failure of the endpoint as 502/504 in the project's error shape.

The real model is in tests/test_llm.py (marker ``llm``); here the endpoint's answers are fixed, so
the prompt, the events and the error mapping are checked without a model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from index import Retriever, SearchOptions
from index.generate import RULES, ChatClient, GeneratorConfig, GeneratorFailed, GeneratorTimeout, messages, pack
from service.app import create_app
from service.settings import Settings
from tests.chat_server import Behaviour, chat_server
from tests.conftest import source_text

QUESTION = "Did Mullah Omar expel ETIM?"
GOLD = "While analysts say Mullah Omar did restrain ETIM in the country, he did not expel the group."


@pytest.fixture(scope="module")
def behaviour() -> Behaviour:
    return Behaviour(answer=f"{GOLD} [1] He also became a trade envoy for China [9].", delay_s=2.0)


@pytest.fixture(scope="module")
def endpoint(behaviour: Behaviour) -> Iterator[str]:
    with chat_server(behaviour) as url:
        yield url


def config(base: str, mode: str = "ok", timeout: float = 5.0, key: str | None = None) -> GeneratorConfig:
    return GeneratorConfig(f"{base}/{mode}/v1", "test-model", key, timeout, 64)


def test_the_prompt_numbers_the_passages_and_asks_for_markers(retriever: Retriever) -> None:
    passages = [h.passage for h in retriever.search(QUESTION, SearchOptions(top_k=3)).hits]
    (user,) = messages(QUESTION, passages)
    assert user["content"].startswith("[1] ") and RULES in user["content"] and "do not answer" in RULES
    assert user["role"] == "user" and user["content"].index("[1] ") < user["content"].index("[2] ") < user["content"].index("[3] ")
    assert user["content"].endswith(f"Question: {QUESTION}\nAnswer:")
    assert pack(passages, None) == passages
    budget = passages[0].tokens + passages[2].tokens
    assert [p.tokens for p in pack(passages, budget)] == [p.tokens for p in passages if p in pack(passages, budget)]
    assert sum(p.tokens for p in pack(passages, budget)) <= budget and pack(passages, 0) == []


def test_complete_sends_temperature_zero_and_the_key(endpoint: str, behaviour: Behaviour) -> None:
    completion = ChatClient(config(endpoint, key="s3cret")).complete([{"role": "user", "content": "hi"}])
    assert completion.text == behaviour.answer and completion.model == "test-model"
    sent = behaviour.requests[-1]
    assert sent["path"] == "/ok/v1/chat/completions" and sent["authorization"] == "Bearer s3cret"
    assert sent["body"]["temperature"] == 0 and sent["body"]["stream"] is False and sent["body"]["max_tokens"] == 64


def test_sync_stream_gives_the_text_in_pieces(endpoint: str, behaviour: Behaviour) -> None:
    pieces = list(ChatClient(config(endpoint)).stream_sync([{"role": "user", "content": "hi"}]))
    assert len(pieces) > 3 and "".join(pieces) == behaviour.answer


@pytest.mark.parametrize(("mode", "error", "words"), [
    ("fail", GeneratorFailed, "answered 500: model crashed"),
    ("garbage", GeneratorFailed, "not JSON"),
    ("notchat", GeneratorFailed, "not a chat completion"),
    ("slow", GeneratorTimeout, "did not answer within 0.5 s"),
])
def test_endpoint_failures_are_generator_errors(endpoint: str, mode: str, error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        ChatClient(config(endpoint, mode, timeout=0.5)).complete([{"role": "user", "content": "hi"}])


def test_a_stream_that_stops_short_is_a_generator_failure(endpoint: str) -> None:
    with pytest.raises(GeneratorFailed, match="ended the stream before the answer was complete"):
        list(ChatClient(config(endpoint, "stop")).stream_sync([{"role": "user", "content": "hi"}]))


def test_an_unreachable_endpoint_is_a_generator_failure() -> None:
    with chat_server(Behaviour()) as url:
        pass  # closed: nothing listens on that port now
    with pytest.raises(GeneratorFailed, match="cannot reach"):
        ChatClient(config(url)).complete([{"role": "user", "content": "hi"}])


# -- POST /answer -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def answering(seed_settings: Settings, retriever: Retriever, endpoint: str) -> Iterator[callable]:
    """A TestClient of the real app per endpoint mode (entered once each)."""
    clients: dict[str, TestClient] = {}

    def client(mode: str = "ok", timeout: float = 5.0) -> TestClient:
        if (mode, timeout) not in clients:
            settings = seed_settings.model_copy(update={"llm_base_url": f"{endpoint}/{mode}/v1", "llm_model": "test-model", "llm_timeout_s": timeout})
            clients[(mode, timeout)] = TestClient(create_app(settings, retriever)).__enter__()
        return clients[(mode, timeout)]

    yield client
    for c in clients.values():
        c.__exit__(None, None, None)


def test_answer_is_off_without_llm_base_url(client: TestClient) -> None:
    response = client.post("/answer", json={"question": QUESTION})
    assert response.status_code == 404
    assert "llm_base_url" in response.json()["error"]["message"]


def test_answer_refuses_unknown_fields_naming_stream(client: TestClient) -> None:
    response = client.post("/answer", json={"question": QUESTION, "streem": True})
    assert response.status_code == 422
    assert response.json()["error"]["message"] == "unknown field 'streem' (accepted: question, top_k, token_budget, stream)"


def test_answer_checks_every_citation(answering, client: TestClient) -> None:
    response = answering().post("/answer", json={"question": QUESTION, "top_k": 3})
    assert response.status_code == 200, response.text
    body = response.json()
    query = client.post("/query", json={"question": QUESTION, "top_k": 3}).json()
    assert body["results"] == query["results"]  # the passages sent are /query's, cited the same way
    assert body["index_build"] == query["index_build"] and body["model"] == "test-model"
    assert body["supported"] is False
    assert [(m["marker"], m["number"]) for m in body["invalid_citations"]] == [("[9]", 9)]
    first, second = body["sentences"]
    assert first["supported"] and first["citations"] == [1] and body["answer"][first["start"]:first["end"]] == first["text"]
    evidence = first["evidence"]
    assert evidence["passage"] == 1 and GOLD in evidence["text"]
    c = evidence["citation"]
    assert source_text(c["source"])[c["start"]:c["end"]] == evidence["text"]  # exact, like every citation
    assert not second["supported"] and second["reason"] == "invalid_citation"


def test_answer_streams_passages_deltas_then_the_checked_answer(answering) -> None:
    with answering().stream("POST", "/answer", json={"question": QUESTION, "top_k": 3, "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _events(response.iter_lines())
    names = [name for name, _ in events]
    assert names[0] == "passages" and names[-1] == "answer" and names.count("delta") > 3
    assert len(events[0][1]["results"]) == 3
    final = events[-1][1]
    assert "".join(data["text"] for name, data in events if name == "delta") == final["answer"]
    assert final["supported"] is False and final["sentences"][0]["supported"] and final["model"] == "test-model"


@pytest.mark.parametrize(("mode", "status"), [("fail", 502), ("garbage", 502), ("notchat", 502), ("slow", 504)])
def test_answer_maps_endpoint_failures_to_502_and_504(answering, mode: str, status: int) -> None:
    response = answering(mode, timeout=0.5).post("/answer", json={"question": QUESTION})
    assert response.status_code == status
    error = response.json()["error"]
    assert error["status"] == status and "model endpoint" in error["message"]


@pytest.mark.parametrize("mode", ["cut", "stop"])
def test_a_stream_that_breaks_ends_with_an_error_event(answering, mode: str) -> None:
    with answering(mode).stream("POST", "/answer", json={"question": QUESTION, "stream": True}) as response:
        assert response.status_code == 200
        events = _events(response.iter_lines())
    assert events[0][0] == "passages" and events[-1][0] == "error"
    assert events[-1][1]["error"]["status"] == 502


def test_a_failing_endpoint_fails_a_stream_before_any_event(answering) -> None:
    response = answering("fail").post("/answer", json={"question": QUESTION, "stream": True})
    assert response.status_code == 502 and response.headers["content-type"].startswith("application/json")


def test_answer_is_in_the_openapi_schema(answering) -> None:
    spec = answering().get("/openapi.json").json()
    operation = spec["paths"]["/answer"]["post"]
    assert {"404", "422", "502", "504"} <= set(operation["responses"])
    assert "text/event-stream" in operation["responses"]["200"]["content"]


def _events(lines) -> list[tuple[str, dict]]:
    events, name = [], None
    for line in lines:
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            events.append((name, json.loads(line[5:])))
    return events

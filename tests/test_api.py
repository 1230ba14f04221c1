"""The HTTP API against a real index of the seeds built with the real model."""

from __future__ import annotations

import json

import pytest

from index.tokens import count_tokens
from tests.conftest import SEEDS, source_text


@pytest.fixture(scope="module")
def retriever(store_retriever):
    """Every test here runs on both stores (tests.conftest.STORES)."""
    return store_retriever


@pytest.fixture(scope="module")
def client(seed_settings, retriever):
    from fastapi.testclient import TestClient

    from service.app import create_app

    with TestClient(create_app(seed_settings, retriever)) as c:
        yield c


@pytest.fixture(scope="module")
def live_server(seed_settings, retriever):
    from tests.conftest import serving

    with serving(seed_settings, retriever) as url:
        yield url

FURNITURE = (
    "ALSO READ", "WATCH |", "Last Updated On", "Originally Added On", "Popular posts", "Related Posts",
    "characters left", "Star Rating", "Rate this Article", "Post your Comment", "click here",
    "Accessibility links", "undesirable organization", "views expressed", "Subscribe to this", "More here:",
    "16x9 Image", "Breaking News", "Click to buy",
)


def post(client, body, **kwargs):
    return client.post("/query", json=body, **kwargs)


def test_query_returns_ranked_passages_whose_citations_slice_back_exactly(client) -> None:
    response = post(client, {"question": "What did Beijing ask Mullah Omar in 2000?"})
    assert response.status_code == 200
    body = response.json()
    assert body["question"] == "What did Beijing ask Mullah Omar in 2000?"
    assert [r["rank"] for r in body["results"]] == [1, 2, 3, 4, 5]
    assert body["took_ms"] > 0
    for result in body["results"]:
        c = result["citation"]
        assert source_text(c["source"])[c["start"] : c["end"]] == result["text"]
        assert c["doc_id"] == c["source"].removesuffix(".txt") and c["title"]
        assert result["tokens"] == count_tokens(result["text"])
    top3 = " ".join(r["text"] for r in body["results"][:3])
    assert "pressed Omar to stop harboring ethnic Uyghur militants" in top3


def test_question_is_trimmed_and_top_k_respected(client) -> None:
    body = post(client, {"question": "  Who is Chen Wenqing?  ", "top_k": 2}).json()
    assert body["question"] == "Who is Chen Wenqing?" and len(body["results"]) == 2


def test_token_budget_returns_top_passages_that_fit(client) -> None:
    body = post(client, {"question": "ETIM fighters", "top_k": 10, "token_budget": 300}).json()
    assert body["results"] and sum(r["tokens"] for r in body["results"]) <= 300
    assert 0 < body["best_cosine"] <= 1


def test_a_budget_nothing_fits_returns_no_results_and_says_nothing_about_them(client) -> None:
    body = post(client, {"question": "ETIM fighters", "token_budget": 5}).json()
    assert body["results"] == [] and body["answer"] is None and body["best_cosine"] is None


def test_health_reports_what_is_loaded(client, retriever) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["documents"] == 5 and body["passages"] == len(retriever.passages)
    assert body["model"] == "all-MiniLM-L6-v2" and body["model_fingerprint"].startswith("sha256:")
    assert body["index_built_at"].endswith("Z")


def test_documents_lists_every_seed_with_title_and_passage_count(client, retriever) -> None:
    documents = client.get("/documents").json()["documents"]
    assert [d["source"] for d in documents] == sorted(p.name for p in SEEDS.glob("*.txt"))
    assert sum(d["passages"] for d in documents) == len(retriever.passages)
    titles = {d["doc_id"]: d["title"] for d in documents}
    assert titles["004_bbbee28aa1debc71"] == "Explainer: Why Is China Talking To The Taliban?"


@pytest.mark.parametrize(
    "question",
    [
        "Islam Has Massacred Over 669+ Million Non-Muslims",  # a "popular posts" link
        "Jackboot Wikipedia the free encyclopedia Last Updated On June 16th, 2016",  # the 80-link list
        "Breitbart News Sweden's feminist government",
        "Post your Comment 2000 characters left",  # the comment box
        "Star Rating Loader Please wait Rate this Article",
        "Subscribe to this biweekly dispatch newsletter China In Eurasia",
        "RFE/RL undesirable organization fines or imprisonment for sharing",
        "ALSO READ Afghans flee Taliban packed in cars",
        "The flag of the Islamic Emirate on the wall of US Embassy Wikimedia Commons",  # credited caption
        "Mullah Abdul Ghani Baradar arrives with a Taliban delegation in Moscow",  # repeated caption
    ],
)
def test_no_result_contains_web_page_furniture(client, question) -> None:
    results = post(client, {"question": question, "top_k": 50}).json()["results"]
    for result in results:
        assert not any(marker.lower() in result["text"].lower() for marker in FURNITURE), result["text"][:120]


def test_a_repeated_caption_comes_back_once_at_most(client) -> None:
    results = post(client, {"question": "Baradar Taliban delegation talks in Moscow May 28, 2019", "top_k": 50}).json()["results"]
    texts = [r["text"] for r in results if "third from left" in r["text"]]
    assert len(texts) == 1 and texts[0].count("third from left") == 1


BAD_INPUTS = [
    ({"question": ""}, 422, "question must not be empty or only whitespace"),
    ({"question": " \n\t "}, 422, "question must not be empty or only whitespace"),
    ({"question": "x" * 1001}, 422, "question is longer than 1000 characters"),
    ({"question": "ok", "top_k": 0}, 422, "top_k: Input should be greater than or equal to 1"),
    ({"question": "ok", "top_k": 51}, 422, "top_k: Input should be less than or equal to 50"),
    ({"question": "ok", "top_k": "5"}, 422, "top_k: Input should be a valid integer"),
    ({"question": "ok", "top_k": 2.5}, 422, "top_k: Input should be a valid integer"),
    ({"question": "ok", "top_k": True}, 422, "top_k: Input should be a valid integer"),
    ({"question": 42}, 422, "question: Input should be a valid string"),
    ({"question": None}, 422, "question: Input should be a valid string"),
    ({"question": ["a"]}, 422, "question: Input should be a valid string"),
    ({"question": "ok", "token_budget": 0}, 422, "token_budget: Input should be greater than or equal to 1"),
    ({}, 422, "question is required"),
    ({"question": "ok", "topk": 3}, 422, "unknown field 'topk' (accepted: question, top_k, token_budget)"),
    ([{"question": "ok"}], 422, "request body must be a JSON object"),
    ("What is ETIM?", 422, "request body must be a JSON object"),
]


@pytest.mark.parametrize(("body", "status", "message"), BAD_INPUTS)
def test_bad_input_gets_a_4xx_with_a_json_message(client, body, status, message) -> None:
    response = post(client, body)
    assert response.status_code == status
    assert response.json()["error"] == {**response.json()["error"], "status": status, "message": message}


@pytest.mark.parametrize(
    ("content", "headers", "status", "message"),
    [
        (b'{"question": "ok",', {"content-type": "application/json"}, 400, "request body is not valid JSON"),
        (b"\xff\xfe not utf-8", {"content-type": "application/json"}, 400, "request body is not valid JSON"),
        (b"", {"content-type": "application/json"}, 422, "request body is required: a JSON object with a question"),
        (b'{"question": "ok"}', {"content-type": "text/plain"}, 415, "send the body as JSON with the header content-type: application/json"),
    ],
)
def test_malformed_bodies_get_a_clear_4xx(client, content, headers, status, message) -> None:
    response = client.post("/query", content=content, headers=headers)
    assert (response.status_code, response.json()["error"]["message"]) == (status, message)


def test_huge_body_is_refused_before_parsing(client, seed_settings) -> None:
    body = json.dumps({"question": "x" * (seed_settings.max_body_bytes + 10)}).encode()
    response = client.post("/query", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["message"] == f"request body is larger than {seed_settings.max_body_bytes} bytes"


def test_huge_chunked_body_without_content_length_is_refused(client, seed_settings) -> None:
    def chunks():
        for _ in range(seed_settings.max_body_bytes // 1000 + 2):
            yield b" " * 1000

    response = client.post("/query", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


@pytest.mark.parametrize(("method", "path", "status"), [("GET", "/query", 405), ("GET", "/nowhere", 404)])
def test_wrong_routes_use_the_same_error_shape(client, method, path, status) -> None:
    response = client.request(method, path)
    assert response.status_code == status and response.json()["error"]["status"] == status


def test_openapi_documents_the_limits(client) -> None:
    schema = client.get("/openapi.json").json()["components"]["schemas"]["QueryRequest"]
    assert schema["properties"]["top_k"]["maximum"] == 50
    assert schema["properties"]["question"]["maxLength"] == 1000
    assert schema["additionalProperties"] is False


def test_real_http_server_answers_and_rejects_like_the_test_client(live_server) -> None:
    import httpx

    with httpx.Client(base_url=live_server, timeout=30) as http:
        ok = http.post("/query", json={"question": "What did Beijing ask Mullah Omar in 2000?", "top_k": 3})
        assert ok.status_code == 200 and ok.headers["content-type"] == "application/json"
        for result in ok.json()["results"]:
            c = result["citation"]
            assert source_text(c["source"])[c["start"] : c["end"]] == result["text"]
        bad = http.post("/query", content=b"{not json", headers={"content-type": "application/json"})
        assert bad.status_code == 400 and bad.json()["error"]["message"] == "request body is not valid JSON"
        huge = http.post("/query", content=b"x" * 100_000, headers={"content-type": "application/json"})
        assert huge.status_code == 413
        assert http.get("/health").json()["status"] == "ok"


def test_every_response_says_nosniff_and_no_redirect_echoes_the_host(client) -> None:
    for reply in (client.get("/health"), client.get("/nowhere"), client.post("/query", json={})):
        assert reply.headers["x-content-type-options"] == "nosniff"
    reply = client.get("/health/", headers={"host": "evil.example.com"}, follow_redirects=False)
    assert reply.status_code == 404 and "location" not in reply.headers
    assert reply.json()["error"]["status"] == 404


def test_readiness_fails_with_503_once_the_lane_has_stopped(seed_settings, retriever) -> None:
    from fastapi.testclient import TestClient

    from service.app import create_app

    with TestClient(create_app(seed_settings, retriever)) as local:
        assert local.get("/readyz").status_code == 200
        local.app.state.lane.close()
        reply = local.get("/readyz")
        assert reply.status_code == 503 and reply.headers["retry-after"] == "1" and "not ready" in reply.json()["error"]["message"]
        assert local.get("/livez").status_code == 200


# Schema conformance: what the OpenAPI document says is exactly what the server does.


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/query", "POST"),
        ("PUT", "/query", "POST"),
        ("POST", "/health", "GET"),
        ("DELETE", "/documents", "GET"),
        ("POST", "/livez", "GET"),
        ("PATCH", "/readyz", "GET"),
    ],
)
def test_a_wrong_method_gets_405_with_the_allowed_methods(client, method, path, allow) -> None:
    reply = client.request(method, path)
    assert reply.status_code == 405 and reply.headers["allow"] == allow
    assert reply.json()["error"] == {"status": 405, "message": "Method Not Allowed", "details": []}


@pytest.mark.parametrize("top_k", [30.0, 1.0, 50.0])
def test_an_integral_float_top_k_is_an_integer_as_json_schema_says(client, top_k) -> None:
    reply = post(client, {"question": "ETIM fighters", "top_k": top_k, "token_budget": 100_000.0})
    assert reply.status_code == 200 and len(reply.json()["results"]) == int(top_k)


@pytest.mark.parametrize(
    ("top_k", "message"),
    [
        (30.5, "top_k: Input should be a valid integer"),
        ("5", "top_k: Input should be a valid integer"),
        ("30.0", "top_k: Input should be a valid integer"),
        (False, "top_k: Input should be a valid integer"),
        (51.0, "top_k: Input should be less than or equal to 50"),
        (0.0, "top_k: Input should be greater than or equal to 1"),
    ],
)
def test_top_k_refuses_what_is_not_an_integer_in_range(client, top_k, message) -> None:
    reply = post(client, {"question": "ok", "top_k": top_k})
    assert (reply.status_code, reply.json()["error"]["message"]) == (422, message)


@pytest.mark.parametrize(
    "question",
    ["x" * 1000, " " + "x" * 999, "x" * 999 + "\n", " " * 999 + "x", "?", "\u200b"],  # \u200b is not whitespace
)
def test_a_question_of_at_most_1000_characters_as_sent_with_one_not_whitespace_is_accepted(client, question) -> None:
    reply = post(client, {"question": question, "top_k": 1})
    assert reply.status_code == 200 and reply.json()["question"] == question.strip()


@pytest.mark.parametrize(
    ("question", "message"),
    [
        (" " + "x" * 1000, "question is longer than 1000 characters"),  # 1,001 characters as sent, 1,000 trimmed
        ("x" * 1000 + " ", "question is longer than 1000 characters"),
        (" " * 1001, "question is longer than 1000 characters"),
        (" " * 1000, "question must not be empty or only whitespace"),
        ("\u3000\u00a0\ufeff\u2028", "question must not be empty or only whitespace"),
        ("\x1c\x1f\x85", "question must not be empty or only whitespace"),
    ],
)
def test_a_question_breaking_the_schema_rule_is_refused(client, question, message) -> None:
    reply = post(client, {"question": question})
    assert (reply.status_code, reply.json()["error"]["message"]) == (422, message)


def test_the_whitespace_the_server_trims_is_the_whitespace_the_schema_pattern_excludes() -> None:
    import re

    from pydantic import TypeAdapter, ValidationError

    from service.schemas import QUESTION_PATTERN, WHITESPACE, Question

    adapter = TypeAdapter(Question)
    # Every code point of the Basic Multilingual Plane (the set holds none beyond it), surrogates aside.
    for code in (c for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF):
        char = chr(code)
        whitespace = char in WHITESPACE
        assert (re.fullmatch(QUESTION_PATTERN, char) is None) == whitespace, hex(code)
        assert (char.isspace() or char == "\ufeff") == whitespace, hex(code)  # Python's set plus ECMAScript's BOM
        try:
            assert adapter.validate_python(char) == char and not whitespace, hex(code)
        except ValidationError:
            assert whitespace, hex(code)


def test_a_body_that_is_not_utf8_gets_400_in_the_error_shape(client) -> None:
    reply = client.post("/query", content=b'{"question": "\xde\xad\xbe\xef"}', headers={"content-type": "application/json"})
    assert reply.status_code == 400
    assert reply.json()["error"] == {"status": 400, "message": "request body is not valid JSON", "details": []}


def test_openapi_lists_every_error_status_each_operation_can_return(client) -> None:
    from service.schemas import QUESTION_PATTERN

    document = client.get("/openapi.json").json()
    statuses = {
        (method.upper(), path): sorted(int(s) for s in operation["responses"])
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }
    assert statuses == {
        ("POST", "/query"): [200, 400, 401, 405, 408, 413, 415, 422, 500, 503],
        ("POST", "/answer"): [200, 400, 401, 404, 405, 408, 413, 415, 422, 500, 502, 503, 504],
        ("GET", "/health"): [200, 401, 405, 408, 413, 500, 503],
        ("GET", "/documents"): [200, 401, 405, 408, 413, 500, 503],
        ("GET", "/documents/{doc_id}/text"): [200, 401, 404, 405, 408, 413, 422, 500, 503],
        ("GET", "/metrics"): [200, 401, 405, 408, 413, 500, 503],
        ("GET", "/livez"): [200, 405, 408, 413, 500, 503],
        ("GET", "/readyz"): [200, 405, 408, 413, 500, 503],
    }
    for operations in document["paths"].values():
        for operation in operations.values():
            for status, reply in operation["responses"].items():
                if status != "200":
                    assert reply["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
            assert operation["responses"]["405"]["headers"]["Allow"]["required"] is True
    question = document["components"]["schemas"]["QueryRequest"]["properties"]["question"]
    assert (question["minLength"], question["maxLength"], question["pattern"]) == (1, 1000, QUESTION_PATTERN)


def test_with_an_api_key_every_route_but_the_probes_answers_401_as_documented(seed_settings, retriever) -> None:
    from fastapi.testclient import TestClient
    from pydantic import SecretStr

    from service.app import create_app

    keyed = seed_settings.model_copy(update={"api_key": SecretStr("s3cret")})
    with TestClient(create_app(keyed, retriever)) as local:
        document = local.get("/openapi.json", headers={"authorization": "Bearer s3cret"}).json()
        for method, path in [("POST", "/query"), ("GET", "/health"), ("GET", "/documents")]:
            reply = local.request(method, path, json={"question": "ok"} if method == "POST" else None)
            assert reply.status_code == 401 and reply.json()["error"]["status"] == 401
            documented = document["paths"][path][method.lower()]["responses"]["401"]
            assert documented["headers"]["WWW-Authenticate"]["required"] and reply.headers["www-authenticate"].startswith("Bearer")
        for path in ("/livez", "/readyz"):
            assert local.get(path).status_code == 200 and "401" not in document["paths"][path]["get"]["responses"]

"""The optional API key, CORS origins, the docs switch and the open-network warning, on the real app."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient

from service.access import is_loopback, warn_if_open
from service.app import create_app
from service.settings import Settings

KEY = "s3cret-key-for-tests"
ASK = {"question": "Who is Chen Wenqing?", "top_k": 1}


@contextmanager
def app_client(seed_settings: Settings, retriever, **changes) -> Iterator[TestClient]:
    settings = Settings(**{**seed_settings.model_dump(), **changes})  # validated: the key becomes a SecretStr
    with TestClient(create_app(settings, retriever)) as client:
        yield client


def test_with_a_key_every_route_that_reveals_the_corpus_needs_it(seed_settings: Settings, retriever) -> None:
    with app_client(seed_settings, retriever, api_key=KEY) as client:
        for method, path in (("POST", "/query"), ("GET", "/health"), ("GET", "/documents")):
            refused = client.request(method, path, json=ASK if method == "POST" else None)
            assert refused.status_code == 401, path
            assert refused.json()["error"]["status"] == 401 and "Authorization: Bearer" in refused.json()["error"]["message"]
            assert refused.headers["www-authenticate"].startswith("Bearer")
            wrong = client.request(method, path, json=ASK if method == "POST" else None, headers={"Authorization": "Bearer " + KEY[:-1]})
            assert wrong.status_code == 401 and wrong.json()["error"]["message"] == "wrong API key"
        answered = client.post("/query", json=ASK, headers={"Authorization": f"Bearer {KEY}"})
        assert answered.status_code == 200 and answered.json()["results"]
        assert client.get("/documents", headers={"authorization": f"bearer {KEY}"}).status_code == 200  # the scheme is case-insensitive
        # probes stay open: an orchestrator checks them without the key
        assert client.get("/livez").status_code == 200 and client.get("/readyz").status_code == 200


def test_without_a_key_the_api_is_open(client: TestClient) -> None:
    assert client.post("/query", json=ASK).status_code == 200


def test_cors_answers_preflights_only_for_the_configured_origins(seed_settings: Settings, retriever) -> None:
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    with app_client(seed_settings, retriever, cors_origins=["https://app.example"], api_key=KEY) as client:
        allowed = client.options("/query", headers=preflight)
        assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == "https://app.example"
        other = client.options("/query", headers={**preflight, "Origin": "https://evil.example"})
        assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
        assert "Disallowed CORS origin" in other.json()["error"]["message"]
        asked = client.post("/query", json=ASK, headers={"Origin": "https://app.example", "Authorization": f"Bearer {KEY}"})
        assert asked.status_code == 200 and asked.headers["access-control-allow-origin"] == "https://app.example"
    with app_client(seed_settings, retriever) as client:  # none by default: a browser on another origin gets no grant
        asked = client.post("/query", json=ASK, headers={"Origin": "https://app.example"})
        assert "access-control-allow-origin" not in asked.headers


def test_the_docs_pages_can_be_turned_off(seed_settings: Settings, retriever) -> None:
    with app_client(seed_settings, retriever, api_docs=False) as client:
        for path in ("/docs", "/redoc", "/openapi.json"):
            gone = client.get(path)
            assert gone.status_code == 404 and gone.json()["error"]["status"] == 404
        assert client.post("/query", json=ASK).status_code == 200


@pytest.mark.parametrize(
    ("host", "has_key", "warned"),
    [("0.0.0.0", False, True), ("::", False, True), ("192.168.1.5", False, True), ("api.internal", False, True),
     ("0.0.0.0", True, False), ("127.0.0.1", False, False), ("::1", False, False), ("localhost", False, False)],
)
def test_binding_beyond_loopback_without_a_key_warns(host: str, has_key: bool, warned: bool, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="service.access"):
        assert warn_if_open(host, has_key) is warned
    assert ("without an api_key" in caplog.text) is warned
    assert is_loopback(host) is (host in ("127.0.0.1", "::1", "localhost"))

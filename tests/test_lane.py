"""The inference lane: batching keeps each question's ranking, the cache skips the model, and a
full queue or a slow answer becomes a deliberate 503 through a real uvicorn server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from index import SearchOptions, SearchResult
from service.lane import InferenceLane, VectorCache
from service.settings import Settings
from eval.questions import load_questions
from tests.conftest import ROOT, SEEDS, gated, serving

QUESTIONS = [
    "Who is Chen Wenqing?",
    "What did Beijing ask Mullah Omar in 2000?",
    "Which group attacked Chinese nationals in Kabul?",
    "What is the East Turkestan Islamic Movement?",
    "When did the Taliban take Kabul?",
    "Why does China worry about Afghanistan?",
    "What is ISKP?",
    "Which minerals does Afghanistan have?",
    "Who leads the Islamic State in Khorasan?",
    "What does the Taliban want from Beijing?",
    "Where is the Wakhan corridor?",
    "How did the Uyghur militants reach Syria?",
]


def _ranking(result: SearchResult) -> list[tuple[tuple[str, int, int], float]]:
    return [((h.passage.doc_id, h.passage.start, h.passage.end), h.score) for h in result.hits]


def assert_same_ranking_up_to_ties(a: SearchResult, b: SearchResult, tol: float = 1e-5) -> None:
    """Same passages in the same order, except that passages whose scores tie (within ``tol``,
    ~100x float noise) may trade places."""
    ra, rb = _ranking(a), _ranking(b)
    assert len(ra) == len(rb)
    for (ka, sa), (kb, sb) in zip(ra, rb, strict=True):
        assert abs(sa - sb) <= tol
        if ka != kb:
            tied = {k for k, s in ra if abs(s - sa) <= tol}
            assert kb in tied, (ka, kb)


def _wait_until(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_questions_waiting_together_share_one_forward_pass_and_keep_their_ranking(retriever, gate) -> None:
    """Every question of the eval set ranks alone as it does in a batch of 16: batching cannot
    move the eval's numbers."""
    questions = list(dict.fromkeys(q.question for q in load_questions(ROOT / "eval" / "questions.jsonl", SEEDS)))
    slow = gated(retriever, gate)
    lane = InferenceLane(slow, max_batch=16, cache_size=0).start()
    options = SearchOptions(top_k=10)

    async def ask_all() -> list[SearchResult]:
        first = asyncio.create_task(lane.search(questions[0], options, timeout=120))
        await asyncio.to_thread(slow.embedder.entered.wait, 30)  # the first question is in the model
        rest = [asyncio.create_task(lane.search(q, options, timeout=120)) for q in questions[1:]]
        await asyncio.to_thread(_wait_until, lambda: lane.stats()["queued"] == len(rest))
        gate.set()  # the others have waited together
        return await asyncio.gather(first, *rest)

    try:
        results = asyncio.run(ask_all())
    finally:
        lane.close()
    full, last = divmod(len(questions) - 1, 16)
    assert slow.embedder.calls == [1] + [16] * full + ([last] if last else [])
    assert lane.stats()["largest_batch"] == 16
    for question, result in zip(questions, results, strict=True):
        assert_same_ranking_up_to_ties(result, retriever.search(question, options))


def test_a_batch_mixing_top_k_and_budgets_answers_each_as_asked(retriever) -> None:
    questions = QUESTIONS[:4]
    options = [SearchOptions(top_k=3), SearchOptions(top_k=20), SearchOptions(top_k=10, token_budget=300), SearchOptions(top_k=1)]
    together = retriever.search_encoded(questions, retriever.embedder.encode(questions), options)
    for question, option, result in zip(questions, options, together, strict=True):
        assert_same_ranking_up_to_ties(result, retriever.search(question, option))
    assert [len(r.hits) for r in together][::3] == [3, 1] and len(together[1].hits) == 20


def test_a_repeated_question_skips_the_model(retriever) -> None:
    lane = InferenceLane(retriever, cache_size=8).start()
    options = SearchOptions(top_k=5)

    async def ask() -> list[SearchResult]:
        return [await lane.search(q, options, timeout=60) for q in ("Who is Chen Wenqing?", "  Who is   Chen Wenqing? ", "who is chen wenqing?")]

    try:
        first, spaced, lowered = asyncio.run(ask())
    finally:
        lane.close()
    stats = lane.stats()
    # the bundled MiniLM lowercases its input, so case cannot change the vector either
    assert stats["encoded"] == 1 and stats["cache"]["hits"] == 2 and stats["cache"]["hit_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert _ranking(first) == _ranking(spaced)
    assert [k for k, _ in _ranking(first)] == [k for k, _ in _ranking(lowered)]


def test_the_cache_forgets_the_least_recent_and_never_mixes_models() -> None:
    cache = VectorCache(2, "sha256:a", lowercase=False)
    a, b, c = (np.full(3, v, dtype=np.float32) for v in (1, 2, 3))
    cache.put(cache.key("a"), a)
    cache.put(cache.key("b"), b)
    assert cache.get(cache.key("a")) is a  # now "b" is the least recent
    cache.put(cache.key("c"), c)
    assert cache.get(cache.key("b")) is None and cache.get(cache.key("c")) is c
    assert cache.key("Q") != cache.key("q")  # a cased model: case changes the vector
    other = VectorCache(2, "sha256:b", lowercase=False)
    assert other.key("a") != cache.key("a")
    assert VectorCache(0, "sha256:a", lowercase=False).put(cache.key("a"), a) is None


def _post(url: str, question: str) -> httpx.Response:
    return httpx.post(url + "/query", json={"question": question}, timeout=60)


def _health(url: str) -> dict:
    return httpx.get(url + "/health", timeout=5).json()["lane"]


def test_a_full_queue_answers_503_with_retry_after_and_loses_nothing_queued(seed_settings: Settings, retriever, gate) -> None:
    settings = seed_settings.model_copy(update={"max_queue": 2, "cache_size": 0})
    slow = gated(retriever, gate)
    with serving(settings, slow) as url, ThreadPoolExecutor(4) as pool:
        held = pool.submit(_post, url, QUESTIONS[0])
        assert slow.embedder.entered.wait(30)  # the first question is in the (held) model
        queued = [pool.submit(_post, url, q) for q in QUESTIONS[1:3]]
        _wait_until(lambda: _health(url)["queued"] == 2)
        refused = _post(url, QUESTIONS[3])
        assert refused.status_code == 503 and int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"]["status"] == 503 and "capacity" in refused.json()["error"]["message"]
        assert _health(url)["rejected"] == 1
        gate.set()
        answered = [f.result(timeout=60) for f in (held, *queued)]
    assert [r.status_code for r in answered] == [200, 200, 200]
    assert all(r.json()["results"] for r in answered)


def test_a_question_not_answered_in_time_gets_503_and_is_then_skipped(seed_settings: Settings, retriever, gate) -> None:
    # long enough that the unhindered question below is answered in time on a busy machine (a
    # forward pass took 484 ms with both cores taken, docs/serving.md), short enough to wait for
    settings = seed_settings.model_copy(update={"request_timeout_ms": 2000, "cache_size": 0})
    slow = gated(retriever, gate)
    with serving(settings, slow) as url, ThreadPoolExecutor(2) as pool:
        started = time.monotonic()
        first = pool.submit(_post, url, QUESTIONS[0])
        assert slow.embedder.entered.wait(30)
        second = pool.submit(_post, url, QUESTIONS[1])  # queued behind the held one
        timed_out = [first.result(timeout=30), second.result(timeout=30)]
        waited = time.monotonic() - started
        assert [r.status_code for r in timed_out] == [503, 503] and waited < 10
        assert "not answered within 2000 ms" in timed_out[0].json()["error"]["message"]
        assert "retry-after" in timed_out[0].headers
        gate.set()
        _wait_until(lambda: _health(url)["queued"] == 0 and _health(url)["questions"] >= 1)
        ok = _post(url, QUESTIONS[2])
        lane = _health(url)
    assert ok.status_code == 200 and ok.json()["results"]
    # the question already in the model finished unseen; the one still queued was never computed
    assert lane["timed_out"] == 2 and lane["skipped"] == 1 and lane["questions"] == 2 and lane["encoded"] == 2


def test_probes_answer_while_the_model_is_busy(seed_settings: Settings, retriever, gate) -> None:
    slow = gated(retriever, gate)
    with serving(seed_settings.model_copy(update={"cache_size": 0}), slow) as url, ThreadPoolExecutor(2) as pool:
        held = pool.submit(_post, url, QUESTIONS[0])
        assert slow.embedder.entered.wait(30)  # the model is held: a question now would wait
        live, ready = httpx.get(url + "/livez", timeout=5), httpx.get(url + "/readyz", timeout=5)
        assert live.status_code == 200 and live.json()["status"] == "ok"
        assert ready.status_code == 200 and ready.json() == {"status": "ready", "index_build": retriever.stored.path.name}
        assert live.headers["x-content-type-options"] == "nosniff"
        gate.set()
        assert held.result(timeout=60).status_code == 200

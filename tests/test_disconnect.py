"""A client that disconnects before its answer is ready costs no model time, through a real uvicorn server."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from service.settings import Settings
from tests.conftest import gated, serving
from tests.test_lane import QUESTIONS, _health, _post, _wait_until


def _ask_and_hang_up(url: str, question: str) -> str:
    try:
        httpx.post(url + "/query", json={"question": question}, timeout=0.5)
    except httpx.TimeoutException:  # the client gives up and closes its connection
        return "gave up"
    return "answered"


def test_questions_of_clients_that_hung_up_are_never_computed(seed_settings: Settings, retriever, gate) -> None:
    slow = gated(retriever, gate)
    with serving(seed_settings.model_copy(update={"cache_size": 0}), slow) as url, ThreadPoolExecutor(6) as pool:
        held = pool.submit(_post, url, QUESTIONS[0])
        assert slow.embedder.entered.wait(30)  # the model is busy: the next questions queue
        gone = list(pool.map(_ask_and_hang_up, [url] * 5, QUESTIONS[1:6]))
        assert gone == ["gave up"] * 5
        _wait_until(lambda: _health(url)["queued"] == 0)  # dropped from the queue once their clients left
        gate.set()
        assert held.result(timeout=60).status_code == 200
        after = _post(url, QUESTIONS[6])
        lane = _health(url)
    assert after.status_code == 200
    assert lane["skipped"] == 5 and lane["questions"] == 2 and lane["encoded"] == 2

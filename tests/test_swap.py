"""A running server follows a newly published build between requests, and ignores one it cannot read."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from index import IndexConfig, Retriever, build_index
from index.store import POINTER
from service.settings import Settings
from service.swap import IndexWatcher
from tests.conftest import serving

FERRY = (
    "Ferry Timetable Changes for Winter\n\n"
    "The island ferry will run four times a day from November. The last boat leaves at six in the evening.\n"
)


def test_a_build_published_while_serving_is_answered_from_within_seconds(small_corpus: Path, tmp_path: Path, embedder) -> None:
    config = IndexConfig(corpus_dir=small_corpus, index_dir=tmp_path / "index")
    settings = Settings(corpus_dir=small_corpus, index_dir=config.index_dir, reload_interval_s=0.1)
    first = build_index(config, embedder)
    with serving(settings, Retriever(embedder, first)) as url:
        ask = {"question": "When does the last ferry boat leave?", "top_k": 1}
        assert httpx.post(url + "/query", json=ask).json()["results"][0]["citation"]["source"] != "ferry.txt"
        (small_corpus / "ferry.txt").write_text(FERRY, encoding="utf-8")
        second = build_index(config, embedder)  # what `cited index` does from another process
        deadline = time.monotonic() + 10
        while httpx.get(url + "/health").json()["documents"] != 3:
            assert time.monotonic() < deadline, "the server did not switch to the new build"
            time.sleep(0.05)
        top = httpx.post(url + "/query", json=ask).json()["results"][0]
    assert top["citation"]["source"] == "ferry.txt"
    assert second.path.name != first.path.name


def test_an_unreadable_new_build_is_refused_and_the_live_one_keeps_serving(small_corpus: Path, tmp_path: Path, embedder, caplog) -> None:
    config = IndexConfig(corpus_dir=small_corpus, index_dir=tmp_path / "index")
    live = Retriever(embedder, build_index(config, embedder))
    swapped: list[Retriever] = []
    watcher = IndexWatcher(live, config.index_dir, swapped.append, interval=60)
    assert not watcher.check()  # nothing new
    (config.index_dir / POINTER).write_text("build-that-was-deleted\n", encoding="utf-8")
    assert not watcher.check() and watcher.current is live and swapped == []
    assert "not switching to the new index build build-that-was-deleted" in caplog.text
    newer = build_index(config, embedder)
    assert watcher.check() and swapped[0].stored.path == newer.path and watcher.current is swapped[0]


def test_a_swap_under_sixteen_clients_fails_no_request(small_corpus: Path, tmp_path: Path, embedder) -> None:
    config = IndexConfig(corpus_dir=small_corpus, index_dir=tmp_path / "index")
    settings = Settings(corpus_dir=small_corpus, index_dir=config.index_dir, reload_interval_s=0.1)
    ask = {"question": "When does the last ferry boat leave?", "top_k": 1}
    statuses: list[int] = []
    sources: list[str] = []
    answered: list[tuple[float, float, str]] = []  # (sent, answered, top source) per successful request
    stop = threading.Event()

    def client(url: str) -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while not stop.is_set():
                sent = time.monotonic()
                reply = http.post("/query", json=ask)
                statuses.append(reply.status_code)
                if reply.status_code == 200:
                    source = reply.json()["results"][0]["citation"]["source"]
                    answered.append((sent, time.monotonic(), source))
                    sources.append(source)

    def wait_until(condition, what: str) -> None:  # generous: the suite may share the machine with other work
        deadline = time.monotonic() + 120
        while not condition():
            assert time.monotonic() < deadline, f"{what}; outcomes so far {sorted(set(statuses))}"
            time.sleep(0.01)

    with serving(settings, Retriever(embedder, build_index(config, embedder))) as url:
        clients = [threading.Thread(target=client, args=(url,)) for _ in range(16)]
        for t in clients:
            t.start()
        wait_until(lambda: len(statuses) >= 50, "no load before the publish")
        (small_corpus / "ferry.txt").write_text(FERRY, encoding="utf-8")
        build_index(config, embedder)
        answered_before = len(sources)
        wait_until(lambda: "ferry.txt" in sources[answered_before:], "the new build was not served")
        switched_at = sources.index("ferry.txt", answered_before)
        wait_until(lambda: len(sources) >= switched_at + 50, "no load after the switch")
        stop.set()
        for t in clients:
            t.join(30)
    assert set(statuses) == {200}, f"{len(statuses) - statuses.count(200)} failed requests"
    # once a request was answered from the new build, no request sent after that is answered from the old one
    first_new = min(done for _, done, source in answered if source == "ferry.txt")
    assert {source for sent, _, source in answered if sent > first_new} == {"ferry.txt"}


def test_watch_indexes_a_dropped_file_and_forgets_a_deleted_one(small_corpus: Path, tmp_path: Path, embedder, caplog) -> None:
    config = IndexConfig(corpus_dir=small_corpus, index_dir=tmp_path / "index")
    settings = Settings(corpus_dir=small_corpus, index_dir=config.index_dir, reload_interval_s=0.1, watch=True)
    ask = {"question": "When does the last ferry boat leave?", "top_k": 3}

    def served(url: str) -> set[str]:
        return {r["citation"]["source"] for r in httpx.post(url + "/query", json=ask).json()["results"]}

    def wait_for(condition, what: str) -> None:
        deadline = time.monotonic() + 30
        while not condition():
            assert time.monotonic() < deadline, what
            time.sleep(0.05)

    with serving(settings, Retriever(embedder, build_index(config, embedder))) as url:
        (small_corpus / "ferry.txt").write_text(FERRY, encoding="utf-8")
        wait_for(lambda: "ferry.txt" in served(url), "a dropped file was not indexed")
        (small_corpus / "broken.pdf").write_bytes(b"%PDF-1.4\nnot really a PDF\n")
        wait_for(lambda: httpx.get(url + "/health").json()["skipped"], "a bad file was not reported")
        skipped = httpx.get(url + "/health").json()["skipped"]
        assert [s["source"] for s in skipped] == ["broken.pdf"] and skipped[0]["reason"].startswith("cannot be read as a PDF (")
        assert "ferry.txt" in served(url)  # one bad file never keeps the others out
        (small_corpus / "broken.pdf").unlink()
        (small_corpus / "ferry.txt").unlink()
        wait_for(lambda: "ferry.txt" not in served(url), "a deleted file was still served")
        health = httpx.get(url + "/health").json()
        assert health["documents"] == 2 and health["skipped"] == []


def test_watch_needs_a_polling_interval() -> None:
    with pytest.raises(ValidationError, match="watch needs reload_interval_s"):
        Settings(watch=True, reload_interval_s=0)

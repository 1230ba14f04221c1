"""A running server follows a newly published build between requests, and ignores one it cannot read."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

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

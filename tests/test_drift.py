"""Drift you can see: the served build is compared with CURRENT and with the corpus, /health says
"stale" with the reasons, citations carry the file's sha256, and a failed build at start leaves
the published build serving."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from index import CorpusError, IndexConfig, Retriever, build_index, open_index
from index.build import open_serving
from index.store import POINTER
from service.app import create_app
from service.cli import main
from service.drift import drift_of
from service.settings import Settings


@pytest.fixture
def settings(small_corpus: Path, tmp_path: Path) -> Settings:
    return Settings(corpus_dir=small_corpus, index_dir=tmp_path / "index", reload_interval_s=0.1)


@pytest.fixture
def served(settings: Settings, embedder) -> Retriever:
    return Retriever(embedder, build_index(settings.index_config(), embedder))


def test_a_fresh_build_has_no_drift_and_each_change_is_named(settings: Settings, served: Retriever, small_corpus: Path) -> None:
    config = settings.index_config()
    assert drift_of(config, served).reasons == ()
    (small_corpus / "harbour.txt").write_text("The breakwater plan was withdrawn.\n", encoding="utf-8")
    (small_corpus / "orchard.txt").unlink()
    (small_corpus / "mill.txt").write_text("The old mill reopened as a museum.\n", encoding="utf-8")
    reasons = " | ".join(drift_of(config, served).reasons)
    assert "added: mill.txt" in reasons and "removed: orchard.txt" in reasons and "changed: harbour.txt" in reasons


def test_current_naming_another_build_is_drift(settings: Settings, served: Retriever) -> None:
    (settings.index_dir / POINTER).write_text("build-elsewhere\n")
    drift = drift_of(settings.index_config(), served)
    assert drift.published == "build-elsewhere" and "CURRENT names build-elsewhere" in drift.reasons[0]


def test_health_turns_stale_when_a_cited_file_changes_and_citations_carry_its_sha256(settings: Settings, served: Retriever, small_corpus: Path) -> None:
    with TestClient(create_app(settings, served)) as client:
        health = client.get("/health").json()
        assert health["status"] == "ok" and health["stale_reasons"] == [] and health["published_build"] == served.stored.path.name
        answer = client.post("/query", json={"question": "How much does the breakwater cost?", "top_k": 1}).json()
        citation = answer["results"][0]["citation"]
        assert citation["sha256"] == hashlib.sha256((small_corpus / citation["source"]).read_bytes()).hexdigest()
        assert answer["answer"]["citation"]["sha256"] == citation["sha256"] and answer["index_build"] == served.stored.path.name
        (small_corpus / citation["source"]).write_text("Rewritten after the build.\n", encoding="utf-8")
        deadline = time.monotonic() + 20
        while (health := client.get("/health").json())["status"] != "stale":
            assert time.monotonic() < deadline, health
            time.sleep(0.05)
        assert any(f"changed: {citation['source']}" in r for r in health["stale_reasons"])
        # the client can tell: the file's sha256 is no longer the cited one
        assert hashlib.sha256((small_corpus / citation["source"]).read_bytes()).hexdigest() != citation["sha256"]


def _unbuildable(corpus: Path) -> None:
    for path in corpus.iterdir():
        path.unlink()
    (corpus / "binary.txt").write_bytes(b"\xff\xfe\x00 not text \x81")


def test_a_failed_build_at_start_leaves_the_published_build_serving_and_reported_stale(settings: Settings, served: Retriever, small_corpus: Path, embedder, caplog) -> None:
    _unbuildable(small_corpus)
    config: IndexConfig = settings.index_config()
    with pytest.raises(CorpusError, match="no readable"):
        open_index(config, embedder)  # a one-off command fails
    kept = open_serving(config, embedder)  # a server keeps the published build
    assert kept.path == served.stored.path and "serving the published build" in caplog.text
    with TestClient(create_app(settings, Retriever(embedder, kept))) as client:
        health = client.get("/health").json()
        assert client.post("/query", json={"question": "apple harvest"}).status_code == 200
    assert health["status"] == "stale" and any("removed: harbour.txt" in r for r in health["stale_reasons"])


def test_cited_query_never_builds_and_names_cited_index(settings: Settings, served: Retriever, small_corpus: Path, capsys) -> None:
    _unbuildable(small_corpus)
    assert main(["query", "apple", "--corpus-dir", str(small_corpus), "--index-dir", str(settings.index_dir)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cited: error: index at ") and "is stale (corpus files" in err and "`cited index`" in err


def test_a_damaged_current_is_drift_named_by_its_file(settings: Settings, served: Retriever) -> None:
    (settings.index_dir / POINTER).write_bytes(b"\xff\xfe garbage")
    drift = drift_of(settings.index_config(), served)
    assert drift.published is None and "CURRENT" in drift.reasons[0] and "corrupt" in drift.reasons[0]

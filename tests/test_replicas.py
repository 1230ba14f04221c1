"""Replicas: several `cited serve` processes on one index folder follow a separate writer's publishes
without a failed request, never build, and survive the folder they serve being tidied away."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from index import IndexConfig, Retriever, build_index
from index.errors import ModelError
from index.store import pointed
from service import swap
from service.app import create_app, load_retriever
from service.cli import main
from service.settings import Settings
from service.swap import IndexWatcher, load_published
from eval.rolling import run_rolling
from tests.conftest import serving

FERRY = "Ferry Timetable Changes for Winter\n\nThe island ferry will run four times a day from November. The last boat leaves at six in the evening.\n"
QUESTIONS = [
    {"id": "q1", "kind": "factoid", "question": "How much does the new breakwater cost?",
     "gold": [{"source": "harbour.txt", "quote": "The project costs 14 million euros."}]},
    {"id": "q2", "kind": "factoid", "question": "How many tonnes of apples did the growers pick?",
     "gold": [{"source": "orchard.txt", "quote": "Growers in the valley picked a record 52,000 tonnes of apples this autumn."}]},
    {"id": "q3", "kind": "factoid", "question": "Who pays for the harbour project?",
     "gold": [{"source": "harbour.txt", "quote": "Half of the money comes from a regional fund"}]},
]


def test_two_replicas_in_one_process_follow_a_publish_without_a_failed_request(small_corpus: Path, tmp_path: Path, embedder) -> None:
    """The default suite's rolling update: two replica apps on real uvicorn servers (threads of this
    process, each with its own model copy: a fast tokenizer cannot serve two lanes at once), one
    index folder, clients asking them in turn, a build published by this process meanwhile."""
    config = IndexConfig(corpus_dir=small_corpus, index_dir=tmp_path / "index")
    first = build_index(config, embedder)
    replica = Settings(corpus_dir=tmp_path / "no-corpus", index_dir=config.index_dir, role="replica", reload_interval_s=0.1, cache_size=0)

    def publish(n: int) -> tuple[str, float]:
        (small_corpus / "ferry.txt").write_text(FERRY, encoding="utf-8")
        stored = build_index(config, embedder)
        return stored.path.name, (config.index_dir / "CURRENT").stat().st_mtime

    with serving(replica, load_retriever(replica, serving=True)) as one, serving(replica, load_retriever(replica, serving=True)) as two:
        report = run_rolling([one, two], [q["question"] for q in QUESTIONS], publish, clients=4, rounds=1, settle_s=0.5)
    assert report["failed"] == 0, report["outcomes"]
    last = report["publishes"][0]["build"]
    assert last != first.path.name and last == pointed(config.index_dir)
    for seen in report["per_replica"]:
        assert seen["requests"] > 0 and seen["builds_answered_from"] == [first.path.name, last], seen


def test_two_replicas_follow_a_rolling_update_by_cited_index_without_a_failed_request(small_corpus: Path, tmp_path: Path) -> None:
    """The real thing, through `cited bench rolling`: two `cited serve --role replica` processes on one
    index folder (and no corpus), clients asking them in turn, a `cited index` process publishing a changed corpus.
    (Two publishes in quick succession: the tests below. More rounds: `cited bench rolling --rounds 5`.)"""
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS), encoding="utf-8")
    out = tmp_path / "reports"
    code = main(["bench", "rolling", "--corpus-dir", str(small_corpus), "--questions", str(questions), "--replicas", "2", "--clients", "4",
                 "--rounds", "1", "--reload-interval-s", "0.2", "--work", str(tmp_path / "work"), "--out", str(out)])
    assert code == 0
    report = json.loads((out / "rolling.json").read_text(encoding="utf-8"))
    assert report["failed"] == 0, report["outcomes"]
    assert report["requests"] >= 20 and report["replicas"] == 2
    last = report["publishes"][-1]["build"]
    assert last == pointed(tmp_path / "work" / "index")
    assert len(report["publishes"]) == 1 and all(b != last for r in report["per_replica"] for b in r["builds_answered_from"][:-1])
    for replica in report["per_replica"]:
        assert replica["requests"] > 0 and replica["failed"] == 0
        assert replica["answered_from_last_build"], replica  # the clients themselves saw the new build from every replica
        assert replica["builds_answered_from"][-1] == last
    assert all(len(p["switch_s"]) == 2 and all(0 <= s < 30 for s in p["switch_s"]) for p in report["publishes"])
    assert "| replica " in (out / "rolling.md").read_text(encoding="utf-8")


def test_a_replica_serves_the_published_build_as_it_is_and_never_builds(small_corpus: Path, tmp_path: Path, embedder) -> None:
    config = IndexConfig(corpus_dir=small_corpus, index_dir=tmp_path / "index")
    built = build_index(config, embedder)
    (small_corpus / "ferry.txt").write_text(FERRY, encoding="utf-8")  # the published build is now stale against this corpus
    replica = Settings(corpus_dir=small_corpus, index_dir=config.index_dir, role="replica")
    served = load_retriever(replica, serving=True)
    assert served.stored.path == built.path  # a standalone server would have rebuilt here
    assert [p.name for p in config.index_dir.iterdir() if p.name.startswith("build-")] == [built.path.name]
    nowhere = replica.model_copy(update={"corpus_dir": tmp_path / "no-corpus-here"})
    with TestClient(create_app(nowhere, load_retriever(nowhere, serving=True))) as client:  # no corpus at all: still serves, and healthy
        health = client.get("/health").json()
        assert health["status"] == "ok" and health["index_build"] == built.path.name, health
        assert client.post("/query", json={"question": "How much does the breakwater cost?"}).json()["results"]


def test_a_replica_refuses_a_build_made_with_another_model(small_corpus: Path, tmp_path: Path, embedder, monkeypatch) -> None:
    config = IndexConfig(corpus_dir=small_corpus, index_dir=tmp_path / "index")
    build_index(config, embedder)
    monkeypatch.setattr(swap, "same_model", lambda stored, embedder: False)
    with pytest.raises(ModelError, match="give the replica the writer's model setting"):
        load_published(config.index_dir, embedder, Settings().ranking_config())


def test_a_replica_loading_a_build_tidied_away_under_it_loads_the_newer_one(small_corpus: Path, tmp_path: Path, embedder, monkeypatch) -> None:
    """Two publishes in quick succession while a replica reads: the folder it started on is deleted
    (tidy keeps CURRENT and PREVIOUS only), so it reads the build that replaced it instead of failing."""
    config = IndexConfig(corpus_dir=small_corpus, index_dir=tmp_path / "index")
    first = build_index(config, embedder)
    real_read = swap.read_index
    calls: list[str] = []

    def slow_read(index_dir: Path, **options):
        stored = real_read(index_dir, **options)  # the manifest verified, the components not yet loaded
        if not calls:
            for n in range(2):  # the writer publishes twice meanwhile
                (small_corpus / f"new-{n}.txt").write_text(f"Notice {n}\n\nNotice number {n} about the harbour fees.\n", encoding="utf-8")
                build_index(config, embedder)
        calls.append(stored.path.name)
        return stored

    monkeypatch.setattr(swap, "read_index", slow_read)
    loaded = load_published(config.index_dir, embedder, Settings().ranking_config())
    assert not first.path.exists()  # really gone under the reader
    assert calls[0] == first.path.name and loaded.stored.path.name == pointed(config.index_dir) != first.path.name
    assert len(loaded.manifest["documents"]) == 4


def test_the_watcher_does_not_refuse_a_build_superseded_while_it_loaded(small_corpus: Path, tmp_path: Path, embedder, monkeypatch) -> None:
    config = IndexConfig(corpus_dir=small_corpus, index_dir=tmp_path / "index")
    live = Retriever(embedder, build_index(config, embedder))
    (small_corpus / "ferry.txt").write_text(FERRY, encoding="utf-8")
    second = build_index(config, embedder)
    real_read = swap.read_index
    swapped: list[Retriever] = []

    def vanishing(index_dir: Path, **options):
        (small_corpus / "extra.txt").write_text("Extra\n\nOne more notice about the ferry fares.\n", encoding="utf-8")
        build_index(config, embedder)  # a newer build is published meanwhile ...
        raise FileNotFoundError(2, "No such file or directory", str(second.path / "faiss.index"))  # ... and this one vanished

    watcher = IndexWatcher(live, config.index_dir, swapped.append, interval=60)
    monkeypatch.setattr(swap, "read_index", vanishing)
    assert not watcher.check() and watcher._refused is None  # a race, not a bad build: not remembered as refused
    monkeypatch.setattr(swap, "read_index", real_read)
    assert watcher.check() and swapped[-1].stored.path.name == pointed(config.index_dir)
    assert len(swapped[-1].manifest["documents"]) == 4


def test_a_replica_keeps_answering_from_a_build_folder_deleted_under_it(small_corpus: Path, tmp_path: Path, embedder) -> None:
    """On a local file system: everything a loaded build needs is in memory, or mapped (the stored
    texts), and a mapped file stays readable after it is unlinked. So a replica still serving an
    old build when tidy deletes it answers on, citations and document texts included."""
    config = IndexConfig(corpus_dir=small_corpus, index_dir=tmp_path / "index")
    first = build_index(config, embedder)
    settings = Settings(corpus_dir=small_corpus, index_dir=config.index_dir, role="replica", reload_interval_s=0)  # never follows
    with TestClient(create_app(settings, load_retriever(settings, serving=True))) as client:
        for n in range(2):
            (small_corpus / f"new-{n}.txt").write_text(f"Notice {n}\n\nNotice number {n} about the harbour fees.\n", encoding="utf-8")
            build_index(config, embedder)
        assert not first.path.exists()
        answer = client.post("/query", json={"question": "How much does the breakwater cost?", "top_k": 1})
        assert answer.status_code == 200 and answer.json()["index_build"] == first.path.name
        citation = answer.json()["results"][0]["citation"]
        text = client.get(f"/documents/{citation['doc_id']}/text")
        assert text.status_code == 200
        cited = (small_corpus / citation["source"]).read_text(encoding="utf-8")[citation["start"]:citation["end"]]
        assert cited and text.json()["text"][citation["start"]:citation["end"]] == cited  # read from the deleted build's mapped texts


def test_a_replica_cannot_watch_the_corpus() -> None:
    with pytest.raises(ValidationError, match="a replica never builds"):
        Settings(role="replica", watch=True)


def test_a_replica_started_before_any_publish_says_so_in_one_line(tmp_path: Path, embedder) -> None:
    from index.errors import IndexMissing

    with pytest.raises(IndexMissing, match="build it with `cited index`"):
        load_published(tmp_path / "index", embedder, Settings().ranking_config())
    assert not (tmp_path / "index").exists()  # a replica writes nothing, not even the folder

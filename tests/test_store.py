"""The on-disk index: round trip, staleness with reasons, corrupt files refused, crash-safe builds."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from index import ChunkSpec, IndexConfig, IndexCorrupt, IndexMissing, IndexStale, build_index, open_index
from index.lock import IndexBusy, index_lock
from index.store import POINTER, PREVIOUS, read_index
from service.cli import main


@pytest.fixture
def config(small_corpus: Path, tmp_path: Path) -> IndexConfig:
    return IndexConfig(corpus_dir=small_corpus, index_dir=tmp_path / "index")


@pytest.fixture
def built(config: IndexConfig, embedder):
    return build_index(config, embedder)


def live_build(config: IndexConfig) -> Path:
    return config.index_dir / (config.index_dir / POINTER).read_text().strip()


def test_round_trip_returns_the_same_passages_and_vectors(config, built) -> None:
    again = read_index(config.index_dir)
    assert again.passages == built.passages
    assert again.vector_index.ntotal == len(built.passages) >= 3
    manifest = again.manifest
    assert manifest["model"]["dimension"] == 384 and manifest["model"]["fingerprint"].startswith("sha256:")
    assert manifest["chunking"]["chunk_tokens"] == ChunkSpec().chunk_tokens
    assert [d["title"] for d in manifest["documents"]] == [
        "Harbour Authority Approves New Breakwater",
        "Orchard Growers Report Record Apple Harvest",
    ]
    assert set(manifest["corpus"]["files"]) == {"harbour.txt", "orchard.txt"}
    assert {d["source"] for d in manifest["documents"]} == set(manifest["corpus"]["files"])


def test_missing_index_is_built_on_open_and_refused_when_rebuilding_is_off(config, embedder) -> None:
    with pytest.raises(IndexMissing):
        open_index(config, embedder, rebuild=False)
    assert open_index(config, embedder).passages


def test_fresh_index_is_reused_without_rebuilding(config, built, embedder) -> None:
    assert open_index(config, embedder).path == built.path


def test_changed_corpus_file_rebuilds_and_logs_why(config, built, embedder, caplog) -> None:
    path = config.corpus_dir / "orchard.txt"
    path.write_text(path.read_text() + "\nA new closing sentence was added to the article.\n")
    with caplog.at_level(logging.WARNING, logger="index.build"):
        rebuilt = open_index(config, embedder)
    assert "corpus files changed: orchard.txt" in caplog.text
    assert rebuilt.path != built.path
    assert any("new closing sentence" in p.text for p in rebuilt.passages)


def test_changed_chunking_is_stale_and_says_which_setting(config, built, embedder) -> None:
    smaller = dataclasses.replace(config, chunk=ChunkSpec(chunk_tokens=24, overlap_tokens=8))
    with pytest.raises(IndexStale, match=f"chunk_tokens {ChunkSpec().chunk_tokens} → 24"):
        open_index(smaller, embedder, rebuild=False)
    assert len(open_index(smaller, embedder).passages) > len(built.passages)


def test_added_corpus_file_is_named_in_the_reason(config, built, embedder) -> None:
    (config.corpus_dir / "extra.txt").write_text("A short extra document about nothing much.\n", encoding="utf-8")
    with pytest.raises(IndexStale, match="corpus files added: extra.txt"):
        open_index(config, embedder, rebuild=False)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _drop_a_line(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:-1]), encoding="utf-8")


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("name", "damage"),
    [("faiss.index", _truncate), ("passages.jsonl", _drop_a_line), ("passages.jsonl", _flip_a_byte), ("manifest.json", _truncate)],
)
def test_damaged_files_are_refused_naming_the_file(config, built, embedder, name, damage) -> None:
    damage(live_build(config) / name)
    with pytest.raises(IndexCorrupt, match=name.replace(".", r"\.")) as info:
        open_index(config, embedder)  # rebuild allowed, yet a corrupt index is not silently replaced
    assert "cited index --rebuild" in str(info.value)


def test_edited_manifest_hash_is_refused(config, built) -> None:
    manifest_path = live_build(config) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["faiss.index"] = "sha256:" + "0" * 64
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IndexCorrupt, match=r"faiss\.index.*sha256 differs"):
        read_index(config.index_dir)


def test_serve_and_query_refuse_a_corrupt_index_with_one_line(config, built, capsys) -> None:
    _truncate(live_build(config) / "faiss.index")
    code = main(["query", "anything", "--corpus-dir", str(config.corpus_dir), "--index-dir", str(config.index_dir)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1].startswith("cited: error: index at") and "corrupt" in err[-1] and "Traceback" not in "\n".join(err)


def test_crash_mid_build_leaves_the_previous_index_served(config, built, embedder, monkeypatch) -> None:
    def explode(*args, **kwargs):
        raise RuntimeError("simulated crash while embedding")

    path = config.corpus_dir / "harbour.txt"
    path.write_text("Another sentence makes the index stale.\n\n" + path.read_text())
    monkeypatch.setattr(embedder, "encode", explode)
    with pytest.raises(RuntimeError, match="simulated crash"):
        open_index(config, embedder)
    monkeypatch.undo()
    survivor = read_index(config.index_dir)
    assert survivor.path == built.path and survivor.passages == built.passages
    assert not [p for p in config.index_dir.iterdir() if p.name.startswith(".tmp-")]


def test_crash_while_writing_files_leaves_the_previous_index(config, built, embedder, monkeypatch) -> None:
    import index.store as store

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(store, "_write_synced", fail)
    with pytest.raises(OSError, match="disk full"):
        build_index(config, embedder)
    monkeypatch.undo()
    assert read_index(config.index_dir).path == built.path


def test_a_second_build_is_refused_at_once_naming_the_holder(config, built, embedder) -> None:
    with index_lock(config.index_dir):  # a build in progress (the lock is per open file, so this process counts)
        with pytest.raises(IndexBusy, match=rf"another build \(pid {os.getpid()}\) is writing the index"):
            build_index(config, embedder)
        assert read_index(config.index_dir).path == built.path  # the live index is untouched
    assert build_index(config, embedder).path != built.path  # and free again once the holder lets go


def test_a_second_cited_index_process_exits_with_one_line(config, built) -> None:
    with index_lock(config.index_dir):
        done = subprocess.run(
            [sys.executable, "-m", "service.cli", "index", "--rebuild", "--corpus-dir", str(config.corpus_dir), "--index-dir", str(config.index_dir)],
            capture_output=True, text=True, timeout=120, check=False,
        )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"another build (pid {os.getpid()}) is writing the index" in done.stderr.strip().splitlines()[-1]


def test_what_a_killed_build_leaves_behind_is_removed_and_the_index_still_serves(config, built, embedder) -> None:
    debris = [config.index_dir / ".tmp-0123abcd", config.index_dir / "build-20000101T000000-deadbeef"]
    for folder in debris:
        folder.mkdir()
        (folder / "faiss.index").write_bytes(b"half written")
    (config.index_dir / f"{POINTER}.tmp").write_text("build-20000101T000000-deadbeef\n")
    stored = open_index(config, embedder, rebuild=False)  # the next start
    assert stored.path == built.path
    assert not any(p.exists() for p in debris) and not (config.index_dir / f"{POINTER}.tmp").exists()


def test_the_previous_build_is_kept_and_rollback_serves_it_again(config, built, embedder, capsys) -> None:
    (config.corpus_dir / "extra.txt").write_text("Extra notice\n\nThe ferry runs late on Sundays.\n", encoding="utf-8")
    newer = build_index(config, embedder)
    assert (config.index_dir / PREVIOUS).read_text().strip() == built.path.name
    assert sorted(p.name for p in config.index_dir.glob("build-*")) == sorted([built.path.name, newer.path.name])
    assert main(["index", "--rollback", "--corpus-dir", str(config.corpus_dir), "--index-dir", str(config.index_dir)]) == 0
    assert read_index(config.index_dir).path == built.path and "serving the previous build again" in capsys.readouterr().out
    assert (config.index_dir / PREVIOUS).read_text().strip() == newer.path.name  # rolling back again undoes it
    third = build_index(config, embedder)
    assert sorted(p.name for p in config.index_dir.glob("build-*")) == sorted([built.path.name, third.path.name])

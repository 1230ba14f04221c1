"""`cited bench engines` runs and reports (its numbers are measured by hand: docs/ray.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.engine_bench import markdown, run_engines
from index import Embedder
from service.cli import main
from service.settings import Settings


def test_the_engines_benchmark_runs_from_the_command_line(small_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "engines", "--engines", "local", "--rounds", "1", "--corpus-dir", str(small_corpus),
                 "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out")])
    assert code == 0
    report = json.loads((tmp_path / "out" / "engines.json").read_text(encoding="utf-8"))
    local = report["engines"]["local"]
    assert report["documents"] == 2 and report["passages"] > 0 and report["sentences"] >= report["passages"]
    assert local["embedding_s"] > 0 and local["build_s"] > 0 and len(local["rounds"]["build"]) == 1
    per_second = local["cores"] * 1000 / report["passages"]  # core-seconds per 1k passages for each second of embedding
    # embedding_s is rounded to 0.01 s in the report, the per-1k figure to 0.1
    assert local["embedding_core_s_per_1k_passages"] == pytest.approx(local["embedding_s"] * per_second, abs=0.005 * per_second + 0.05)
    assert "ray_over_local" not in report
    assert "| local " in capsys.readouterr().out
    assert not (tmp_path / "work" / "index-local").exists()  # scratch builds are removed


def test_the_embedding_step_alone(small_corpus: Path, tmp_path: Path, embedder: Embedder) -> None:
    config = Settings(corpus_dir=small_corpus, index_dir=tmp_path / "unused", sentence_vectors="pooled").index_config()
    report = run_engines(config, embedder, tmp_path / "work", rounds=1, engines=["local"], builds=False)
    assert report["engines"]["local"]["build_s"] is None and report["engines"]["local"]["embedding_s"] > 0
    assert report["sentence_vectors"] == "pooled" and "not run" in markdown(report)


def test_an_unknown_engine_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "engines", "--engines", "local,spark"])
    assert exit_.value.code == 2 and "local, ray" in capsys.readouterr().err


@pytest.mark.ray
def test_the_engines_benchmark_compares_local_and_ray(small_corpus: Path, tmp_path: Path, embedder: Embedder) -> None:
    pytest.importorskip("ray", reason="the ray extra is not installed: pip install -e '.[test,ray]'")
    config = Settings(corpus_dir=small_corpus, index_dir=tmp_path / "unused").index_config()
    report = run_engines(config, embedder, tmp_path / "work", rounds=1)
    assert set(report["engines"]) == {"local", "ray"}
    assert report["engines"]["ray"]["cores"] >= 1
    ratio = report["ray_over_local"]
    assert ratio["embedding_throughput"] > 0 and ratio["build_throughput"] > 0
    assert "Ray over local throughput" in markdown(report)

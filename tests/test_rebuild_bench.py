"""The rebuild benchmark runs end to end on a small corpus and reports every step (nothing here is timed)."""

from __future__ import annotations

from pathlib import Path

from eval.rebuild import markdown, run_rebuild, write
from index import IndexConfig
from tests.conftest import table_rows


def test_the_rebuild_benchmark_reports_each_step_and_leaves_the_corpus_alone(small_corpus: Path, tmp_path: Path, embedder) -> None:
    before = {p.name: p.read_bytes() for p in small_corpus.iterdir()}
    config = IndexConfig(corpus_dir=small_corpus, index_dir=tmp_path / "unused")
    report = run_rebuild(small_corpus, tmp_path / "work", config, embedder, rounds=1, swaps=2)
    assert {p.name: p.read_bytes() for p in small_corpus.iterdir()} == before
    steps = report["steps"]
    assert steps["unchanged"]["reuse"] is None  # nothing to rebuild: only the stat check ran
    assert steps["one changed"]["reuse"]["passages_embedded"] == 1  # the passage holding the new sentence
    assert steps["one added"]["reuse"]["passages_embedded"] >= 1
    assert steps["one deleted"]["reuse"]["passages_embedded"] == steps["one deleted"]["reuse"]["sentences_embedded"] == 0
    assert report["full_build_s"] > 0 and report["process_start_s"] > 0
    assert len(report["swaps"]["rss_mb_after_each_swap"]) == 2
    json_path, md_path = write(report, tmp_path / "out")
    first_cells = [r[0] for r in table_rows(md_path.read_text(encoding="utf-8"))]
    assert json_path.is_file() and first_cells == ["step", "full build", "unchanged", "one changed", "one added", "one deleted",
                                                   "", "bare encode of the passages", "build, sentences encoded", "build, sentences pooled"]
    assert all(b["passages_per_s"] > 0 for b in report["throughput"]["builds"].values())
    assert markdown(report) == md_path.read_text(encoding="utf-8")

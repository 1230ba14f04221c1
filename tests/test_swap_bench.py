"""The swap benchmark counts every request and sees each publish (nothing here is timed)."""

from __future__ import annotations

import time
from pathlib import Path

from eval.swap_bench import markdown, run_swap, write
from index import IndexConfig, Retriever, build_index
from service.settings import Settings
from tests.conftest import serving, table_rows


def test_the_swap_benchmark_counts_requests_and_switches(small_corpus: Path, tmp_path: Path, embedder) -> None:
    config = IndexConfig(corpus_dir=small_corpus, index_dir=tmp_path / "index")
    settings = Settings(corpus_dir=small_corpus, index_dir=config.index_dir, reload_interval_s=0.1)

    def publish(n: int) -> float:
        (small_corpus / f"new-{n}.txt").write_text(f"Notice {n}\n\nThe library opens late on day {n}.\n", encoding="utf-8")
        build_index(config, embedder)
        return time.time()

    with serving(settings, Retriever(embedder, build_index(config, embedder))) as url:
        report = run_swap(url, ["When does the library open?", "How much does the breakwater cost?"], publish,
                          clients=2, rounds=2, settle_s=0.2)
    assert report["failed"] == 0 and report["ok"] == report["requests"] > 0
    assert len(report["switch_delay_s"]["each"]) == 2
    json_path, md_path = write(report, tmp_path / "out")
    assert json_path.is_file() and table_rows(md_path.read_text(encoding="utf-8"))[1][:4] == ["2", "2", str(report["requests"]), "0"]
    assert markdown(report) == md_path.read_text(encoding="utf-8")

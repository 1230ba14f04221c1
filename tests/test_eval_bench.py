"""The latency benchmark: every configuration is timed on the same questions, side by side."""

from __future__ import annotations

from eval.bench import CONFIGS, run_bench, table


def test_every_configuration_is_timed_against_dense_on_the_same_questions(retriever) -> None:
    questions = ["What is ETIM?", "Who met Mullah Omar in 2000?", "CPEC in Balochistan"]
    report = run_bench(retriever, questions, rounds=1, top_k=5)
    assert list(report["results"]) == [*CONFIGS, "default"]
    assert report["queries"] == 3 and report["passages"] == len(retriever.passages)
    assert report["results"]["dense"]["ratio_to_dense"] == 1.0
    assert all(row["median_ms"] > 0 and row["p95_ms"] >= row["median_ms"] * 0.5 for row in report["results"].values())
    lines = table(report).splitlines()
    assert len(lines) == len(CONFIGS) + 3 and len({line.index(" median ms") for line in lines[:1]}) == 1
    assert all(len(line) == len(lines[0]) for line in lines[1:-1])  # columns line up whatever the names


def test_the_dense_row_is_the_bare_passage_ranker() -> None:
    dense = CONFIGS["dense"]
    assert (dense.mode, dense.sentence_weight, dense.feedback_passages, dense.collapse_duplicates, dense.highlight) == ("dense", 0.0, 0, False, False)

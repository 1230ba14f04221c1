"""The latency benchmark runs every configuration on the same questions and reports what it measured."""

from __future__ import annotations

from eval.bench import run_bench, table
from eval.ladder import ablation_rows
from index import SearchOptions
from tests.conftest import assert_top_k_up_to_ties, table_rows


def test_every_configuration_is_timed_and_the_table_shows_the_report(retriever) -> None:
    questions = ["What is ETIM?", "Who met Mullah Omar in 2000?", "CPEC in Balochistan"]
    report = run_bench(retriever, questions, rounds=2, top_k=5)
    rows = report["results"]
    assert set(rows) == {row.name for row in ablation_rows(retriever.ranking)}  # the ablation's ladder
    assert report["queries"] == 6 and report["passages"] == len(retriever.passages)
    for row in rows.values():
        assert 0 < row["median_ms"] <= row["p95_ms"]
        # the ratio is this configuration's median over dense's, as the table says
        assert abs(row["ratio_to_dense"] - row["median_ms"] / rows["dense"]["median_ms"]) < 0.01 + 0.01 * row["ratio_to_dense"]
    printed = {cells[0]: cells[1:] for cells in table_rows(table(report))[1:]}
    assert {name: float(cells[0]) for name, cells in printed.items()} == {name: row["median_ms"] for name, row in rows.items()}


def test_the_dense_row_ranks_by_bare_passage_cosine(retriever) -> None:
    """The ratios are relative to plain FAISS ranking: the dense row must rank exactly so."""
    dense = retriever.with_ranking(next(row.ranking for row in ablation_rows(retriever.ranking) if row.name == "dense"))
    vectors = retriever.stored.vector_index.reconstruct_n(0, retriever.stored.vector_index.ntotal)
    question = "Who met Mullah Omar in 2000?"
    hits = dense.search(question, SearchOptions(top_k=10)).hits
    rows = [retriever.passages.index(h.passage) for h in hits]
    assert_top_k_up_to_ties(rows, [h.score for h in hits], vectors @ retriever.embedder.encode([question])[0], 10)
    assert all(h.also_in == () for h in hits)  # no collapse either

"""eval.ladder: the rows are overrides of the served ranking, each stage switched on in turn."""

from __future__ import annotations

import dataclasses

import pytest

from eval.ladder import ablation_rows, dense_only, describe, same_as
from index import RankingConfig
from service.settings import Settings


def test_rows_are_overrides_that_inherit_everything_else() -> None:
    base = Settings(candidates=80).ranking_config(fusion="rrf", dense_weight=2.0, mmr_lambda=0.9)
    rows = {row.name: row for row in ablation_rows(base, mmr_lambda=0.6)}
    assert list(rows) == ["dense", "bm25", "hybrid", "sentences", "collapse", "diversity", "feedback", "default"]
    for row in rows.values():
        assert row.ranking == dataclasses.replace(base, **row.overrides)
        assert (row.ranking.fusion, row.ranking.dense_weight, row.ranking.candidates) == ("rrf", 2.0, 80)
    stages = ("dense", "bm25", "hybrid", "sentences", "collapse", "diversity", "feedback")
    assert [rows[n].ranking.retrieval for n in stages] == ["dense", "bm25", *["hybrid"] * 5]
    assert [rows[n].ranking.sentence_weight for n in stages] == [0.0, 0.0, 0.0, *[base.sentence_weight] * 4]
    assert [rows[n].ranking.collapse_duplicates for n in stages] == [False] * 4 + [True] * 3
    assert [rows[n].ranking.mmr_lambda for n in (*stages, "default")] == [1.0] * 5 + [0.6, 1.0, 0.9]
    assert [rows[n].ranking.feedback_passages for n in stages] == [0] * 6 + [3]
    assert rows["default"].ranking == base and rows["default"].overrides == {}
    assert rows["diversity"].label == (
        "hybrid (rrf) + sentences (w=0.5) + collapse + diversity (MMR λ=0.6) [dense_weight=2.0, candidates=80]"
    )
    # a stage the settings switch off is still measured, at its usual value
    off = {row.name: row for row in ablation_rows(dataclasses.replace(base, sentence_weight=0.0))}
    assert off["sentences"].ranking.sentence_weight == 0.5 and off["default"].ranking.sentence_weight == 0.0
    with pytest.raises(ValueError, match="below 1"):
        ablation_rows(base, mmr_lambda=1.0)


def test_describe() -> None:
    assert describe(RankingConfig(retrieval="bm25", collapse_duplicates=False)) == "BM25"
    assert describe(RankingConfig()) == "hybrid (weighted) + sentences (w=0.5) + collapse"
    assert describe(RankingConfig(retrieval="dense", rrf_k=10, highlight=False, sentence_weight=0.0)) == "dense + collapse [rrf_k=10]"
    assert describe(RankingConfig(feedback_passages=2)) == "hybrid (weighted) + sentences (w=0.5) + feedback (2 passages, weight 1) + collapse"


def test_dense_only_is_the_ladders_dense_row_and_repeated_rankings_are_named() -> None:
    base = RankingConfig(fusion="rrf", feedback_passages=2)
    assert dense_only(base) == next(row.ranking for row in ablation_rows(base) if row.name == "dense")
    assert same_as(ablation_rows(RankingConfig())) == {"default": "collapse"}
    assert same_as(ablation_rows(base)) == {"default": "feedback"}
    assert same_as(ablation_rows(RankingConfig(mmr_lambda=0.9))) == {}

"""The ranking configurations the eval compares: the served ranking with each stage switched on in turn."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eval.defaults import DEFAULT_MMR_LAMBDA
from index import RankingConfig

__all__ = ["DEFAULT_MMR_LAMBDA", "Row", "ablation_rows", "dense_only", "describe", "same_as"]

SENTENCE_WEIGHT = 0.5  # the sentences row's weight when the settings switch sentence scoring off
FEEDBACK_PASSAGES = 3  # the feedback row's passages when the settings switch feedback off
BARE = {"sentence_weight": 0.0, "feedback_passages": 0, "collapse_duplicates": False, "mmr_lambda": 1.0}


@dataclass(frozen=True)
class Row:
    name: str  # key in the JSON
    label: str  # first cell of the table
    overrides: Mapping[str, Any]
    ranking: RankingConfig  # dataclasses.replace(base, **overrides)


def dense_only(base: RankingConfig) -> RankingConfig:
    """Passage cosine alone, the reference every other stage is measured against."""
    return dataclasses.replace(base, **BARE, retrieval="dense")


# Fields describe() names in words; highlight never changes the order.
_IN_WORDS = {"retrieval", "fusion", "collapse_duplicates", "mmr_lambda", "highlight", "sentence_weight", "feedback_passages", "feedback_weight"}


def describe(ranking: RankingConfig) -> str:
    """A short description such as "hybrid (weighted) + collapse"; any other non-default field is
    appended as ``name=value``, so a label never hides a setting that changes the ranking."""
    text = ranking.retrieval if ranking.retrieval != "bm25" else "BM25"
    if ranking.retrieval == "hybrid":
        text += f" ({ranking.fusion})"
    if ranking.retrieval != "bm25" and ranking.sentence_weight > 0:
        text += f" + sentences (w={ranking.sentence_weight:g})"
    if ranking.retrieval != "bm25" and ranking.feedback_passages > 0:
        text += f" + feedback ({ranking.feedback_passages} passages, weight {ranking.feedback_weight:g})"
    if ranking.collapse_duplicates:
        text += " + collapse"
    if ranking.mmr_lambda < 1.0:
        text += f" + diversity (MMR λ={ranking.mmr_lambda:g})"
    default = RankingConfig()
    others = [
        f"{f.name}={getattr(ranking, f.name)!r}"
        for f in dataclasses.fields(ranking)
        if f.name not in _IN_WORDS and getattr(ranking, f.name) != getattr(default, f.name)
    ]
    return text + (f" [{', '.join(others)}]" if others else "")


def ablation_rows(base: RankingConfig, mmr_lambda: float = DEFAULT_MMR_LAMBDA) -> list[Row]:
    """Overrides of ``base``, so every row inherits whatever the settings say and differs only in its stages.

    A stage the settings switch off is still measured, at its usual value.
    """
    if not 0.0 <= mmr_lambda < 1.0:
        raise ValueError(f"mmr_lambda must be at least 0 and below 1 (1 switches MMR off), got {mmr_lambda}")
    sentences = {**BARE, "retrieval": "hybrid", "sentence_weight": base.sentence_weight or SENTENCE_WEIGHT}
    collapse = {**sentences, "collapse_duplicates": True}
    overrides = {
        "dense": {**BARE, "retrieval": "dense"},
        "bm25": {**BARE, "retrieval": "bm25"},
        "hybrid": {**BARE, "retrieval": "hybrid"},
        "sentences": sentences,
        "collapse": collapse,
        "diversity": {**collapse, "mmr_lambda": mmr_lambda},
        "feedback": {**collapse, "feedback_passages": base.feedback_passages or FEEDBACK_PASSAGES},
    }
    labels = {"dense": "dense only (passage cosine)", "bm25": "BM25 only", "hybrid": "hybrid, bare"}
    rows = []
    for name, change in overrides.items():
        ranking = dataclasses.replace(base, **change)
        rows.append(Row(name, labels.get(name) or describe(ranking), change, ranking))
    rows.append(Row("default", f"**default**: {describe(base)}", {}, base))
    return rows


def same_as(rows: Sequence[Row]) -> dict[str, str]:
    """Row name -> the first earlier row with an equal ranking: the runs are deterministic, so it is measured once."""
    first: dict[RankingConfig, str] = {}
    same = {}
    for row in rows:
        if row.ranking in first:
            same[row.name] = first[row.ranking]
        else:
            first[row.ranking] = row.name
    return same

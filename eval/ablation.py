"""The README's ablation table: each ranking stage switched on in turn, scored on the seeds and on Cranfield.

Rows (:func:`ablation_rows`) are overrides on top of ``Settings.ranking_config()``, applied
with :func:`dataclasses.replace`, so whatever the settings say about fusion, weights,
or candidates, every row inherits it and differs only in the stages named:

========== ====================================================================
dense      ``retrieval=dense``, passage cosine only: no sentence scoring, no feedback,
           no collapse, no MMR
bm25       ``retrieval=bm25``, likewise bare
hybrid     ``retrieval=hybrid``, likewise bare
sentences  hybrid + sentence scoring (the settings' ``sentence_weight``, or 0.5
           when they switch it off)
collapse   hybrid + sentences + ``collapse_duplicates``
diversity  ... + MMR (``mmr_lambda`` from ``--diversity-lambda``, default 0.7)
feedback   hybrid + sentences + collapse + pseudo-relevance feedback (the
           settings' ``feedback_passages``, or 3 when they switch it off)
default    the settings unchanged: what ``cited serve`` and ``cited eval`` run
========== ====================================================================

**Seed columns** (hit@1, hit@5, MRR@10, nDCG@10, recall@5 of the multi-source questions):
each row is :func:`eval.runner.run_eval` over one loaded retriever re-ranked with
``Retriever.with_ranking``, the same call ``cited eval`` makes, so the default row is exactly
what ``cited eval`` reports for the same settings.

**BEIR column** (nDCG@10 on Cranfield, or any BEIR-layout collection), one prepared passage
index (:func:`eval.beir_eval.prepare_index`), re-ranked per row the same way:

* each row ranks the top ``passage_depth(passages, 10)`` passages (50: five per wanted
  document) with its own configuration, candidates included, as the service would; highlighting is
  switched off (it never changes the order, and scoring sentences would only cost time);
* documents are scored by their best passage (MaxP, :func:`eval.beir_eval.aggregate_max`);
* with collapse on, every ``also_in`` copy of a result is credited **with the result's
  score**, as the seed metrics credit ``also_in`` citations: the reader is shown those
  documents. Switching collapse off for this column instead would make the collapse row a
  copy of the hybrid row and measure nothing;
* the same ranking scored without the copies is kept too (``ndcg@10_own_passages``, and
  a footnote when it differs): Cranfield holds near-duplicate abstracts that are judged
  differently, so crediting copies can cost a little, and the table should not hide that;
* ``cited eval beir`` ranks 500 passages from 500 candidates (it also reports recall@100),
  so its hybrid nDCG@10 can differ from this table's in the third decimal.

A row whose ranking equals an earlier row's (the default usually equals one of them) is
measured once and says so (``same_as``): the runs are deterministic.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.beir import BeirCollection, CollectionError
from eval.beir_eval import CUTOFF, PreparedIndex, aggregate_max, passage_depth
from eval.metrics import evaluate, mean
from eval.questions import Question
from eval.relevance import SpansPerGold
from eval.runner import DEFAULT_TOP_K, InProcess, run_eval
from index import Hit, RankingConfig, Retriever, SearchOptions

__all__ = [
    "DEFAULT_MMR_LAMBDA",
    "MULTI_SOURCE",
    "SEED_COLUMNS",
    "Ablation",
    "Row",
    "ablation_rows",
    "credited_documents",
    "describe",
    "score_beir",
    "score_seed",
]

log = logging.getLogger("cited.eval")

DEFAULT_MMR_LAMBDA = 0.7
SENTENCE_WEIGHT = 0.5  # the sentences row's weight when the settings switch sentence scoring off
FEEDBACK_PASSAGES = 3  # the feedback row's passages when the settings switch feedback off
MULTI_SOURCE = "multi-source"
# (key in the JSON, header in the table); recall@5 is the multi-source questions' own.
SEED_COLUMNS = (
    ("hit@1", "hit@1"),
    ("hit@5", "hit@5"),
    ("mrr@10", "MRR@10"),
    ("ndcg@10", "nDCG@10"),
    ("multi_source_recall@5", "recall@5, multi-source"),
)


@dataclass(frozen=True)
class Row:
    """One configuration of the table: its name, label, overrides and resulting ranking."""

    name: str  # key in the JSON
    label: str  # first cell of the table
    overrides: Mapping[str, Any]
    ranking: RankingConfig


# Fields describe() names in words; highlight never changes the order.
_IN_WORDS = {"retrieval", "fusion", "collapse_duplicates", "mmr_lambda", "highlight", "sentence_weight", "feedback_passages", "feedback_weight"}


def describe(ranking: RankingConfig) -> str:
    """A short human description of a ranking, e.g. "hybrid (weighted) + collapse".

    Any other field that differs from ``RankingConfig``'s default is appended as
    ``name=value``, so a label never hides a setting that changes the ranking.
    """
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
    """The rows, each ``dataclasses.replace(base, **overrides)``; see the module docstring."""
    if not 0.0 <= mmr_lambda < 1.0:
        raise ValueError(f"mmr_lambda must be at least 0 and below 1 (1 switches MMR off), got {mmr_lambda}")
    plain = {"sentence_weight": 0.0, "feedback_passages": 0, "collapse_duplicates": False, "mmr_lambda": 1.0}
    sentences = {**plain, "retrieval": "hybrid", "sentence_weight": base.sentence_weight or SENTENCE_WEIGHT}
    collapse = {**sentences, "collapse_duplicates": True}
    overrides = {
        "dense": {**plain, "retrieval": "dense"},
        "bm25": {**plain, "retrieval": "bm25"},
        "hybrid": {**plain, "retrieval": "hybrid"},
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


def _same_as(rows: Sequence[Row]) -> dict[str, str]:
    """Row name -> name of the first earlier row with an equal ranking."""
    first: dict[RankingConfig, str] = {}
    same = {}
    for row in rows:
        if row.ranking in first:
            same[row.name] = first[row.ranking]
        else:
            first[row.ranking] = row.name
    return same


# ---------------------------------------------------------------- the seed question set


def score_seed(
    retriever: Retriever,
    rows: Sequence[Row],
    questions: Sequence[Question],
    spans: Mapping[str, SpansPerGold],
    top_k: int = DEFAULT_TOP_K,
) -> dict[str, dict[str, Any]]:
    """Per row: ``overall`` aggregates, ``multi_source_recall@5`` (None without such questions),
    ``first_relevant_rank`` per answerable question, and the run's ``seconds``."""

    def score(row: Row) -> dict[str, Any]:
        started = time.perf_counter()
        run = run_eval(questions, spans, InProcess(retriever.with_ranking(row.ranking)), top_k)
        multi = run.aggregates["by_kind"].get(MULTI_SOURCE)
        seconds = round(time.perf_counter() - started, 3)
        log.info("ablation: %s on the question set in %.1f s", row.name, seconds)
        return {
            "overall": run.aggregates["overall"],
            "multi_source_recall@5": multi["recall@5"] if multi else None,
            "first_relevant_rank": {r["id"]: r["first_relevant_rank"] for r in run.records if r["metrics"] is not None},
            "seconds": seconds,
        }

    return _each_distinct(rows, score)


def _each_distinct(rows: Sequence[Row], score: Callable[[Row], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``score`` of every row, called once per distinct ranking (the runs are deterministic)."""
    same = _same_as(rows)
    scores: dict[str, dict[str, Any]] = {}
    for row in rows:
        scores[row.name] = scores[same[row.name]] if row.name in same else score(row)
    return scores


# ---------------------------------------------------------------- a BEIR collection


def credited_documents(hits: Iterable[Hit], names: Mapping[str, str], k: int | None = None) -> list[tuple[str, float]]:
    """Documents by their best passage (MaxP), each ``also_in`` copy credited with its result's score.

    ``names`` maps a passage's doc_id (the materialised file stem) to the collection's doc id.
    """
    pairs = []
    for hit in hits:
        pairs.append((names[hit.passage.doc_id], hit.score))
        pairs.extend((names[p.doc_id], hit.score) for p in hit.also_in)
    return aggregate_max(pairs, k)


def _doc_ids(ranked: Sequence[tuple[str, float]]) -> list[str]:
    return [doc for doc, _ in ranked]


def _without_copies(hits: Iterable[Hit]) -> list[Hit]:
    return [dataclasses.replace(hit, also_in=()) for hit in hits]


def score_beir(prepared: PreparedIndex, collection: BeirCollection, rows: Sequence[Row]) -> dict[str, dict[str, Any]]:
    """Per row: ``ndcg@10`` over the collection's judged queries (``also_in`` copies credited),
    ``ndcg@10_own_passages`` (copies not credited), ``passages`` ranked per query,
    ``short_queries`` (fewer than 10 documents among them) and the query phase's ``seconds``."""
    query_ids, texts = list(collection.queries), list(collection.queries.values())
    names = prepared.materialised.names
    depth = passage_depth(len(prepared.retriever.passages), CUTOFF)
    measure = f"ndcg@{CUTOFF}"

    def score(row: Row) -> dict[str, Any]:
        retriever = prepared.retriever.with_ranking(dataclasses.replace(row.ranking, highlight=False))
        started = time.perf_counter()
        results = retriever.search_batch(texts, SearchOptions(top_k=max(depth, 1)))
        seconds = time.perf_counter() - started
        credited = {qid: _doc_ids(credited_documents(r.hits, names, CUTOFF)) for qid, r in zip(query_ids, results, strict=True)}
        own = {qid: _doc_ids(credited_documents(_without_copies(r.hits), names, CUTOFF)) for qid, r in zip(query_ids, results, strict=True)}
        scored = evaluate(collection.qrels, credited, [measure])
        if not scored:
            raise CollectionError(Path(collection.name), None, "no query has a relevant document")
        log.info("ablation: %s on %s in %.1f s", row.name, collection.name, seconds)
        return {
            measure: mean(scored)[measure],
            f"{measure}_own_passages": mean(evaluate(collection.qrels, own, [measure]))[measure],
            "queries": len(scored),
            "passages": depth,
            "short_queries": sum(1 for ranked in credited.values() if len(ranked) < CUTOFF),
            "seconds": round(seconds, 3),
        }

    return _each_distinct(rows, score)


# ---------------------------------------------------------------- the result and its renderings


@dataclass
class Ablation:
    created_at: str  # UTC, ISO 8601
    settings: dict[str, Any]
    rows: list[Row]
    questions: dict[str, Any]  # {"path", "sha256", "count", "answerable", "multi_source"}
    top_k: int
    seed: dict[str, dict[str, Any]]  # row name -> score_seed's values
    beir: dict[str, dict[str, Any]] | None = None  # row name -> score_beir's values; None: skipped
    collection: dict[str, Any] | None = None  # name, folder, documents, queries, index summary
    timing: dict[str, float] = field(default_factory=dict)

    @property
    def beir_header(self) -> str | None:
        if self.beir is None or self.collection is None:
            return None
        name = self.collection["name"]
        return f"{name[:1].upper()}{name[1:]} nDCG@{CUTOFF}"

    def to_dict(self) -> dict[str, Any]:
        same = _same_as(self.rows)
        return {
            "created_at": self.created_at,
            "settings": self.settings,
            "questions": self.questions,
            "top_k": self.top_k,
            "collection": self.collection,
            "rows": [
                {
                    "name": row.name,
                    "label": row.label,
                    "overrides": dict(row.overrides),
                    "ranking": dataclasses.asdict(row.ranking),
                    "same_as": same.get(row.name),
                    "seed": self.seed[row.name],
                    "beir": self.beir[row.name] if self.beir is not None else None,
                }
                for row in self.rows
            ],
            "timing": self.timing,
        }

    def table(self) -> str:
        """The Markdown table alone, ready to paste into the README."""
        headers = ["configuration", *(h for _, h in SEED_COLUMNS)]
        if self.beir_header:
            headers.append(self.beir_header)
        lines = ["| " + " | ".join(headers) + " |", "|---|" + "---:|" * (len(headers) - 1)]
        for row in self.rows:
            seed = self.seed[row.name]
            values = [*(seed["overall"][k] for k, _ in SEED_COLUMNS[:-1]), seed["multi_source_recall@5"]]
            if self.beir_header:
                values.append(self.beir[row.name][f"ndcg@{CUTOFF}"])  # type: ignore[index]
            lines.append(f"| {row.label} | " + " | ".join(_cell(v) for v in values) + " |")
        return "\n".join(lines)

    def notes(self) -> list[str]:
        """Footnotes for the table: what was measured on what, and rows measured once."""
        q = self.questions
        notes = [
            f"Seed columns: `cited eval` on {q.get('path')} ({q.get('answerable')} answerable questions, "
            f"{q.get('multi_source')} multi-source), top {self.top_k}; every row is an override of the settings' "
            "ranking on one loaded index.",
        ]
        if self.beir_header and self.beir and self.collection:
            c, first = self.collection, next(iter(self.beir.values()))
            notes.append(
                f"{self.beir_header}: {c['documents']} documents, {first['queries']} judged queries; top "
                f"{first['passages']} passages per query ranked by each row, documents by their best passage, "
                "collapsed copies (`also_in`) credited with their result's score, highlighting off."
            )
        if self.beir:
            key = f"ndcg@{CUTOFF}"
            differ = [row for row in self.rows if round(self.beir[row.name][key], 3) != round(self.beir[row.name][f"{key}_own_passages"], 3)]
            if differ:
                notes.append(
                    f"{self.beir_header} without crediting `also_in` copies: "
                    + ", ".join(f"`{row.name}` {_cell(self.beir[row.name][f'{key}_own_passages'])}" for row in differ)
                    + "."
                )
        notes += [f"Row `{name}` ranks exactly like row `{other}` (same configuration): measured once." for name, other in _same_as(self.rows).items()]
        return notes

    def to_markdown(self) -> str:
        lines = [
            "# Ranking ablation",
            "",
            f"Generated {self.created_at}; model {self.settings.get('model')}, {self.settings.get('chunk_tokens')}-token "
            f"passages with {self.settings.get('overlap_tokens')} tokens of overlap.",
            "",
            self.table(),
            "",
            *(f"- {note}" for note in self.notes()),
            "",
            "## Rows as overrides of the settings' ranking",
            "",
            *(f"- {row.name}: `{_overrides(row.overrides)}`" for row in self.rows),
            "",
            "## Timing (seconds)",
            "",
            *(f"- {k}: {v}" for k, v in self.timing.items()),
        ]
        return "\n".join(lines) + "\n"

    def write(self, out: Path) -> tuple[Path, Path]:
        """``out/ablation.json`` and ``out/ablation.md``; the folder is created if needed."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        json_path, md_path = out / "ablation.json", out / "ablation.md"
        json_path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        md_path.write_text(self.to_markdown(), encoding="utf-8")
        return json_path, md_path


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _overrides(overrides: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in overrides.items()) or "none (the settings as they are)"

"""`cited eval ablation`: every row of the ladder scored on the seed question set and on a BEIR collection."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from eval.beir import BeirCollection
from eval.beir_eval import CUTOFF, DEFAULT_K, CollectionScore, score_collection
from eval.beir_index import PreparedIndex
from eval.ladder import Row, same_as
from eval.questions import Question
from eval.relevance import SpansPerGold
from eval.runner import DEFAULT_TOP_K, InProcess, run_eval
from eval.tables import table
from index import Retriever

__all__ = ["MULTI_SOURCE", "SEED_COLUMNS", "Ablation", "score_beir", "score_seed"]

log = logging.getLogger("cited.eval")

MULTI_SOURCE = "multi-source"
# (key in the JSON, header in the table); recall@5 is the multi-source questions' own.
SEED_COLUMNS = (
    ("hit@1", "hit@1"),
    ("hit@5", "hit@5"),
    ("mrr@10", "MRR@10"),
    ("ndcg@10", "nDCG@10"),
    ("multi_source_recall@5", "recall@5, multi-source"),
)

T = TypeVar("T")


def _each_distinct(rows: Sequence[Row], score: Callable[[Row], T]) -> dict[str, T]:
    """``score`` of every row, called once per distinct ranking (the runs are deterministic)."""
    same = same_as(rows)
    scores: dict[str, T] = {}
    for row in rows:
        scores[row.name] = scores[same[row.name]] if row.name in same else score(row)
    return scores


def score_seed(
    retriever: Retriever,
    rows: Sequence[Row],
    questions: Sequence[Question],
    spans: Mapping[str, SpansPerGold],
    top_k: int = DEFAULT_TOP_K,
) -> dict[str, dict[str, Any]]:
    """Per row, what `cited eval` reports for that ranking: the same call on the same loaded index."""

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


def score_beir(prepared: PreparedIndex, collection: BeirCollection, rows: Sequence[Row], k: int = DEFAULT_K) -> dict[str, CollectionScore]:
    """Per row, what `cited eval beir` reports for that ranking: the same function with the same k."""

    def score(row: Row) -> CollectionScore:
        result = score_collection(prepared, collection, row.ranking, k)
        log.info("ablation: %s on %s in %.1f s", row.name, collection.name, result.seconds)
        return result

    return _each_distinct(rows, score)


@dataclass
class Ablation:
    created_at: str  # UTC, ISO 8601
    settings: dict[str, Any]
    rows: list[Row]
    questions: dict[str, Any]  # {"path", "sha256", "count", "answerable", "multi_source"}
    top_k: int
    seed: dict[str, dict[str, Any]]  # row name -> score_seed's values
    beir: dict[str, CollectionScore] | None = None  # row name -> score_beir's values; None: skipped
    collection: dict[str, Any] | None = None  # name, folder, documents, queries, index summary
    timing: dict[str, float] = field(default_factory=dict)

    @property
    def beir_header(self) -> str | None:
        if self.beir is None or self.collection is None:
            return None
        name = self.collection["name"]
        return f"{name[:1].upper()}{name[1:]} nDCG@{CUTOFF}"

    def to_dict(self) -> dict[str, Any]:
        same = same_as(self.rows)
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
                    "beir": self.beir[row.name].summary() if self.beir is not None else None,
                }
                for row in self.rows
            ],
            "timing": self.timing,
        }

    def table(self) -> str:
        headers = ["configuration", *(h for _, h in SEED_COLUMNS)]
        if self.beir_header:
            headers.append(self.beir_header)
        rows = []
        for row in self.rows:
            seed = self.seed[row.name]
            values = [*(seed["overall"][k] for k, _ in SEED_COLUMNS[:-1]), seed["multi_source_recall@5"]]
            if self.beir_header and self.beir is not None:
                values.append(self.beir[row.name].metrics[f"ndcg@{CUTOFF}"])
            rows.append([row.label, *(_cell(v) for v in values)])
        return table(headers, rows)

    def notes(self) -> list[str]:
        """Footnotes for the table: what was measured on what, and rows measured once."""
        q = self.questions
        notes = [
            f"Seed columns: `cited eval` on {q.get('path')} ({q.get('answerable')} answerable questions, "
            f"{q.get('multi_source')} multi-source), top {self.top_k}; every row is an override of the settings' "
            "ranking on one loaded index.",
        ]
        if self.beir_header and self.beir and self.collection:
            first = next(iter(self.beir.values()))
            notes.append(
                f"{self.beir_header}: scored as `cited eval beir` scores it, {self.collection['documents']} documents, "
                f"{len(first.per_query)} judged queries; each row ranks the top {first.notes['passage_depth']} passages "
                "as configured, documents by their best passage, `also_in` copies credited with their result's score."
            )
        notes += [f"Row `{name}` ranks exactly like row `{other}` (same configuration): measured once." for name, other in same_as(self.rows).items()]
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

"""`report.json`, `report.md` and the console table of a `cited eval` run, and `cited eval compare`."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from index.errors import CitedError

from eval.generated import generated_table
from eval.highlights import HIGHLIGHT_K
from eval.runner import METRICS
from eval.tables import table

__all__ = ["FAIL_K", "Report", "ReportError", "compare_reports"]

FAIL_K = 5  # a question "failed" when no relevant result is in the top FAIL_K


class ReportError(CitedError):
    """A saved report is missing or unreadable; one line."""


@dataclass
class Report:
    created_at: str  # UTC, ISO 8601
    target: str  # "in-process" or the server URL
    settings: dict[str, Any]
    manifest: dict[str, Any]  # retriever.manifest in-process, GET /health over HTTP
    questions: dict[str, Any]  # {"path", "sha256", "count"}
    top_k: int
    records: list[dict[str, Any]]
    aggregates: dict[str, Any]
    timing: dict[str, Any] = field(default_factory=dict)

    # ---- persistence -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def load(cls, path: Path) -> Report:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ReportError(f"report {path} not found") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ReportError(f"report {path} is not readable JSON ({exc})") from None
        try:
            return cls(**data)
        except TypeError as exc:
            raise ReportError(f"{path} is not a report written by `cited eval` ({exc})") from None

    def write(self, out: Path, plots: bool = True) -> tuple[Path, Path]:
        """``out/report.json`` and ``out/report.md``; the folder is created if needed.

        With ``plots`` the figures of :mod:`eval.plots` are written beside them and report.md embeds
        them by relative path, so the folder can be moved or published as it is.
        """
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        json_path, md_path = out / "report.json", out / "report.md"
        json_path.write_text(self.to_json(), encoding="utf-8")
        figures: list[tuple[str, str]] = []
        if plots:
            from eval.plots import PLOTS, write_plots  # draws with matplotlib: imported only here

            figures = [(PLOTS[p.name], p.name) for p in write_plots(self.records, self.aggregates, self.top_k, out)]
        md_path.write_text(self.to_markdown(figures), encoding="utf-8")
        return json_path, md_path

    # ---- derived facts -----------------------------------------------------------------

    @property
    def model(self) -> str:
        model = self.manifest.get("model")
        return model.get("name", "?") if isinstance(model, dict) else str(model or "?")

    @property
    def built_at(self) -> str:
        return self.manifest.get("built_at") or self.manifest.get("index_built_at") or "?"

    def failed(self) -> list[dict[str, Any]]:
        """Answerable questions with no relevant result in the top FAIL_K, worst first."""
        missed = [
            r
            for r in self.records
            if r["metrics"] is not None and (r["first_relevant_rank"] is None or r["first_relevant_rank"] > FAIL_K)
        ]
        return sorted(missed, key=lambda r: (-rank_key(r["first_relevant_rank"]), r["id"]))

    def _rows(self) -> list[tuple[str, Mapping[str, Any]]]:
        return [("overall", self.aggregates["overall"]), *self.aggregates["by_kind"].items()]

    # ---- renderings --------------------------------------------------------------------

    def table(self) -> str:
        """Console summary: the aggregate tables, score calibration, failed ids."""
        lines = [
            f"eval: {len(self.records)} questions, top_k={self.top_k}, {self.target}, model {self.model}, "
            f"{self.timing.get('total_seconds', '?')}s",
            self._aggregates_table(),
        ]
        highlights = _highlights_table(self.aggregates.get("highlights"))
        if highlights:
            lines += ["", highlights, ""]
        generated = generated_table(self.aggregates.get("generated"))
        if generated:
            lines += [generated, ""]
        scores = self.aggregates["scores"]
        for name, label in (("best_cosine", "best cosine"), ("top_score", "top-1 score")):
            if scores[name]["answerable"]["n"]:
                lines.append(f"{label}: answerable {_dist(scores[name]['answerable'])}; unanswerable {_dist(scores[name]['unanswerable'])}")
        detection = scores.get("detection")
        if detection and detection["base_rate"] is not None:
            best = detection["best_f1"]
            lines.append(
                f"unanswerable detection ({detection['unanswerable']} of {detection['unanswerable'] + detection['answerable']}, "
                f"base rate {_rate(detection['base_rate'])}): "
                + (f"best: best_cosine < {best['threshold']:.2f}: {_detector(best)}" if best else "no threshold flags anything")
            )
        failed = self.failed()
        lines.append(f"failed (no relevant result in the top {FAIL_K}): {len(failed)}" + (": " + ", ".join(r["id"] for r in failed) if failed else ""))
        return "\n".join(lines)

    def _aggregates_table(self) -> str:
        rows = [[f"**{name}**" if name == "overall" else name, row["n"], *(f"{row[m]:.4f}" for m in METRICS)] for name, row in self._rows()]
        return table(["", "n", *METRICS], rows)

    def to_markdown(self, figures: Sequence[tuple[str, str]] = ()) -> str:
        """The report as Markdown; ``figures`` are ``(alt text, path relative to report.md)`` to embed."""
        settings = ", ".join(f"{k}={v}" for k, v in self.settings.items() if k not in {"host", "port", "log_level", "max_body_bytes"})
        lines = [
            "# Retrieval evaluation",
            "",
            f"- created: {self.created_at}",
            f"- target: {self.target}",
            f"- model: {self.model}; index built {self.built_at}",
            f"- questions: {self.questions.get('path')} ({self.questions.get('count')} questions, sha256 {str(self.questions.get('sha256'))[:12]})",
            f"- top_k: {self.top_k}",
            f"- settings: {settings}",
            f"- time: {self.timing.get('total_seconds', '?')} s, median {self.timing.get('latency_ms_median', '?')} ms per question",
            "",
            "## Aggregates (answerable questions)",
            "",
            "Relevance is per gold quote: a result is relevant when its passage overlaps at least half of a gold "
            "quote (in any file where the quote occurs). recall@k is the share of a question's gold quotes found "
            "in the top k; ndcg@10 is quote-level nDCG (each gold quote is credited once, to the first result "
            "that covers it).",
            "",
            self._aggregates_table(),
        ]
        if figures:
            lines += ["", "## Curves by kind", "",
                      f"hit@k and recall@k for k = 1 … {self.top_k} (the table's values at k = 1, 3, 5, 10), then the table as bars.", ""]
            lines += [f"![{alt}]({path})\n" for alt, path in figures]
        lines += _highlights_markdown(self.aggregates.get("highlights"))
        lines += _generated_markdown(self.aggregates.get("generated"))
        scores = self.aggregates["scores"]
        lines += [
            "",
            "## Score calibration",
            "",
            "Could a threshold tell unanswerable questions from answerable ones? `best_cosine` is the best cosine "
            "similarity of a returned passage (comparable across questions); the top-1 `score` depends on the "
            "retrieval mode (a fused rank score in hybrid mode is not).",
            "",
            table(
                ["", "best_cosine: min / median / max", "top-1 score: min / median / max"],
                [[group, _dist(scores["best_cosine"][group]), _dist(scores["top_score"][group])] for group in ("answerable", "unanswerable")],
                "lll",
            ),
            "",
            table(
                ["unanswerable question", "best_cosine", "top-1 score"],
                [[qid, _score(v["best_cosine"]), _score(v["top_score"])] for qid, v in scores["unanswerable"].items()],
            ),
            "",
        ]
        lines += _detection_markdown(scores.get("detection"))
        failed = self.failed()
        lines += [f"## Failed questions: no relevant result in the top {FAIL_K} ({len(failed)})", ""]
        if not failed:
            lines.append("None.")
        for record in failed:
            lines += _failed_markdown(record)
        return "\n".join(lines).rstrip() + "\n"


HIGHLIGHT = f"highlight_hit@{HIGHLIGHT_K}"
N_HIGHLIGHT = f"n_highlight@{HIGHLIGHT_K}"


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def _detector(row: Mapping[str, Any]) -> str:
    return (
        f"flags {row['flagged']} ({row['flagged_unanswerable']} unanswerable): precision {_rate(row['precision'])}, "
        f"recall {_rate(row['recall'])}, F1 {_rate(row['f1'])}"
    )


def _detection_markdown(detection: Mapping[str, Any] | None) -> list[str]:
    if not detection or detection["base_rate"] is None:
        return []
    best = detection["best_f1"]
    total = detection["unanswerable"] + detection["answerable"]
    lines = [
        "## Detecting unanswerable questions",
        "",
        f"Positives are the {detection['unanswerable']} unanswerable questions of {total}. Flagging at random has "
        f"precision {_rate(detection['base_rate'])} (the base rate); flagging every question has recall 1 and F1 "
        f"{_rate(detection['flag_all_f1'])}. A useful detector beats both. Precision is undefined (–) when nothing is flagged.",
        "",
        table(
            ["detector", "flagged", "unanswerable flagged", "precision", "recall", "F1"],
            [
                [f"best_cosine < {row['threshold']:.2f}", row["flagged"], row["flagged_unanswerable"], _rate(row["precision"]), _rate(row["recall"]), _rate(row["f1"])]
                for row in detection["cosine_below"]
            ],
        ),
    ]
    lines += ["", f"Best F1: best_cosine < {best['threshold']:.2f} ({_detector(best)})." if best else "No threshold flags anything.", ""]
    return lines


def _highlights_table(highlights: Mapping[str, Any] | None) -> str | None:
    if not highlights or not highlights["overall"]["n"]:
        return None
    rows = [
        [f"**{name}**" if name == "overall" else name, row["n"], _rate(row["answer_hit"]), row[N_HIGHLIGHT], _rate(row[HIGHLIGHT])]
        for name, row in [("overall", highlights["overall"]), *highlights["by_kind"].items()]
    ]
    return table(["", "n", "answer_hit", f"n@{HIGHLIGHT_K}", HIGHLIGHT], rows)


def _highlights_markdown(highlights: Mapping[str, Any] | None) -> list[str]:
    rendered = _highlights_table(highlights)
    if rendered is None:
        return []
    return [
        "",
        "## Answer sentence and highlights (answerable questions)",
        "",
        "`answer_hit`: the response's `answer` sentence covers a gold quote (same overlap rule as for passages), "
        f"averaged over every answerable question. `{HIGHLIGHT}`: among the top {HIGHLIGHT_K} results whose own passage "
        "covers a gold quote, the share whose highlighted sentences (counted together) cover one of those quotes, "
        f"averaged over the questions with such a result (n@{HIGHLIGHT_K}).",
        "",
        rendered,
    ]


def _generated_markdown(generated: Mapping[str, Any] | None) -> list[str]:
    rendered = generated_table(generated)
    if rendered is None:
        return []
    return [
        "",
        "## Generated answer (POST /answer, answerable questions)",
        "",
        "`answer_hit`: a supported sentence of the generated answer rests on a passage sentence that covers a gold quote "
        "(the extractive answer's rule, applied to the sentence the citation check found it in). `supported_share`: "
        "supported sentences / sentences, averaged over answers. `fully_supported`: answers with every sentence "
        "supported and no invalid marker (docs/generation.md).",
        "",
        rendered,
    ]


def rank_key(rank: int | None) -> float:
    """A first relevant rank as a sortable number: a miss ranks below every rank."""
    return math.inf if rank is None else rank


def _score(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


def _dist(d: Mapping[str, Any]) -> str:
    if not d.get("n"):
        return "none"
    return f"min {_score(d['min'])} / median {_score(d['median'])} / max {_score(d['max'])} (n={d['n']})"


def _quote_md(text: str) -> str:
    return "> " + " ".join(text.split())


def _failed_markdown(record: Mapping[str, Any]) -> list[str]:
    rank = record["first_relevant_rank"]
    lines = [
        f"### {record['id']} ({record['kind']}): first relevant rank {rank if rank is not None else 'none'}",
        "",
        f"**Q:** {record['question']}",
        "",
        "Gold:",
        "",
    ]
    for gold in record["gold"]:
        found = f"found at rank {gold['found_rank']}" if gold["found_rank"] is not None else "not found"
        lines.append(f"- `{gold['source']}` ({found}): “{gold['quote']}”")
    lines.append("")
    if record["results"]:
        first = record["results"][0]
        lines += [
            f"Returned first instead: `{first['source']}:{first['start']}-{first['end']}` (score {first['score']:.4g})"
            + (f", also in {', '.join(f'`{c}`' for c in first['also_in'])}" if first.get("also_in") else ""),
            "",
            _quote_md(first["text"]) + ("…" if len(first["text"]) >= 200 else ""),
            "",
        ]
    else:
        lines += ["Nothing was returned.", ""]
    return lines


def rank_text(rank: int | None) -> str:
    return "miss" if rank is None else str(rank)


def compare_reports(a: Report, b: Report, a_name: str = "A", b_name: str = "B") -> str:
    """Aggregates side by side with B − A, then the questions whose first relevant rank moved."""
    lines = [f"A: {a_name} ({a.created_at}, {a.target}, model {a.model}, top_k={a.top_k})",
             f"B: {b_name} ({b.created_at}, {b.target}, model {b.model}, top_k={b.top_k})"]
    differing = [k for k in sorted(set(a.settings) | set(b.settings)) if a.settings.get(k) != b.settings.get(k)]
    for key in differing:
        lines.append(f"setting {key}: {a.settings.get(key)} → {b.settings.get(key)}")
    if a.questions.get("sha256") != b.questions.get("sha256"):
        lines.append("note: the two reports used different question files; only shared questions are compared below")
    groups = dict(a._rows())
    rows = [
        [name, metric, f"{groups[name][metric]:.4f}", f"{row_b[metric]:.4f}", f"{row_b[metric] - groups[name][metric]:+.4f}"]
        for name, row_b in b._rows()
        if name in groups
        for metric in METRICS
    ]
    lines += ["", table(["group", "metric", "A", "B", "B−A"], rows, "llrrr")]
    ranks_a = {r["id"]: r for r in a.records if r["metrics"] is not None}
    better, worse = [], []
    for record in b.records:
        old = ranks_a.get(record["id"])
        if old is None or record["metrics"] is None:
            continue
        ra, rb = old["first_relevant_rank"], record["first_relevant_rank"]
        if ra == rb:
            continue
        line = f"  {record['id']} ({record['kind']}): {rank_text(ra)} → {rank_text(rb)}  {record['question']}"
        (better if rank_key(rb) < rank_key(ra) else worse).append(line)
    lines += ["", f"better in B ({len(better)}):", *(better or ["  none"])]
    lines += [f"worse in B ({len(worse)}):", *(worse or ["  none"])]
    return "\n".join(lines)

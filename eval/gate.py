"""The regression gate: a run's overall headline numbers against a committed baseline."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from index.errors import CitedError

from eval.report import Report, rank_key, rank_text

__all__ = ["GATED", "BaselineError", "GateResult", "baseline_of", "check", "load_baseline", "save_baseline"]

GATED = ("hit@5", "mrr@10", "ndcg@10")  # overall only: a per-kind mean moves several points per question
# Float noise allowed on top of max_drop, far below any real change (one question of 72
# moves a mean by ~0.014).
TOLERANCE = 1e-9


class BaselineError(CitedError):
    """The baseline file is missing or malformed; one line."""


def _first_ranks(report: Report) -> dict[str, int | None]:
    """Each answerable question's first relevant rank (None: nothing relevant in the top k)."""
    return {r["id"]: r["first_relevant_rank"] for r in report.records if r.get("metrics") is not None}


def baseline_of(report: Report) -> dict[str, Any]:
    """Full-precision values: rounded ones would let a run identical to the baseline fail a zero-tolerance gate."""
    return {
        "date": datetime.now(UTC).date().isoformat(),
        "gated": {name: report.aggregates["overall"][name] for name in GATED},
        "first_relevant_rank": _first_ranks(report),
        "top_k": report.top_k,
        "questions": report.questions,
        "model": report.model,
        "settings": report.settings,
    }


def save_baseline(path: Path, report: Report) -> dict[str, Any]:
    path = Path(path)
    baseline = baseline_of(report)
    if path.parent != Path():
        path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(baseline, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return baseline


def load_baseline(path: Path) -> dict[str, Any]:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaselineError(f"baseline {path} not found (write one with --save-baseline {path})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BaselineError(f"baseline {path} is not readable JSON ({exc})") from None
    gated = data.get("gated") if isinstance(data, dict) else None
    if not isinstance(gated, dict):
        raise BaselineError(f"baseline {path} has no 'gated' object; was it written by --save-baseline?")
    for name in GATED:
        value = gated.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BaselineError(f"baseline {path}: 'gated.{name}' must be a number, got {value!r}")
    return data


@dataclass
class GateResult:
    lines: list[str] = field(default_factory=list)  # one per gated metric, plus notes
    failures: list[str] = field(default_factory=list)  # one "gate failed: ..." line per failing metric

    @property
    def passed(self) -> bool:
        return not self.failures

    def text(self) -> str:
        verdict = "gate passed" if self.passed else f"gate failed on {len(self.failures)} metric(s)"
        return "\n".join([*self.lines, *self.failures, verdict])


def check(baseline: Mapping[str, Any], report: Report, max_drop: float = 0.0, allow_questions: int = 0) -> GateResult:
    """A metric fails when it drops more than ``max_drop`` or ``allow_questions`` / answerable, whichever is larger.

    A different top_k or question file is a note, not a crash: whether it matters is the caller's call.
    """
    if max_drop < 0:
        raise ValueError(f"max_drop must be >= 0, got {max_drop}")
    if allow_questions < 0:
        raise ValueError(f"allow_questions must be >= 0, got {allow_questions}")
    current = report.aggregates["overall"]
    answerable = int(current.get("n") or 0)
    allowed = max(max_drop, allow_questions / answerable if answerable else 0.0)
    result = GateResult()
    result.lines.append(
        f"allowed drop {allowed:.4f} per metric"
        + (f" ({allow_questions} of {answerable} questions)" if allow_questions and allowed > max_drop else "")
    )
    for name in GATED:
        before, now = float(baseline["gated"][name]), float(current[name])
        drop = before - now
        result.lines.append(f"{name:<8} {before:.4f} → {now:.4f}  ({now - before:+.4f})")
        if drop > allowed + TOLERANCE:
            result.failures.append(
                f"gate failed: {name} dropped {drop:.4f} ({before:.4f} → {now:.4f}), more than the allowed {allowed:.4f}"
            )
    old_ranks = baseline.get("first_relevant_rank")
    if isinstance(old_ranks, dict):
        kinds = {r["id"]: r["kind"] for r in report.records}
        dropped = [(qid, old_ranks[qid], rank) for qid, rank in _first_ranks(report).items() if qid in old_ranks and rank_key(rank) > rank_key(old_ranks[qid])]
        result.lines.append(f"questions ranked lower than in the baseline: {len(dropped)}")
        result.lines += [f"  {qid} ({kinds.get(qid, '?')}): {rank_text(a)} → {rank_text(b)}" for qid, a, b in dropped]
    if baseline.get("top_k") not in (None, report.top_k):
        result.lines.append(f"note: baseline used top_k={baseline['top_k']}, this run {report.top_k}")
    old_sha = (baseline.get("questions") or {}).get("sha256")
    if old_sha and old_sha != report.questions.get("sha256"):
        result.lines.append("note: baseline was measured on a different question file")
    return result

"""How well ``best_cosine < t`` flags the unanswerable questions: precision, recall, F1 over a threshold sweep."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["THRESHOLDS", "Detection", "detection_summary", "score_detector"]

# 0.20, 0.25, ..., 0.80: the range where MiniLM cosines of real questions fall. Rounded so
# the thresholds print and compare as written.
THRESHOLDS = tuple(round(0.20 + 0.05 * i, 2) for i in range(13))


@dataclass(frozen=True)
class Detection:
    """Counts of one detector over one question set; the rates are derived from them."""

    positives: int  # unanswerable questions
    total: int  # questions judged
    flagged: int
    flagged_positives: int

    @property
    def precision(self) -> float | None:
        return self.flagged_positives / self.flagged if self.flagged else None

    @property
    def recall(self) -> float | None:
        return self.flagged_positives / self.positives if self.positives else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None:
            return None
        return 2 * p * r / (p + r) if p + r else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "flagged": self.flagged,
            "flagged_unanswerable": self.flagged_positives,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
        }


def score_detector(cases: Iterable[tuple[bool, bool]]) -> Detection:
    """``cases`` are ``(is_unanswerable, flagged)`` pairs, one per question."""
    cases = list(cases)
    return Detection(
        positives=sum(1 for positive, _ in cases if positive),
        total=len(cases),
        flagged=sum(1 for _, flagged in cases if flagged),
        flagged_positives=sum(1 for positive, flagged in cases if positive and flagged),
    )


def detection_summary(cases: Sequence[tuple[bool, float | None]], thresholds: Sequence[float] = THRESHOLDS) -> dict[str, Any]:
    """One row per threshold, the best F1 (lowest threshold on a tie), and the bars a useful detector must clear."""
    scored = [(positive, float(c)) for positive, c in cases if isinstance(c, int | float) and not isinstance(c, bool)]
    sweep = [{"threshold": t, **score_detector((p, c < t) for p, c in scored).to_dict()} for t in thresholds]
    ranked = [row for row in sweep if row["f1"] is not None]
    best = max(ranked, key=lambda row: (row["f1"], -row["threshold"])) if ranked else None
    positives = sum(1 for positive, _ in scored if positive)
    base_rate = positives / len(scored) if scored else None
    return {
        "unanswerable": positives,
        "answerable": len(scored) - positives,
        "base_rate": base_rate,
        "flag_all_f1": score_detector((p, True) for p, _ in scored).f1,
        "n": len(scored),
        "cosine_below": sweep,
        "best_f1": best,
    }

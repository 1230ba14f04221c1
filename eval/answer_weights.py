"""Choosing the answer sentence's weights (index.answer) on a question set, and checking them on held-out questions.

Every answerable question is asked once; the sentences of its top ``ANSWER_FROM`` results are
kept with their signals and whether each covers a gold quote (the ``answer_hit`` rule). Weights
are then only a re-scoring of those candidates, so a whole grid costs one pass of the questions.

The grid is coarse on purpose (four weights, four or five values each): the seed set has 72
answerable questions, and a fine grid would fit them. A point is chosen by

1. the most questions answered (``answer_hit``) on the tuning questions, then
2. among points that tie, the best mean over their grid neighbours (a plateau, not a spike), then
3. the smaller sum of weights (the point nearest plain cosine).

The same rule is run on halves of the set (odd against even question numbers, each way) and with
each kind held out, and the chosen weights are scored on the questions left out: the numbers
docs/results.md reports next to the in-sample one.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from eval.questions import UNANSWERABLE, Question
from eval.relevance import SpansPerGold, covers
from eval.tables import table as markdown_table
from index import Retriever, SearchOptions
from index.answer import ANSWER_FROM, WEIGHTS, AnswerWeights, Candidate, choose

__all__ = ["GRID", "Asked", "collect", "held_out", "hits", "pick", "report"]

GRID: dict[str, tuple[float, ...]] = {
    "lexical": (0.0, 0.25, 0.5, 0.75, 1.0),
    "neighbour": (0.0, 0.1, 0.2, 0.3),
    "expected": (0.0, 0.1, 0.2, 0.3),
    "rank": (0.0, 0.05, 0.1, 0.2),
}


@dataclass(frozen=True)
class Asked:
    """One answerable question's answer candidates and which of them cover a gold quote."""

    id: str
    kind: str
    candidates: tuple[Candidate, ...]
    correct: tuple[bool, ...]


def collect(retriever: Retriever, questions: Sequence[Question], spans: Mapping[str, SpansPerGold]) -> list[Asked]:
    """Ask every answerable question once and keep its answer candidates, labelled by the answer_hit rule."""
    rows = {(p.doc_id, p.start, p.end): i for i, p in enumerate(retriever.passages)}
    asked = [q for q in questions if q.kind != UNANSWERABLE]
    vectors = retriever.embedder.encode([q.question for q in asked])
    out = []
    for question, vector in zip(asked, vectors, strict=True):
        found = retriever.search_encoded([question.question], vector[None, :], [SearchOptions(top_k=ANSWER_FROM)])[0]
        top = [rows[(h.passage.doc_id, h.passage.start, h.passage.end)] for h in found.hits]
        candidates = tuple(retriever.answer_candidates(question.question, vector, top))
        correct = tuple(
            any(covers(span, c.passage.source, c.span.start, c.span.end) for per_gold in spans[question.id] for span in per_gold)
            for c in candidates
        )
        out.append(Asked(question.id, question.kind, candidates, correct))
    return out


def hits(asked: Sequence[Asked], weights: AnswerWeights) -> int:
    """Questions whose chosen answer covers a gold quote."""
    total = 0
    for a in asked:
        best = choose(a.candidates, weights)
        total += best is not None and a.correct[a.candidates.index(best)]
    return total


def _points() -> list[tuple[int, ...]]:
    return list(itertools.product(*(range(len(v)) for v in GRID.values())))


def _weights(point: tuple[int, ...]) -> AnswerWeights:
    return AnswerWeights(**{name: values[i] for (name, values), i in zip(GRID.items(), point, strict=True)})


def pick(asked: Sequence[Asked]) -> tuple[AnswerWeights, int]:
    """The grid point chosen by the rule of the module docstring, and how many of ``asked`` it answers."""
    score = {p: hits(asked, _weights(p)) for p in _points()}

    def neighbourhood(p: tuple[int, ...]) -> float:
        around = [q for q in itertools.product(*((i - 1, i, i + 1) for i in p)) if q in score]
        return statistics.fmean(score[q] for q in around)

    best = max(score.values())
    tied = [p for p, s in score.items() if s == best]
    chosen = max(tied, key=lambda p: (neighbourhood(p), -sum(_weights(p).__dict__.values()), tuple(-i for i in p)))
    return _weights(chosen), best


def held_out(asked: Sequence[Asked]) -> list[dict]:
    """Weights picked without some questions, scored on them: two halves (by question number) and each kind."""
    folds: list[tuple[str, Callable[[Asked], bool]]] = [
        ("odd-numbered questions", lambda a: int(a.id.lstrip("q")) % 2 == 1),
        ("even-numbered questions", lambda a: int(a.id.lstrip("q")) % 2 == 0),
    ]
    folds += [(f"kind {kind}", lambda a, kind=kind: a.kind == kind) for kind in sorted({a.kind for a in asked})]
    rows = []
    for name, left_out in folds:
        test = [a for a in asked if left_out(a)]
        weights, _ = pick([a for a in asked if not left_out(a)])
        rows.append({
            "held out": name,
            "n": len(test),
            "weights chosen without them": weights,
            "cosine only": hits(test, AnswerWeights()),
            "chosen weights": hits(test, weights),
            "served weights": hits(test, WEIGHTS),
        })
    return rows


def _w(weights: AnswerWeights) -> str:
    return f"lexical {weights.lexical:g}, neighbour {weights.neighbour:g}, expected {weights.expected:g}, rank {weights.rank:g}"


def report(asked: Sequence[Asked]) -> str:
    """The in-sample choice and the held-out table, as Markdown."""
    weights, best = pick(asked)
    n = len(asked)
    reachable = sum(any(a.correct) for a in asked)
    lines = [
        f"{n} answerable questions; {reachable} have a gold sentence among the top {ANSWER_FROM} results (the ceiling).",
        f"cosine only: {hits(asked, AnswerWeights())}/{n}; served weights ({_w(WEIGHTS)}): {hits(asked, WEIGHTS)}/{n}",
        f"chosen on all questions: {_w(weights)}: {best}/{n}",
        "",
    ]
    rows = held_out(asked)
    header = ["held out", "n", "weights chosen without them", "cosine only", "chosen weights", "served weights"]
    body = [[r["held out"], r["n"], _w(r["weights chosen without them"]), r["cosine only"], r["chosen weights"], r["served weights"]] for r in rows]
    lines.append(markdown_table(header, body, align="lrlrrr"))
    return "\n".join(lines)

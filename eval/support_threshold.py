"""Choosing the citation check's thresholds (index.support) on the project's question set.

A generated sentence citing a passage is *supported* when one sentence of that passage contains
it: enough of its content terms (``LEXICAL_SUPPORT``) or a close enough sentence vector
(``VECTOR_SUPPORT``), with every number kept. Where to put the two thresholds is measured here:

- **positives**: each answerable question's gold quote (copied, as a model quoting the passage
  would) and, where eval/support_paraphrases.jsonl has one, a hand-written paraphrase of it,
  each against the passage of the index that holds the quote;
- **negatives, other**: the same sentence against the gold passage of every other question
  (passages that hold any span of this quote, e.g. a second scrape of the article, are left out);
- **negatives, near**: against the passages the retriever ranks highest for the sentence itself
  that do not hold the quote: same topic, many shared words, the passage a model would most
  plausibly cite by mistake. Some of them do restate the claim, so a few "false" supports here
  are true ones; they are reported, not used to choose.

Rule (the same for both thresholds): the lowest value on the grid at which no *other* negative
is supported, plus one grid step of margin, so float noise and a new question cannot cross it.
``cited eval support-threshold`` prints the table and the chosen pair; the constants in
index/support.py carry the command's result.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.questions import Question, QuestionSetError
from eval.relevance import SpansPerGold, covers
from eval.tables import table as markdown_table
from index import Retriever, SearchOptions
from index.sentences import split_sentences
from index.support import LEXICAL_SUPPORT, VECTOR_SUPPORT, Signals, signals, support_kind

__all__ = ["LEXICAL_GRID", "VECTOR_GRID", "Pair", "Choice", "choose", "collect", "load_paraphrases", "report"]

LEXICAL_GRID = tuple(round(0.40 + 0.05 * i, 2) for i in range(13))  # 0.40 .. 1.00
VECTOR_GRID = tuple(round(0.50 + 0.02 * i, 2) for i in range(25))  # 0.50 .. 0.98
NEAR = 3  # retrieved passages per claim kept as near negatives


@dataclass(frozen=True)
class Pair:
    """One claim against one passage: the claim's signals against each of the passage's sentences."""

    question: str
    claim: str  # "copy" or "paraphrase"
    label: str  # "positive", "other" or "near"
    sentences: tuple[Signals, ...]

    def supported(self, lexical: float, cosine: float) -> bool:
        return any(support_kind(s, lexical, cosine) is not None for s in self.sentences)

    def by(self, test: str, threshold: float) -> bool:
        """Supported by one test alone (figures kept): ``test`` "lexical" or "vector"."""
        return any(s.figures_kept and (s.containment if test == "lexical" else s.cosine) >= threshold for s in self.sentences)


def load_paraphrases(path: Path) -> dict[str, str]:
    """Question id -> a hand-written paraphrase of its (first) gold quote."""
    out: dict[str, str] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise QuestionSetError(f"paraphrase file {path}: {exc}") from None
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                entry = json.loads(line)
                out[str(entry["id"])] = str(entry["paraphrase"])
            except (ValueError, KeyError, TypeError):
                raise QuestionSetError(f"{path}:{number}: expected {{\"id\": ..., \"paraphrase\": ...}}") from None
    return out


def _holds(row_source: str, start: int, end: int, per_gold: SpansPerGold) -> bool:
    return any(covers(span, row_source, start, end) for spans in per_gold for span in spans)


def collect(retriever: Retriever, questions: Sequence[Question], spans: Mapping[str, SpansPerGold],
            paraphrases: Mapping[str, str]) -> list[Pair]:
    """Every (claim, passage) pair the rule looks at, with the claim's signals against each passage sentence."""
    passages = retriever.passages
    by_source: dict[str, list[int]] = {}
    for row, p in enumerate(passages):
        by_source.setdefault(p.source, []).append(row)
    own: dict[str, int] = {}  # question -> the passage row holding most of its first gold quote
    for q in questions:
        if not q.answerable:
            continue
        span = next((s for s in spans[q.id][0] if s.source == q.gold[0].source), spans[q.id][0][0])
        rows = by_source.get(span.source, [])
        overlap = [(min(passages[r].end, span.end) - max(passages[r].start, span.start), -r) for r in rows]
        if overlap and max(overlap)[0] > 0:
            own[q.id] = -max(overlap)[1]
    claims = [(q.id, "copy", q.gold[0].quote) for q in questions if q.id in own]
    claims += [(qid, "paraphrase", text) for qid, text in paraphrases.items() if qid in own]

    cache: dict[int, tuple[list[str], list[set[str]], np.ndarray]] = {}

    def sentences_of(row: int) -> tuple[list[str], list[set[str]], np.ndarray]:
        if row not in cache:
            p = passages[row]
            texts = [p.text[s:e] for s, e in split_sentences(p.text)]
            cache[row] = (texts, [set(t) for t in retriever.lexicon.terms(texts)], retriever.embedder.encode(texts))
        return cache[row]

    texts = [c for _, _, c in claims]
    claim_terms = [set(t) for t in retriever.lexicon.terms(texts)]
    vectors = retriever.embedder.encode(texts)
    rows_of = {(p.doc_id, p.start, p.end): r for r, p in enumerate(passages)}
    pairs: list[Pair] = []
    for (qid, kind, claim), words, vector in zip(claims, claim_terms, vectors, strict=True):
        per_gold = spans[qid]
        near: list[int] = []
        for hit in retriever.search(claim, SearchOptions(top_k=NEAR + 3)).hits:
            shown = [hit.passage, *hit.also_in]
            if any(_holds(p.source, p.start, p.end, per_gold) for p in shown):
                continue
            near.append(rows_of[(hit.passage.doc_id, hit.passage.start, hit.passage.end)])
        targets = [(own[qid], "positive")]
        targets += [(row, "other") for other, row in own.items()
                    if other != qid and not _holds(passages[row].source, passages[row].start, passages[row].end, per_gold)]
        targets += [(row, "near") for row in near[:NEAR]]
        for row, label in targets:
            s_texts, s_terms, s_vectors = sentences_of(row)
            pairs.append(Pair(qid, kind, label, tuple(signals(claim, words, vector, s_texts, s_terms, s_vectors))))
    return pairs


@dataclass(frozen=True)
class Choice:
    lexical: float
    vector: float


def _lowest_clean(pairs: Sequence[Pair], test: str, grid: Sequence[float]) -> float:
    """The grid value one step above the lowest one at which no "other" negative passes ``test``."""
    others = [p for p in pairs if p.label == "other"]
    for i, value in enumerate(grid):
        if not any(p.by(test, value) for p in others):
            return grid[min(i + 1, len(grid) - 1)]
    return grid[-1]


def choose(pairs: Sequence[Pair]) -> Choice:
    return Choice(_lowest_clean(pairs, "lexical", LEXICAL_GRID), _lowest_clean(pairs, "vector", VECTOR_GRID))


def _rate(pairs: Sequence[Pair], passes) -> str:
    if not pairs:
        return "-"
    n = sum(1 for p in pairs if passes(p))
    return f"{n / len(pairs):.3f} ({n}/{len(pairs)})"


def _groups(pairs: Sequence[Pair]) -> dict[str, list[Pair]]:
    return {
        "copy, own passage": [p for p in pairs if p.label == "positive" and p.claim == "copy"],
        "paraphrase, own passage": [p for p in pairs if p.label == "positive" and p.claim == "paraphrase"],
        "other question's passage": [p for p in pairs if p.label == "other"],
        "near passage (retrieved)": [p for p in pairs if p.label == "near"],
    }


def report(pairs: Sequence[Pair]) -> str:
    """The separation of each test along its grid, and the chosen pair's supported shares."""
    chosen = choose(pairs)
    groups = _groups(pairs)
    lines = ["# Citation-check thresholds (index/support.py)", ""]
    for test, grid in (("lexical", LEXICAL_GRID), ("vector", VECTOR_GRID)):
        rows = [[f"{v:.2f}", *(_rate(g, lambda p, v=v: p.by(test, v)) for g in groups.values())] for v in grid]
        lines += [f"## {test} alone: share supported", "", markdown_table(["threshold", *groups], rows), ""]
    both = [[name, _rate(g, lambda p: p.supported(chosen.lexical, chosen.vector)),
             _rate(g, lambda p: p.supported(LEXICAL_SUPPORT, VECTOR_SUPPORT))] for name, g in groups.items()]
    lines += [
        f"## Both tests: chosen lexical {chosen.lexical:.2f}, vector {chosen.vector:.2f} "
        f"(in index/support.py now: {LEXICAL_SUPPORT:.2f}, {VECTOR_SUPPORT:.2f})",
        "",
        markdown_table(["pairs", "supported (chosen)", "supported (in use)"], both),
        "",
        "Rule: per test, one grid step above the lowest threshold at which no sentence is supported by another question's passage.",
    ]
    return "\n".join(lines)

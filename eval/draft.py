"""`cited eval draft`: a question-set skeleton for any corpus, from passages spread over its documents and topics.

A person writes the questions; what a program can do well is choose *where* to ask. The draft
picks passages that cover the corpus (one per region of the embedding space, each region's most
typical passage, spreading over documents and their near-duplicate copies), takes from each a
whole sentence as the gold quote, and leaves the question empty for a person to write. The
result is a ``questions.jsonl`` in the format :mod:`eval.questions` reads; `cited eval` refuses
it, naming the lines, until every question is written.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from eval.defaults import DRAFT_COUNT
from eval.questions import UNANSWERABLE
from index.sentences import split_sentences
from index.types import Passage

if TYPE_CHECKING:
    from index import Retriever

__all__ = [
    "DEFAULT_COUNT",
    "TODO",
    "Draft",
    "draft_from_retriever",
    "draft_questions",
    "passage_vectors",
    "pick_quote",
    "quote_candidates",
    "select_diverse",
    "write_draft",
]

DEFAULT_COUNT = DRAFT_COUNT
TODO = "TODO"  # every note of a draft entry starts with it
SEED = 1234  # k-means initialisation and the candidate sample: the same index gives the same draft
MAX_CANDIDATES = 20_000  # passages clustered at most (a deterministic sample of larger indexes)
KMEANS_ROUNDS = 25
# A gold quote is one whole sentence a question can be asked about: long enough to hold a fact,
# short enough to read at a glance, on one line, mostly words, ending like a sentence.
MIN_WORDS, MAX_WORDS, IDEAL_WORDS = 8, 45, 22
MAX_CHARS = 350
_ENDS_LIKE_A_SENTENCE = re.compile(r"""[.!?…]["'”’)\]]*$""")
_URL = re.compile(r"https?://|www\.", re.I)

KIND_HINT = "keep kind factoid, or change it to paraphrase, alias or multi-source (add a gold quote per source)"


@dataclass(frozen=True)
class Draft:
    entries: list[dict[str, Any]]  # JSON objects in questions.jsonl's format, file order
    quotes: int  # entries with a gold quote
    documents: int  # distinct files they quote
    candidates: int  # passages that had a usable sentence (a quote may come from each; more when they are few)


def pick_quote(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The best whole sentence of ``text`` inside ``[start, end)``, as offsets into ``text``, or None."""
    spans = quote_candidates(text, start, end)
    return spans[0] if spans else None


def quote_candidates(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The usable whole sentences of ``text`` inside ``[start, end)``, best first, as offsets into ``text``.

    Sentences are split per line (a line is a paragraph, a heading or furniture), and only those
    lying wholly inside the range count, so a quote is never a fragment cut by a passage edge.
    The nearer a sentence is to :data:`IDEAL_WORDS` words the better, the earlier on a tie.
    """
    found: list[tuple[int, int, int]] = []
    pos = text.rfind("\n", 0, start) + 1  # start of the line holding `start`
    while pos < end:
        newline = text.find("\n", pos)
        line_end = len(text) if newline < 0 else newline
        for s, e in split_sentences(text, pos, line_end):
            if s >= start and e <= end and _usable(text[s:e]):
                found.append((abs(len(text[s:e].split()) - IDEAL_WORDS), s, e))
        pos = line_end + 1
    return [(s, e) for _, s, e in sorted(found)]


def _usable(sentence: str) -> bool:
    words = sentence.split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS or len(sentence) > MAX_CHARS:
        return False
    if not _ENDS_LIKE_A_SENTENCE.search(sentence) or _URL.search(sentence):
        return False
    letters = sum(ch.isalpha() for ch in sentence)
    visible = sum(not ch.isspace() for ch in sentence)
    # mostly words, and not an all-capitals banner
    return letters >= 0.6 * visible and any(ch.islower() for ch in sentence)


def _kmeans(vectors: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Spherical k-means (cosine) with k-means++ seeding; returns the unit centroids, shape (k, d)."""
    n = len(vectors)
    centroids = np.empty((k, vectors.shape[1]), dtype=np.float64)
    centroids[0] = vectors[rng.integers(n)]
    nearest = 1.0 - vectors @ centroids[0]
    for i in range(1, k):
        weights = np.clip(nearest, 0.0, None)
        total = weights.sum()
        pick = rng.choice(n, p=weights / total) if total > 0 else rng.integers(n)
        centroids[i] = vectors[pick]
        nearest = np.minimum(nearest, 1.0 - vectors @ centroids[i])
    for _ in range(KMEANS_ROUNDS):
        assign = np.argmax(vectors @ centroids.T, axis=1)
        moved = False
        for c in range(k):
            members = vectors[assign == c]
            if len(members):
                mean = members.sum(axis=0)
                norm = np.linalg.norm(mean)
                if norm > 0 and not np.allclose(mean / norm, centroids[c]):
                    centroids[c] = mean / norm
                    moved = True
        if not moved:
            break
    return centroids


def select_diverse(vectors: np.ndarray, groups: Sequence[str], count: int, seed: int = SEED) -> list[int]:
    """``count`` row numbers spread over the embedding space and over ``groups`` (documents).

    k-means cuts the vectors into ``count`` regions; each region, largest first, gives its most
    typical row (nearest its centroid) among those whose group has been drawn least so far, so
    each document is used once before any is used twice. Regions left empty are made up by the
    row farthest from everything chosen. Rows are L2-normalised vectors; all of them when
    ``count`` is at least their number.
    """
    n = len(vectors)
    if len(groups) != n:
        raise ValueError(f"{n} vectors but {len(groups)} groups")
    if count >= n:
        return list(range(n))
    if count <= 0:
        return []
    vectors = np.asarray(vectors, dtype=np.float64)
    rng = np.random.default_rng(seed)
    centroids = _kmeans(vectors, count, rng)
    similarity = vectors @ centroids.T
    assign = np.argmax(similarity, axis=1)
    sizes = np.bincount(assign, minlength=count)
    used: Counter[str] = Counter()
    chosen: list[int] = []
    for c in sorted(range(count), key=lambda c: (-sizes[c], c)):
        members = np.flatnonzero(assign == c)
        if not len(members):
            continue
        typical = sorted(members.tolist(), key=lambda row: (-similarity[row, c], row))
        row = min(typical, key=lambda row: used[groups[row]])  # min keeps the most typical among the least used
        chosen.append(row)
        used[groups[row]] += 1
    # Farthest-point fill for empty regions.
    free = np.ones(n, dtype=bool)
    free[chosen] = False
    nearest = np.max(vectors @ vectors[chosen].T, axis=1) if chosen else np.full(n, -1.0)
    while len(chosen) < count and free.any():
        candidates = np.flatnonzero(free)
        least = min(used[groups[r]] for r in candidates)
        candidates = [r for r in candidates.tolist() if used[groups[r]] == least]
        row = min(candidates, key=lambda r: (nearest[r], r))
        chosen.append(row)
        used[groups[row]] += 1
        free[row] = False
        nearest = np.maximum(nearest, vectors @ vectors[row])
    return chosen


def draft_questions(
    passages: Sequence[Passage],
    vectors: np.ndarray,
    texts: Mapping[str, str],
    count: int = DEFAULT_COUNT,
    unanswerable: int | None = None,
    groups: Sequence[str] | None = None,
    seed: int = SEED,
) -> Draft:
    """The skeleton: ``count`` entries quoting diverse passages, then ``unanswerable`` empty slots
    (default one per eight quotes, at least one: a set needs questions the corpus cannot answer).

    Args:
        passages: the index's passages, row i matching ``vectors[i]``.
        vectors: their L2-normalised embeddings, shape (len(passages), d).
        texts: each passage's ``source`` file decoded as UTF-8 (no newline translation), so quotes are verbatim.
        groups: what counts as one document for the spread (default each passage's ``doc_id``; pass the
            same label for near-duplicate copies so a copy does not count as another document).
    """
    if len(passages) != len(vectors):
        raise ValueError(f"{len(passages)} passages but {len(vectors)} vectors")
    groups = list(groups) if groups is not None else [p.doc_id for p in passages]
    quotes: list[tuple[int, list[tuple[int, int]]]] = []  # (row, its usable sentences) of each passage with one
    seen: set[str] = set()  # a sentence shared by overlapping passages or copied files is quoted once
    for row, passage in enumerate(passages):
        text = texts.get(passage.source)
        if text is None or text[passage.start:passage.end] != passage.text:
            continue  # the file changed since the build: its offsets no longer hold
        spans = [(s, e) for s, e in quote_candidates(text, passage.start, passage.end) if text[s:e] not in seen]
        if spans:
            seen.add(text[slice(*spans[0])])
            quotes.append((row, spans))
    rng = np.random.default_rng(seed)
    if len(quotes) > MAX_CANDIDATES:
        keep = np.sort(rng.choice(len(quotes), MAX_CANDIDATES, replace=False))
        quotes = [quotes[i] for i in keep]
    rows = [row for row, _ in quotes]
    picked = select_diverse(np.asarray(vectors)[rows], [groups[r] for r in rows], count, seed) if rows else []
    chosen = [(quotes[i][0], quotes[i][1][0]) for i in picked]
    # A corpus with fewer passages than questions asked: more sentences of the same passages, in turn.
    taken = {texts[passages[row].source][slice(*span)] for row, span in chosen}
    depth = 1
    while len(chosen) < count and any(len(quotes[i][1]) > depth for i in picked):
        for i in picked:
            row, spans = quotes[i]
            if len(chosen) < count and len(spans) > depth and texts[passages[row].source][slice(*spans[depth])] not in taken:
                taken.add(texts[passages[row].source][slice(*spans[depth])])
                chosen.append((row, spans[depth]))
        depth += 1
    chosen.sort(key=lambda q: (passages[q[0]].source, q[1]))
    if unanswerable is None:
        unanswerable = max(1, len(chosen) // 8)
    entries = []
    for n, (row, (start, end)) in enumerate(chosen, start=1):
        passage = passages[row]
        where = f"passage {passage.source}:{passage.start}-{passage.end}" + (f" under {passage.heading!r}" if passage.heading else "")
        entries.append({
            "id": f"d{n:03d}",
            "kind": "factoid",
            "question": "",
            "gold": [{"source": passage.source, "quote": texts[passage.source][start:end]}],
            "note": f"{TODO}: write a question this quote answers; {KIND_HINT}; then delete this note ({where})",
        })
    for n in range(len(entries) + 1, len(entries) + unanswerable + 1):
        entries.append({
            "id": f"d{n:03d}",
            "kind": UNANSWERABLE,
            "question": "",
            "gold": [],
            "note": f"{TODO}: write a question a reader of this corpus could ask but no document answers "
            "(same topics, a fact that is not there); then delete this note",
        })
    return Draft(
        entries=entries,
        quotes=len(chosen),
        documents=len({passages[row].source for row, _ in chosen}),
        candidates=len(quotes),
    )


def passage_vectors(retriever: Retriever) -> np.ndarray:
    """Every passage's stored vector, row i for passage i (re-encoded if the index cannot give them back)."""
    index = retriever.stored.vector_index
    n = len(retriever.passages)
    try:
        return np.asarray(index.reconstruct_n(0, n), dtype=np.float32)
    except RuntimeError:  # an inverted-file index keeps no row → vector map until asked to
        if hasattr(index, "make_direct_map"):
            index.make_direct_map()
            return np.asarray(index.reconstruct_n(0, n), dtype=np.float32)
        return retriever.embedder.encode([p.text for p in retriever.passages])


def draft_from_retriever(
    retriever: Retriever, corpus_dir: Path, count: int = DEFAULT_COUNT, unanswerable: int | None = None, seed: int = SEED
) -> Draft:
    """:func:`draft_questions` over a loaded index of ``corpus_dir``, near-duplicate documents counted as one."""
    corpus_dir = Path(corpus_dir)
    texts = {}
    for source in sorted({p.source for p in retriever.passages}):
        path = corpus_dir / source
        if path.is_file():
            texts[source] = path.read_bytes().decode("utf-8", errors="replace")  # a changed file fails the offsets check
    # a document and its copies form one group, named after the first of them
    label = {doc: min({doc, *partners}) for doc, partners in retriever.copy_partners.items()}
    groups = [label.get(p.doc_id, p.doc_id) for p in retriever.passages]
    return draft_questions(retriever.passages, passage_vectors(retriever), texts, count, unanswerable, groups, seed)


def write_draft(path: Path, entries: Sequence[Mapping[str, Any]]) -> None:
    """One JSON object per line, UTF-8 as written (quotes keep their curly marks and dashes)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for entry in entries:
            f.write(json.dumps(entry, ensure_ascii=False) + "\n")

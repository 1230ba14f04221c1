"""Question in, ranked and cited passages out: the one retrieval path of the API, the CLI and the eval.

    dense (the store's passages, blended with their best sentence) ─┐
                                                                      ├─ fuse ─ feedback ─ collapse near-duplicates
    lexical (the store's BM25) ───────────────────────────────────────┘     ─ diversify (MMR) ─ top_k / token_budget ─ highlight

Feedback (optional) moves the question towards the top fused passages, asks the dense index
again and fuses again.

Each stage is switchable in RankingConfig so its effect can be measured with the eval.
The candidates come from a store (index.passage_store: FAISS + bm25s, or Milvus); everything
after them is computed here, the same for every store.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from index.components import Components, read_components
from index.config import RankingConfig, StoreConfig
from index.dedup import SHARED_RUN, copied_documents, shingles
from index.answer import ANSWER_FROM, WEIGHTS, AnswerSentence, AnswerWeights, Lexicon, candidates, choose, highlights, idf_of
from index.diversify import mmr
from index.embed import Embedder
from index.errors import ModelError
from index.fusion import reciprocal_rank_fusion, weighted_score_fusion
from index.passage_store import PassageStore, open_store
from index.store import StoredIndex
from index.ties import ranked, stable_key
from index.types import Hit

TERMS_CACHED = 200_000  # sentences whose terms are kept for the answer's lexical overlap
COVERED = 0.5  # a candidate whose shingles are at least this much already shown elsewhere is a duplicate


@dataclass(frozen=True)
class SearchOptions:
    top_k: int = 5
    token_budget: int | None = None  # cl100k tokens the returned passages may add up to


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]
    answer: AnswerSentence | None
    best_cosine: float | None  # of the question and a returned passage; None without results
    # The build that answered, and the sha256 of each of its source files: carried with the
    # result because a hot swap may replace the live build before the response is written.
    build: str = ""
    files: Mapping[str, str] = field(default_factory=dict)
    # doc_id -> the manifest's record of that document: which text offsets index, encoding, page starts
    documents: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass
class _Candidate:
    row: int
    score: float
    also_in: list[int] = field(default_factory=list)


class Retriever:
    """Holds the loaded model and index; read-only after construction, so threads may share it."""

    def __init__(self, embedder: Embedder, stored: StoredIndex, ranking: RankingConfig = RankingConfig(),
                 store: StoreConfig = StoreConfig()) -> None:
        self.components: Components = read_components(stored.path)
        self.store_config = store
        self.store: PassageStore = open_store(store, stored, self.components)
        if self.store.dimension != embedder.info.dimension:
            raise ModelError(
                f"index vectors have dimension {self.store.dimension}, model {embedder.info.name} gives {embedder.info.dimension}"
            )
        self.embedder = embedder
        self.stored = stored
        self.passages = stored.passages
        self.manifest = stored.manifest
        self.documents = {d["doc_id"]: d for d in stored.manifest["documents"]}
        self.ranking = ranking
        pairs = ((a, b) for a, partners in self.components.duplicates.items() for b, _ in partners)
        self.copies = copied_documents(pairs, [p.doc_id for p in self.passages])
        self.copy_partners: dict[str, set[str]] = {}  # document -> the documents that are copies of it
        for a, b in (tuple(pair) for pair in self.copies):
            self.copy_partners.setdefault(a, set()).add(b)
            self.copy_partners.setdefault(b, set()).add(a)
        # Equal scores (index.ties) are ordered by document, then offset, at every stage.
        self.order = stable_key([(p.doc_id, p.start, p.end) for p in self.passages])
        self._shingles: dict[int, frozenset[int]] = {}  # per passage row, filled as collapse meets them
        lexical = self.components.lexical
        self.lexicon = Lexicon(lexical.terms, lambda term: idf_of(len(lexical), lexical.document_frequency(term)))
        self._sentence_terms: dict[int, list[str]] = {}  # per sentence id, filled as answers meet them
        self.answer_weights: AnswerWeights = WEIGHTS

    def for_build(self, stored: StoredIndex) -> Retriever:
        """Another build (a hot swap) with this model, ranking and kind of store."""
        return Retriever(self.embedder, stored, self.ranking, self.store_config)

    def with_ranking(self, ranking: RankingConfig) -> Retriever:
        """The same loaded index ranked another way (for ablations), without reloading anything."""
        clone = copy.copy(self)
        clone.ranking = ranking
        return clone

    def search(self, question: str, options: SearchOptions = SearchOptions()) -> SearchResult:
        return self.search_batch([question], options)[0]

    def search_batch(self, questions: Sequence[str], options: SearchOptions = SearchOptions()) -> list[SearchResult]:
        if not questions:
            return []
        return self.search_encoded(questions, self.embedder.encode(questions), [options] * len(questions))

    def search_encoded(self, questions: Sequence[str], queries: np.ndarray, options: Sequence[SearchOptions]) -> list[SearchResult]:
        """Search with question vectors already computed (batched or cached by the caller).

        Questions that need the same candidate depth share one call of the store; each question's
        ranking is the one it would get alone (up to float noise, which index.ties absorbs).
        """
        if not len(questions) == len(queries) == len(options):
            raise ValueError(f"{len(questions)} questions, {len(queries)} vectors and {len(options)} options")
        results: list[SearchResult | None] = [None] * len(questions)
        by_depth: dict[int, list[int]] = {}
        for i, option in enumerate(options):
            by_depth.setdefault(max(self.ranking.candidates, 3 * option.top_k), []).append(i)
        for depth, members in by_depth.items():
            pools = self._candidates([questions[i] for i in members], queries[members], depth)
            for i, pool in zip(members, pools, strict=True):
                results[i] = self._result(questions[i], pool, queries[i], options[i])
        return results  # type: ignore[return-value]

    # -- stages ---------------------------------------------------------------------------------

    def _candidates(self, questions: Sequence[str], queries: np.ndarray, depth: int) -> list[list[_Candidate]]:
        depth = min(depth, len(self.passages))
        mode = self.ranking.retrieval
        want_dense = mode in ("dense", "hybrid") and depth > 0
        dense, lexical = self.store.candidates(queries, questions, depth, self.order, want_dense, mode in ("bm25", "hybrid") and depth > 0)
        if want_dense:
            dense = self._with_best_sentences(queries, dense, depth)
        fused = [self._fuse(d, b) for d, b in zip(dense, lexical, strict=True)]
        if self.ranking.feedback_passages > 0 and mode in ("dense", "hybrid") and depth > 0:
            dense = self._dense(self._feedback_queries(queries, fused), depth)
            fused = [self._fuse(d, b) for d, b in zip(dense, lexical, strict=True)]
        return [[_Candidate(r, s) for r, s in f] for f in fused]

    def _dense(self, queries: np.ndarray, depth: int) -> list[list[tuple[int, float]]]:
        return self._with_best_sentences(queries, self.store.dense(queries, depth, self.order), depth)

    def _with_best_sentences(self, queries: np.ndarray, hits: list[list[tuple[int, float]]], depth: int) -> list[list[tuple[int, float]]]:
        w = self.ranking.sentence_weight
        if w <= 0:
            return hits
        joining = self.components.sentences.passages_by_sentence(queries, depth, self.order)
        return [self._with_sentences(h, j, query, depth, w) for h, j, query in zip(hits, joining, queries, strict=True)]

    def _with_sentences(self, hits: list[tuple[int, float]], joining: list[int], query: np.ndarray, depth: int, w: float) -> list[tuple[int, float]]:
        """Blend each passage's cosine with its best sentence's.

        A question usually asks about one sentence; in a 128-token passage that sentence's
        meaning is diluted by its neighbours. Passages whose best sentence ranks in the top
        ``depth`` (``joining``) join the candidates even if the passage as a whole did not.
        Only candidates are scored, so the cost is bounded by the depth, not the corpus.
        """
        cosine = dict(hits)
        joined = [row for row in joining if row not in cosine]
        for row, vector in zip(joined, self.store.vectors(joined), strict=True):
            cosine[row] = float(vector @ query)
        best = self.components.sentences.best_of(list(cosine), query)
        return ranked(((row, (1 - w) * c + w * float(b)) for (row, c), b in zip(cosine.items(), best, strict=True)), self.order)[:depth]

    def _fuse(self, dense: list[tuple[int, float]], lexical: list[tuple[int, float]]) -> list[tuple[int, float]]:
        mode = self.ranking.retrieval
        if mode == "dense":
            return dense
        if mode == "bm25":
            return lexical
        weights = {"dense": self.ranking.dense_weight, "bm25": 1.0}
        if self.ranking.fusion == "rrf":
            ranks = {"dense": [r for r, _ in dense], "bm25": [r for r, _ in lexical]}
            return reciprocal_rank_fusion(ranks, weights, k=self.ranking.rrf_k, key=self.order)
        return weighted_score_fusion({"dense": dense, "bm25": lexical}, weights, key=self.order)

    def _feedback_queries(self, queries: np.ndarray, fused: list[list[tuple[int, float]]]) -> np.ndarray:
        """Rocchio feedback: each question moved towards the mean of its top fused passages.

        The passages the first round ranks highest share the question's vocabulary *and*
        meaning; their centroid carries the corpus's own words for what was asked, which is
        what a question phrased differently from its answer lacks. Unit length is restored
        so inner products stay cosines.
        """
        moved = queries.copy()
        for i, best_first in enumerate(fused):
            rows = [r for r, _ in best_first[: self.ranking.feedback_passages]]
            if rows:
                centroid = self.store.vectors(rows).mean(axis=0)
                moved[i] = queries[i] + self.ranking.feedback_weight * centroid
                moved[i] /= max(float(np.linalg.norm(moved[i])), 1e-12)
        return moved

    def _result(self, question: str, pool: list[_Candidate], query: np.ndarray, options: SearchOptions) -> SearchResult:
        if self.ranking.collapse_duplicates:
            # Without a budget or MMR only the first top_k survivors are ever shown: stop there.
            enough = options.token_budget is None and self.ranking.mmr_lambda >= 1.0
            pool = self._collapse(pool, options.top_k if enough else len(pool))
        if self.ranking.mmr_lambda < 1.0 and len(pool) > 1:
            vectors = self.store.vectors([c.row for c in pool])
            pool = [pool[i] for i in mmr([c.score for c in pool], vectors, len(pool), self.ranking.mmr_lambda)]
        chosen: list[_Candidate] = []
        used = 0
        for candidate in pool:
            if len(chosen) == options.top_k:
                break
            tokens = self.passages[candidate.row].tokens
            if options.token_budget is not None:
                if used + tokens > options.token_budget:
                    continue  # skip what does not fit; a shorter, lower-ranked passage still may
                used += tokens
            chosen.append(candidate)
        # Highlights and the answer come from one scoring of the results' sentences (index.answer),
        # so the answer is always a highlighted sentence of its passage.
        sentences = self.answer_candidates(question, query, [c.row for c in chosen]) if self.ranking.highlight else []
        hits: list[Hit] = []
        for rank, candidate in enumerate(chosen, 1):
            hits.append(
                Hit(
                    rank=rank,
                    score=float(candidate.score),
                    passage=self.passages[candidate.row],
                    also_in=tuple(self.passages[r] for r in candidate.also_in),
                    highlights=tuple(highlights([s for s in sentences if s.rank == rank], self.answer_weights)),
                )
            )
        best = choose([s for s in sentences if s.rank <= ANSWER_FROM], self.answer_weights)
        answer = None if best is None else AnswerSentence(span=best.span, text=best.text, passage=best.passage)
        best_cosine = max((float(v @ query) for v in self.store.vectors([c.row for c in chosen])), default=None)
        return SearchResult(hits=hits, answer=answer, best_cosine=best_cosine,
                            build=self.stored.path.name, files=self.manifest["corpus"]["files"], documents=self.documents)

    def answer_candidates(self, question: str, query: np.ndarray, rows: Sequence[int]):
        """The sentences of the passages ``rows`` (best first) as scored answer candidates (index.answer)."""
        top = [(row, self.passages[row]) for row in rows]
        return candidates(question, query, top, self.components.sentences, self.lexicon, self._terms_of)

    def _terms_of(self, ids: Sequence[int], texts: Sequence[str]) -> list[list[str]]:
        """The sentences' terms, tokenized once per sentence and kept (up to TERMS_CACHED sentences).

        Threads sharing the retriever may fill or reset the cache at once: each reads from the
        dict it started with and its own fresh terms, so a reset elsewhere never loses an entry here.
        """
        known = self._sentence_terms
        missing = [(i, t) for i, t in zip(ids, texts, strict=True) if i not in known]
        fresh = dict(zip((i for i, _ in missing), self.lexicon.terms([t for _, t in missing]), strict=True)) if missing else {}
        if fresh:
            if len(known) > TERMS_CACHED:
                self._sentence_terms = {}
            self._sentence_terms.update(fresh)
        return [fresh[i] if i in fresh else known[i] for i in ids]

    def _collapse(self, pool: list[_Candidate], need: int) -> list[_Candidate]:
        """Keep the best-ranked copy of any text shown twice; the others become its ``also_in``.

        Three tests, all across documents: a duplicate pair found at build time; a shared run
        of text with a kept result of a copy of the same article (passages cut at different
        places); or at least half of a candidate's shingles already shown by kept results of
        other documents.
        """
        kept: list[_Candidate] = []
        kept_shingles: list[frozenset[int]] = []
        kept_at: dict[int, int] = {}  # passage row -> its place in kept
        kept_of: dict[str, list[int]] = {}  # document -> places in kept of its results, ascending
        shown_in: dict[int, set[str]] = {}  # shingle -> documents of the kept results that show it
        pairs = self.components.duplicates
        for candidate in pool:
            if len(kept) >= need:
                break
            passage = self.passages[candidate.row]
            own = self._shingles.get(candidate.row)
            if own is None:  # a dict write is atomic: threads sharing the retriever may both fill it
                own = self._shingles[candidate.row] = shingles(passage.text)
            # each test looks up the candidate's own partners, so a deep pool costs linear time
            target = min((kept_at[r] for r, _ in pairs.get(candidate.row, ()) if r in kept_at), default=None)
            if target is None and own:
                places = sorted(i for doc in self.copy_partners.get(passage.doc_id, ()) for i in kept_of.get(doc, ()))
                target = next((i for i in places if len(own & kept_shingles[i]) >= SHARED_RUN), None)
            if target is None and own:
                # shingles already shown by kept results of other documents; counted through
                # shown_in, so the test costs the candidate's size, not the results kept so far
                covered = sum(1 for s in own if (docs := shown_in.get(s)) and (len(docs) > 1 or passage.doc_id not in docs))
                if covered >= COVERED * len(own):
                    overlaps = [
                        (len(own & s), i)
                        for i, (k, s) in enumerate(zip(kept, kept_shingles, strict=True))
                        if self.passages[k.row].doc_id != passage.doc_id
                    ]
                    target = max(overlaps)[1]
            if target is None:
                kept_at[candidate.row] = len(kept)
                kept_of.setdefault(passage.doc_id, []).append(len(kept))
                kept.append(_Candidate(candidate.row, candidate.score))
                kept_shingles.append(own)
                for s in own:
                    shown_in.setdefault(s, set()).add(passage.doc_id)
            elif self.passages[candidate.row].source not in self._sources(kept[target]):
                kept[target].also_in.append(candidate.row)
        for k in kept:  # copies that were not retrieved still show where else the text appears
            for row, _ in pairs.get(k.row, ()):
                if self.passages[row].source not in self._sources(k):
                    k.also_in.append(row)
        return kept

    def _sources(self, candidate: _Candidate) -> set[str]:
        return {self.passages[candidate.row].source, *(self.passages[r].source for r in candidate.also_in)}

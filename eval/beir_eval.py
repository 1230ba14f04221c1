"""Scoring a BEIR collection by one rule for every ranking configuration, and the `cited eval beir` report."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eval.beir import BeirCollection, CollectionError, load_beir
from eval.beir_index import PreparedIndex, prepare_index
from eval.defaults import DEFAULT_K
from eval.ladder import dense_only, describe
from eval.metrics import evaluate, mean
from eval.tables import table
from index import Embedder, Hit, IndexConfig, RankingConfig, SearchOptions
from index.lexical import BM25Index
from index.ties import ranked

__all__ = [
    "CUTOFF",
    "DEFAULT_K",
    "BeirRun",
    "CollectionScore",
    "aggregate_max",
    "bm25_documents",
    "credited_documents",
    "format_markdown",
    "format_table",
    "measures_for",
    "passage_depth",
    "run_collection",
    "score_collection",
]

CUTOFF = 10  # nDCG@10 and MRR@10, the numbers BEIR papers and the Cranfield README report
DEPTH_FACTOR = 5  # passages ranked per wanted document before MaxP aggregation
BM25_DESCRIPTION = "BM25 over whole documents (title + text; bm25s, Lucene k1=1.5 b=0.75): the collection's reference baseline"

Ranked = list[tuple[str, float]]  # (doc id, score), best first


def measures_for(k: int) -> list[str]:
    return [f"ndcg@{CUTOFF}", f"recall@{k}", f"mrr@{CUTOFF}"]


def passage_depth(total_passages: int, k: int, factor: int = DEPTH_FACTOR) -> int:
    """Passages to rank so that MaxP usually yields ``k`` distinct documents."""
    return max(0, min(total_passages, factor * k))


def aggregate_max(hits: Iterable[tuple[str, float]], k: int | None = None) -> Ranked:
    """Documents by their best passage (MaxP), best first, cut to ``k``.

    Ties go by doc id (index.ties), so the result depends only on the set of hits, not on
    their order nor on a machine's float noise.
    """
    best: dict[str, float] = {}
    for doc_id, score in hits:
        score = float(score)
        if score != score:  # NaN never wins and must not poison the sort
            continue
        if doc_id not in best or score > best[doc_id]:
            best[doc_id] = score
    by_doc = ranked(best.items())
    return by_doc if k is None else by_doc[: max(k, 0)]


def credited_documents(hits: Iterable[Hit], names: Mapping[str, str], k: int | None = None) -> Ranked:
    """MaxP with each ``also_in`` copy credited at its result's score: the reader is shown those documents too.

    ``names`` maps a passage's doc_id (the materialised file stem) to the collection's doc id.
    """
    pairs = []
    for hit in hits:
        pairs.append((names[hit.passage.doc_id], hit.score))
        pairs.extend((names[p.doc_id], hit.score) for p in hit.also_in)
    return aggregate_max(pairs, k)


@dataclass(frozen=True)
class CollectionScore:
    metrics: dict[str, float]  # means over the judged queries
    per_query: dict[str, dict[str, float]]
    run: dict[str, Ranked]  # query id -> top k documents
    seconds: float  # query phase, all queries in one batch
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def ms_per_query(self) -> float:
        return 1000.0 * self.seconds / max(len(self.run), 1)

    def summary(self) -> dict[str, Any]:
        return {
            "metrics": {m: round(v, 4) for m, v in self.metrics.items()},
            "ms_per_query": round(self.ms_per_query, 3),
            "query_seconds": round(self.seconds, 3),
            "queries": len(self.per_query),
            "notes": self.notes,
        }


def _scored(collection: BeirCollection, run: dict[str, Ranked], k: int, seconds: float, notes: dict[str, Any]) -> CollectionScore:
    per_query = evaluate(collection.qrels, {qid: [d for d, _ in docs] for qid, docs in run.items()}, measures_for(k))
    if not per_query:
        raise CollectionError(Path(collection.name), None, "no query has a relevant document")
    return CollectionScore(mean(per_query), per_query, run, seconds, notes)


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive whole number, got {k!r}")


def score_collection(prepared: PreparedIndex, collection: BeirCollection, ranking: RankingConfig, k: int = DEFAULT_K) -> CollectionScore:
    """``ranking`` as configured over ``passage_depth`` passages, documents by :func:`credited_documents`.

    The one rule for every configuration (docs/evaluation.md), so each has one number wherever
    it appears. Highlighting is off: it never changes the order. The retriever draws
    max(candidates, 3 × top_k) candidates, so every configuration ranks at least this deep.
    """
    _check_k(k)
    retriever = prepared.retriever.with_ranking(dataclasses.replace(ranking, highlight=False))
    names = prepared.materialised.names
    ids, texts = list(collection.queries), list(collection.queries.values())
    total = len(retriever.passages)
    depth = passage_depth(total, k)
    started = time.perf_counter()
    results = retriever.search_batch(texts, SearchOptions(top_k=max(depth, 1)))
    run = {qid: credited_documents(r.hits, names, k) for qid, r in zip(ids, results, strict=True)}
    # A query whose top passages crowd into few documents gets fewer than k: rank every passage for it.
    short = [i for i, qid in enumerate(ids) if len(run[qid]) < k] if depth < total else []
    if short:
        again = retriever.search_batch([texts[i] for i in short], SearchOptions(top_k=total))
        for i, r in zip(short, again, strict=True):
            run[ids[i]] = credited_documents(r.hits, names, k)
    seconds = time.perf_counter() - started
    return _scored(collection, run, k, seconds, {"passage_depth": depth, "passages": total, "deepened_queries": len(short)})


def bm25_documents(collection: BeirCollection, k: int = DEFAULT_K) -> CollectionScore:
    """Whole-document BM25, the collection's published baseline; not a configuration of the service."""
    _check_k(k)
    started = time.perf_counter()
    index = BM25Index.build([f"{doc.title} {doc.text}" for doc in collection.docs.values()])
    built = time.perf_counter() - started
    doc_ids = list(collection.docs)
    started = time.perf_counter()
    results = index.search_batch(list(collection.queries.values()), k)
    run = {qid: [(doc_ids[row], score) for row, score in hits] for qid, hits in zip(collection.queries, results, strict=True)}
    return _scored(collection, run, k, time.perf_counter() - started, {"build_seconds": round(built, 3)})


# ---------------------------------------------------------------- `cited eval beir`


@dataclass(frozen=True)
class BeirRun:
    report: dict[str, Any]  # what the JSON report holds
    scores: dict[str, CollectionScore]  # "default", "dense", "bm25"
    json_path: Path
    md_path: Path


def run_collection(
    folder: Path,
    index_config: IndexConfig,
    ranking: RankingConfig = RankingConfig(),
    qrels_file: str = "test.tsv",
    k: int = DEFAULT_K,
    out: Path = Path("reports"),
    embedder: Embedder | None = None,
    progress: bool = True,
) -> BeirRun:
    """Score the served ranking, dense only and the BM25 baseline on the collection in ``folder``; write both reports."""
    _check_k(k)
    started = time.perf_counter()
    folder = Path(folder)
    collection = load_beir(folder, qrels_file)
    if not collection.name:  # "." or a path ending in ".."
        collection = dataclasses.replace(collection, name=folder.resolve().name)
    loaded = time.perf_counter()
    embedder = embedder or Embedder(index_config.model)
    timing = {"model_load_seconds": round(time.perf_counter() - loaded, 3)}
    prepared = prepare_index(collection, index_config, embedder, progress)
    timing["index_seconds"] = round(prepared.seconds, 3)
    rankings = {"default": ranking, "dense": dense_only(ranking)}
    scores = {name: score_collection(prepared, collection, r, k) for name, r in rankings.items()}
    scores["bm25"] = bm25_documents(collection, k)
    descriptions = {"default": describe(ranking), "dense": "dense only (passage cosine)", "bm25": BM25_DESCRIPTION}
    report: dict[str, Any] = {
        "collection": {
            "name": collection.name,
            "folder": str(folder),
            "qrels_file": qrels_file,
            "documents": len(collection.docs),
            "queries": len(collection.queries),
            "queries_scored": len(scores["bm25"].per_query),
            "judgments": sum(len(r) for r in collection.qrels.values()),
            "relevant_judgments": sum(1 for r in collection.qrels.values() for g in r.values() if g > 0),
        },
        "settings": {
            "k": k,
            "measures": measures_for(k),
            "model": index_config.model,
            "chunk_tokens": index_config.chunk.chunk_tokens,
            "overlap_tokens": index_config.chunk.overlap_tokens,
            "embed_context": index_config.chunk.embed_context,
            "batch_size": index_config.batch_size,
            "ranking": dataclasses.asdict(ranking),
            "depth_factor": DEPTH_FACTOR,
        },
        "index": prepared.summary(),
        "methods": {name: {"description": descriptions[name], **score.summary()} for name, score in scores.items()},
        "timing": {**timing, "total_seconds": round(time.perf_counter() - started, 3)},
        "created_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "per_query": {name: score.per_query for name, score in scores.items()},
    }
    try:
        json_path, md_path = _write(report, Path(out))
    except OSError as exc:
        raise CollectionError(Path(out), None, f"cannot write the report: {exc}") from None
    return BeirRun(report, scores, json_path, md_path)


def format_table(report: dict[str, Any]) -> str:
    measures = report["settings"]["measures"]
    rows = [
        [name, *(f"{m['metrics'][x]:.4f}" for x in measures), f"{m['ms_per_query']:.2f}"]
        for name, m in report["methods"].items()
    ]
    return table(["method", *measures, "ms/query"], rows)


def format_markdown(report: dict[str, Any]) -> str:
    c, s, ix = report["collection"], report["settings"], report["index"]
    ch = ix.get("chunking") or {}
    depth = next(iter(report["methods"].values()))["notes"].get("passage_depth")
    return "\n".join([
        f"# BEIR evaluation: {c['name']}",
        "",
        f"{c['documents']} documents, {c['queries']} queries ({c['queries_scored']} scored), "
        f"{c['relevant_judgments']} relevant of {c['judgments']} judgments (`qrels/{c['qrels_file']}`). "
        f"Generated {report['created_at']}.",
        "",
        format_table(report),
        "",
        *(f"- **{name}**: {m['description']}." for name, m in report["methods"].items()),
        "",
        f"Top {s['k']} documents per query. Each configuration ranks the top {depth} passages as configured "
        "(highlighting off) and scores a document by its best passage, crediting near-duplicate copies "
        "(`also_in`) with their result's score. ms/query is the query phase of all queries in one batch "
        "divided by their number; index building is not included.",
        "",
        "## Index",
        "",
        f"- model: `{ix['model']}` (dimension {ix['dimension']}, max_seq_length {ix['max_seq_length']})",
        f"- chunking: {ch.get('chunk_tokens')} tokens, overlap {ch.get('overlap_tokens')}, embed_context {ch.get('embed_context')}",
        f"- {ix['passages']} passages from {ix['documents']} documents ({ix['documents_without_passages']} without any passage)",
        f"- built {ix['built_at']} in {ix['build_seconds']} s" + (" (this run)" if ix["rebuilt_this_run"] else " (reused)"),
        f"- path: `{ix['path']}`",
        "",
        "## Timing (seconds)",
        "",
        *(f"- {k}: {v}" for k, v in report["timing"].items()),
        "",
    ])


def _write(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    name = report["collection"]["name"]
    json_path, md_path = out / f"beir-{name}.json", out / f"beir-{name}.md"
    json_path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    md_path.write_text(format_markdown(report), encoding="utf-8")
    return json_path, md_path

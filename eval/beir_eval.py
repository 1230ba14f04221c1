"""Public-benchmark evaluation: the service's own retrieval pipeline on a BEIR collection.

``cited eval beir <folder>`` answers "how good is the retriever the service ships?" on a
collection with published reference numbers (``eval/cranfield/README.md``), next to a
whole-document BM25 baseline measured in the same run on the same machine.

What is measured is the service's pipeline, not a re-implementation of it: every document
is written as a UTF-8 text file into a corpus folder of its own and indexed by the index
package with the same model and :class:`index.ChunkSpec` as the seeds (cleaning, sentence
chunking and title/heading context included), then searched through :class:`index.Retriever`.
The index lives under ``<index_dir>/../beir/<collection>/`` and is reused while it is fresh
(the manifest's staleness check decides, as for the seeds).

Passages are not documents: a long abstract is cut into several passages, while the qrels
judge documents. The passage-level methods therefore retrieve passages deep and score each
document by its best passage (MaxP, :func:`aggregate_max`).

Methods live in a small registry (:data:`METHODS`, filled with :func:`register`): a method
turns an :class:`EvalContext` into a ranked run and times its own query phase. Shared
resources (the passage index, the BM25 index) are built lazily by the context, outside any
method's timing, and ``ctx.results`` holds the runs of the methods evaluated before it, so a
doc-level fusion method can be added next to "dense", "bm25" and "hybrid" without touching
the rest.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from eval.beir import BeirCollection, BeirDoc, CollectionError, load_beir
from eval.metrics import evaluate, mean
from index import (
    Embedder,
    Hit,
    IndexConfig,
    IndexMissing,
    IndexStale,
    RankingConfig,
    Retriever,
    SearchOptions,
    build_index,
    open_index,
)
from index.lexical import BM25Index  # the BM25 baseline; the index's own copy of it serves hybrid
from index.ties import ranked

__all__ = [
    "METHODS",
    "BeirResult",
    "EvalContext",
    "Materialised",
    "Method",
    "MethodResult",
    "PreparedIndex",
    "aggregate_max",
    "beir_cache_dir",
    "decode_doc_id",
    "doc_file_text",
    "encode_doc_id",
    "evaluate_beir",
    "materialise",
    "measures_for",
    "passage_depth",
    "prepare_index",
    "register",
    "run_collection",
    "write_reports",
]

log = logging.getLogger(__name__)

CUTOFF = 10  # nDCG@10 and MRR@10, the numbers BEIR papers and the Cranfield README report
DEPTH_FACTOR = 5  # passages retrieved per wanted document before MaxP aggregation

Ranked = list[tuple[str, float]]  # (doc id, score), best first


# ---------------------------------------------------------------- aggregation


def aggregate_max(hits: Iterable[tuple[str, float]], k: int | None = None) -> Ranked:
    """Documents ranked by their best passage (MaxP): ``(doc_id, score)`` pairs, best first.

    ``hits`` are ``(doc_id, passage score)`` pairs in any order, several per document
    allowed. Equal scores (within index.ties's tolerance) are ordered by doc id, so the result
    depends only on the set of hits, not on the order the index happened to return them in
    nor on a machine's float noise. ``k`` keeps the top k.
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


def passage_depth(total_passages: int, k: int, factor: int = DEPTH_FACTOR) -> int:
    """How many passages to retrieve so that MaxP usually yields ``k`` distinct documents."""
    return max(0, min(total_passages, factor * k))


# ---------------------------------------------------------------- materialisation


def encode_doc_id(doc_id: str) -> str:
    """A file-name-safe, reversible spelling of a doc id (percent-encoding of all but ``A-Za-z0-9-_.``).

    ``/``, ``\\``, spaces, ``%``, non-ASCII characters and a leading ``.`` are encoded, so the
    result is one visible path component on every platform and :func:`decode_doc_id`
    recovers the id exactly.
    """
    name = quote(doc_id, safe="-_.")
    return "%2E" + name[1:] if name.startswith(".") else name  # no hidden files, no "." or ".."


def decode_doc_id(name: str) -> str:
    return unquote(name)


def doc_file_text(doc: BeirDoc) -> str:
    """What the corpus file of a document holds: ``title + "\\n\\n" + text``, or the text alone.

    The title line loses any trailing full stops. The cleaner (rightly, for scraped pages)
    does not take a first line that ends like a sentence for a title, and Cranfield spells
    nearly every title "... wings ." -- so without this the title would be indexed as a
    passage of its own instead of being the document's title.
    """
    title = doc.title.strip().rstrip(". ").strip()
    return f"{title}\n\n{doc.text}" if title else doc.text


@dataclass(frozen=True)
class Materialised:
    names: dict[str, str]  # file stem (the index's doc_id) -> collection doc id
    written: int  # files created or rewritten
    removed: int  # stale .txt files deleted (docs no longer in the collection)


def materialise(docs: Iterable[BeirDoc], corpus_dir: Path) -> Materialised:
    """Write one ``<encoded id>.txt`` per document, touching only files whose bytes differ.

    Leaving identical files alone keeps their content hashes -- and so the index manifest --
    unchanged, which is what lets a second run reuse the index. ``.txt`` files of documents
    that are no longer in the collection are deleted so they cannot leak into the index.
    """
    corpus_dir.mkdir(parents=True, exist_ok=True)
    names: dict[str, str] = {}
    folded: dict[str, str] = {}
    written = 0
    for doc in docs:
        stem = encode_doc_id(doc.doc_id)
        if decode_doc_id(stem) != doc.doc_id:  # cannot happen with quote/unquote; cheap to check
            raise CollectionError(corpus_dir, None, f"doc id {doc.doc_id!r} does not survive file-name encoding")
        if stem.casefold() in folded:  # would share one file on a case-insensitive file system
            raise CollectionError(
                corpus_dir,
                None,
                f"doc ids {folded[stem.casefold()]!r} and {doc.doc_id!r} differ only in case; "
                "they cannot be stored as separate files portably"
            )
        folded[stem.casefold()] = doc.doc_id
        names[stem] = doc.doc_id
        path = corpus_dir / f"{stem}.txt"
        data = doc_file_text(doc).encode("utf-8")
        if not path.is_file() or path.read_bytes() != data:
            path.write_bytes(data)
            written += 1
    removed = 0
    for path in sorted(corpus_dir.rglob("*.txt")):
        if path.parent != corpus_dir or path.stem not in names:
            path.unlink()
            removed += 1
    return Materialised(names, written, removed)


def beir_cache_dir(config: IndexConfig, name: str) -> Path:
    """``<index_dir>/../beir/<name>``: next to the service's index, never inside it."""
    return config.index_dir.parent / "beir" / name


# ---------------------------------------------------------------- the passage index


@dataclass(frozen=True)
class PreparedIndex:
    retriever: Retriever
    config: IndexConfig
    materialised: Materialised  # .names maps a passage's doc_id (file stem) to the collection doc id
    rebuild_reason: str | None  # why it was built during this call; None: a fresh index was reused
    seconds: float  # wall time of materialising + opening (building, if rebuilt)

    def documents(self, hits: Iterable[Hit], k: int | None = None) -> Ranked:
        """Passage hits -> documents by MaxP, under their collection ids."""
        names = self.materialised.names
        return aggregate_max(((names[h.passage.doc_id], h.score) for h in hits), k)

    def summary(self) -> dict[str, Any]:
        manifest = self.retriever.manifest
        model = manifest.get("model", {})
        documents = manifest.get("documents", [])
        return {
            "path": str(self.retriever.stored.path),
            "model": model.get("name"),
            "model_fingerprint": model.get("fingerprint"),
            "dimension": model.get("dimension"),
            "max_seq_length": model.get("max_seq_length"),
            "chunking": manifest.get("chunking"),
            "documents": len(documents),
            "documents_without_passages": sum(1 for d in documents if d.get("passages", 0) == 0),
            "passages": len(self.retriever.passages),
            "built_at": manifest.get("built_at"),
            "build_seconds": manifest.get("build_seconds"),
            "rebuilt_this_run": self.rebuild_reason is not None,
            "rebuild_reason": self.rebuild_reason,
            "files_written": self.materialised.written,
            "files_removed": self.materialised.removed,
            "open_seconds": round(self.seconds, 3),
        }


def prepare_index(
    collection: BeirCollection, index_config: IndexConfig, embedder: Embedder, progress: bool = True
) -> PreparedIndex:
    """Materialise the collection and open (building when missing or stale) its passage index.

    The index is built with ``index_config``'s model and chunking, in a cache folder beside its
    ``index_dir``.
    """
    started = time.perf_counter()
    cache = beir_cache_dir(index_config, collection.name)
    config = dataclasses.replace(index_config, corpus_dir=cache / "corpus", index_dir=cache / "index")
    try:
        materialised = materialise(collection.docs.values(), config.corpus_dir)
    except OSError as exc:
        raise CollectionError(config.corpus_dir, None, f"cannot write the corpus of {collection.name}: {exc}") from None
    # open_index(rebuild=True) would do the same, but could not tell us whether it rebuilt.
    try:
        stored = open_index(config, embedder, rebuild=False)
        rebuild_reason = None
    except (IndexMissing, IndexStale) as exc:
        rebuild_reason = str(exc) if isinstance(exc, IndexStale) else "no index yet"
        log.warning("building the %s index: %s", collection.name, rebuild_reason)
        stored = build_index(config, embedder, progress=progress)
    retriever = Retriever(embedder, stored)
    unknown = {p.doc_id for p in retriever.passages} - materialised.names.keys()
    if unknown:  # only if the corpus folder changed under us
        raise CollectionError(config.index_dir, None, f"the index has passages of unknown documents {sorted(unknown)[:3]}")
    return PreparedIndex(retriever, config, materialised, rebuild_reason, time.perf_counter() - started)


# ---------------------------------------------------------------- methods


@dataclass(frozen=True)
class MethodResult:
    """A method's run and the wall time of its query phase over all queries."""

    run: dict[str, Ranked]  # query id -> top-k (doc id, score), best first
    seconds: float
    per_query_ms: list[float] | None = None  # set by methods that time each query alone
    notes: dict[str, Any] = field(default_factory=dict)

    def ms_per_query(self) -> float:
        """Median of per-query times if measured, else the batch's total / number of queries."""
        if self.per_query_ms:
            return statistics.median(self.per_query_ms)
        return 1000.0 * self.seconds / max(len(self.run), 1)

    @property
    def timing(self) -> str:
        return "per-query median" if self.per_query_ms else "batch total / queries"


@dataclass
class EvalContext:
    """What methods draw on. Expensive resources are built on first use and shared."""

    collection: BeirCollection
    index_config: IndexConfig
    ranking: RankingConfig  # the configured ranking; the hybrid method runs it
    k: int
    embedder_factory: Callable[[], Embedder]
    progress: bool = True
    results: dict[str, MethodResult] = field(default_factory=dict)  # methods already run, in order
    timings: dict[str, float] = field(default_factory=dict)  # seconds spent building shared resources

    @cached_property
    def query_ids(self) -> list[str]:
        return list(self.collection.queries)

    @cached_property
    def query_texts(self) -> list[str]:
        return list(self.collection.queries.values())

    @cached_property
    def doc_ids(self) -> list[str]:
        """Collection doc ids in corpus order (the row order of the BM25 index)."""
        return list(self.collection.docs)

    @cached_property
    def index(self) -> PreparedIndex:
        started = time.perf_counter()
        embedder = self.embedder_factory()
        self.timings["model_load_seconds"] = round(time.perf_counter() - started, 3)
        prepared = prepare_index(self.collection, self.index_config, embedder, self.progress)
        self.timings["index_seconds"] = round(prepared.seconds, 3)
        return prepared

    @cached_property
    def bm25(self) -> BM25Index:
        started = time.perf_counter()
        texts = [f"{doc.title} {doc.text}" for doc in self.collection.docs.values()]
        index = BM25Index.build(texts)
        self.timings["bm25_build_seconds"] = round(time.perf_counter() - started, 3)
        return index


MethodFn = Callable[[EvalContext], MethodResult]


@dataclass(frozen=True)
class Method:
    name: str
    description: str
    fn: MethodFn


METHODS: dict[str, Method] = {}


def register(name: str, description: str) -> Callable[[MethodFn], MethodFn]:
    """Add a method to :data:`METHODS` (report order is registration order)."""

    def add(fn: MethodFn) -> MethodFn:
        if name in METHODS:
            raise ValueError(f"method {name!r} is registered twice")
        METHODS[name] = Method(name, description, fn)
        return fn

    return add


def _maxp(ctx: EvalContext, ranking: RankingConfig) -> MethodResult:
    """Rank passages with the service's retriever under ``ranking``, then documents by MaxP.

    Near-duplicate collapse and highlighting are switched off: collapse would hide a document
    behind another one's copy of the same text (the qrels judge both), and highlights do not
    change the order. Both stages stay measurable through the service's own eval.
    """
    prepared = ctx.index  # built or reused outside the timed phase
    total = len(prepared.retriever.passages)
    depth = passage_depth(total, ctx.k)
    ranking = dataclasses.replace(ranking, candidates=max(depth, 1), collapse_duplicates=False, highlight=False)
    retriever = prepared.retriever.with_ranking(ranking)
    started = time.perf_counter()
    results = retriever.search_batch(ctx.query_texts, SearchOptions(top_k=depth))
    run = {qid: prepared.documents(r.hits, ctx.k) for qid, r in zip(ctx.query_ids, results, strict=True)}
    # A query whose top passages crowd into few documents gets fewer than k; search it again
    # over every passage, which only ever adds documents below the others.
    short = [i for i, qid in enumerate(ctx.query_ids) if len(run[qid]) < ctx.k] if depth < total else []
    if short:
        deep = retriever.with_ranking(dataclasses.replace(ranking, candidates=total))
        again = deep.search_batch([ctx.query_texts[i] for i in short], SearchOptions(top_k=total))
        for i, r in zip(short, again, strict=True):
            run[ctx.query_ids[i]] = prepared.documents(r.hits, ctx.k)
    seconds = time.perf_counter() - started
    notes = {"passage_depth": depth, "passages": total, "deepened_queries": len(short)}
    return MethodResult(run, seconds, notes=notes)


@register("dense", "service retriever, dense only: passage cosine, MaxP per document")
def dense_maxp(ctx: EvalContext) -> MethodResult:
    return _maxp(ctx, RankingConfig(retrieval="dense", sentence_weight=0.0, feedback_passages=0, mmr_lambda=1.0))


@register("bm25", "BM25 over whole documents (title + text; bm25s, Lucene k1=1.5 b=0.75)")
def bm25_docs(ctx: EvalContext) -> MethodResult:
    index = ctx.bm25  # built outside the timed phase
    started = time.perf_counter()
    results = index.search_batch(ctx.query_texts, ctx.k)
    run = {qid: [(ctx.doc_ids[row], score) for row, score in hits] for qid, hits in zip(ctx.query_ids, results, strict=True)}
    return MethodResult(run, time.perf_counter() - started)


@register("hybrid", "service retriever, hybrid as configured (passage BM25 + dense fused, MaxP per document)")
def hybrid_maxp(ctx: EvalContext) -> MethodResult:
    ranking = dataclasses.replace(ctx.ranking, retrieval="hybrid")
    result = _maxp(ctx, ranking)
    fusion = {"fusion": ranking.fusion, "rrf_k": ranking.rrf_k, "dense_weight": ranking.dense_weight, "mmr_lambda": ranking.mmr_lambda}
    return dataclasses.replace(result, notes={**fusion, **result.notes})


# ---------------------------------------------------------------- evaluation and reports


def measures_for(k: int) -> list[str]:
    return [f"ndcg@{CUTOFF}", f"recall@{k}", f"mrr@{CUTOFF}"]


@dataclass
class BeirResult:
    report: dict[str, Any]  # what the JSON report holds
    runs: dict[str, MethodResult]


def evaluate_beir(
    collection: BeirCollection,
    index_config: IndexConfig,
    ranking: RankingConfig = RankingConfig(),
    k: int = 100,
    methods: Sequence[str] | None = None,
    embedder: Embedder | None = None,
    progress: bool = True,
    folder: Path | None = None,
    qrels_file: str = "test.tsv",
) -> BeirResult:
    """Run and score the chosen methods (all registered ones by default) on ``collection``.

    ``embedder`` is reused when given (tests pass their session model); otherwise the model
    named in ``index_config`` is loaded, and only if a method needs the passage index.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive whole number, got {k!r}")
    names = list(METHODS) if not methods else list(dict.fromkeys(methods))
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; known: {', '.join(METHODS)}")
    started = time.perf_counter()
    ctx = EvalContext(
        collection,
        index_config,
        ranking,
        k,
        embedder_factory=(lambda: embedder) if embedder is not None else (lambda: Embedder(index_config.model)),
        progress=progress,
    )
    measures = measures_for(k)
    per_query: dict[str, dict[str, dict[str, float]]] = {}
    method_reports: dict[str, Any] = {}
    for name in names:
        result = METHODS[name].fn(ctx)
        ctx.results[name] = result
        scored = evaluate(collection.qrels, {qid: [d for d, _ in ranked] for qid, ranked in result.run.items()}, measures)
        per_query[name] = scored
        method_reports[name] = {
            "description": METHODS[name].description,
            "metrics": {m: round(v, 4) for m, v in mean(scored).items()},
            "ms_per_query": round(result.ms_per_query(), 3),
            "timing": result.timing,
            "query_seconds": round(result.seconds, 3),
            "queries": len(result.run),
            **({"notes": result.notes} if result.notes else {}),
        }
    scored_queries = len(next(iter(per_query.values()))) if per_query else 0
    report: dict[str, Any] = {
        "collection": {
            "name": collection.name,
            "folder": str(folder) if folder is not None else None,
            "qrels_file": qrels_file,
            "documents": len(collection.docs),
            "queries": len(collection.queries),
            "queries_scored": scored_queries,
            "judgments": sum(len(r) for r in collection.qrels.values()),
            "relevant_judgments": sum(1 for r in collection.qrels.values() for g in r.values() if g > 0),
        },
        "settings": {
            "k": k,
            "measures": measures,
            "methods": names,
            "model": index_config.model,
            "chunk_tokens": index_config.chunk.chunk_tokens,
            "overlap_tokens": index_config.chunk.overlap_tokens,
            "embed_context": index_config.chunk.embed_context,
            "batch_size": index_config.batch_size,
            "aggregation": "maxp",
            "depth_factor": DEPTH_FACTOR,
        },
        "index": ctx.index.summary() if "index" in ctx.__dict__ else None,
        "methods": method_reports,
        "timing": {**ctx.timings, "total_seconds": round(time.perf_counter() - started, 3)},
        "created_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "per_query": per_query,
    }
    return BeirResult(report, dict(ctx.results))


def _table_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    measures = report["settings"]["measures"]
    header = ["method", *measures, "ms/query"]
    rows = [
        [name, *(f"{m['metrics'][x]:.4f}" for x in measures), f"{m['ms_per_query']:.2f}"]
        for name, m in report["methods"].items()
    ]
    return header, rows


def format_table(report: dict[str, Any]) -> str:
    header, rows = _table_rows(report)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    return "\n".join([line(header), *(line(r) for r in rows)])


def format_markdown(report: dict[str, Any]) -> str:
    c, s, ix = report["collection"], report["settings"], report["index"]
    header, rows = _table_rows(report)
    out = [
        f"# BEIR evaluation: {c['name']}",
        "",
        f"{c['documents']} documents, {c['queries']} queries ({c['queries_scored']} scored), "
        f"{c['relevant_judgments']} relevant of {c['judgments']} judgments (`qrels/{c['qrels_file']}`). "
        f"Generated {report['created_at']}.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|",
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
        "## Methods",
        "",
    ]
    for name, m in report["methods"].items():
        notes = ", ".join(f"{k} {v}" for k, v in m.get("notes", {}).items())
        out.append(f"- **{name}**: {m['description']}" + (f" ({notes})" if notes else "") + ".")
    out += [
        "",
        "ms/query is the wall time of a method's query phase (query encoding, search, fusion and "
        "MaxP aggregation) for all queries in one batch, divided by the number of queries: a batch "
        "figure, not a median of single-query latencies. Index building is not included. Top "
        f"{s['k']} documents per query; the passage methods retrieve {s['depth_factor']}×{s['k']} "
        "passages and score each document by its best passage (MaxP), with near-duplicate "
        "collapse and highlighting off.",
    ]
    if ix:
        ch = ix.get("chunking") or {}
        out += [
            "",
            "## Index",
            "",
            f"- model: `{ix['model']}` (dimension {ix['dimension']}, max_seq_length {ix['max_seq_length']})",
            f"- chunking: {ch.get('chunk_tokens')} tokens, overlap {ch.get('overlap_tokens')}, "
            f"embed_context {ch.get('embed_context')}",
            f"- {ix['passages']} passages from {ix['documents']} documents "
            f"({ix['documents_without_passages']} without any passage)",
            f"- built {ix['built_at']} in {ix['build_seconds']} s"
            + (" (this run)" if ix["rebuilt_this_run"] else " (reused)"),
            f"- path: `{ix['path']}`",
        ]
    t = report["timing"]
    out += ["", "## Timing (seconds)", "", *(f"- {k}: {v}" for k, v in t.items()), ""]
    return "\n".join(out)


def write_reports(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    name = report["collection"]["name"]
    json_path, md_path = out / f"beir-{name}.json", out / f"beir-{name}.md"
    json_path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    md_path.write_text(format_markdown(report), encoding="utf-8")
    return json_path, md_path


def run_collection(
    folder: Path,
    index_config: IndexConfig,
    ranking: RankingConfig = RankingConfig(),
    qrels_file: str = "test.tsv",
    k: int = 100,
    out: Path = Path("reports"),
    embedder: Embedder | None = None,
) -> tuple[BeirResult, Path, Path]:
    """Load the collection in ``folder``, evaluate every method on it and write the two reports.

    Returns the result and the paths of the JSON and Markdown reports.
    """
    folder = Path(folder)
    collection = load_beir(folder, qrels_file)
    if not collection.name:  # "." or a path ending in ".."
        collection = dataclasses.replace(collection, name=folder.resolve().name)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise CollectionError(folder, None, f"k must be a positive whole number, got {k!r}")
    result = evaluate_beir(collection, index_config, ranking, k=k, embedder=embedder, folder=folder, qrels_file=qrels_file)
    try:
        json_path, md_path = write_reports(result.report, Path(out))
    except OSError as exc:
        raise CollectionError(Path(out), None, f"cannot write the report: {exc}") from None
    return result, json_path, md_path

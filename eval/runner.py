"""Asking the question set through the service's own response shape (in-process or over HTTP) and scoring per gold quote."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from eval import metrics
from eval.defaults import DEFAULT_TOP_K
from eval.detection import detection_summary
from eval.generated import ANSWER_TOP_K, aggregate_generated, score_generated
from eval.highlights import aggregate_highlights, score_highlights
from eval.questions import KINDS, UNANSWERABLE, Question
from eval.relevance import SpansPerGold, citations_of, covered_golds, gold_id, quote_ranking
from index import Retriever, SearchOptions
from index.errors import CitedError
from index.response import response

__all__ = [
    "DEFAULT_TOP_K",
    "METRICS",
    "EvalRun",
    "InProcess",
    "OverHttp",
    "ServerError",
    "Target",
    "aggregate",
    "run_eval",
    "score_question",
]

HIT_KS = (1, 3, 5, 10)
RECALL_KS = (5, 10)
RANK_K = 10  # cutoff of mrr and ndcg
METRICS = (*(f"hit@{k}" for k in HIT_KS), *(f"recall@{k}" for k in RECALL_KS), f"mrr@{RANK_K}", f"ndcg@{RANK_K}")
PREVIEW_CHARS = 200  # of each result's text kept in the report


class ServerError(CitedError):
    """The server in ``--url`` mode cannot be reached or did not answer 200; one line."""


class Target(Protocol):
    """Where questions go: returns the API's QueryResponse as a dict."""

    def query(self, question: str, top_k: int) -> dict[str, Any]: ...

    def manifest(self) -> dict[str, Any]: ...


class InProcess:
    """A loaded retriever answering in the API's shape, so its scores predict the served ones.

    Takes the retriever rather than settings so a test can share one already loaded.
    """

    def __init__(self, retriever: Retriever, generator: Any = None) -> None:
        """``generator``: an index.generate.ChatClient for :meth:`answer` (the generated answer), or None."""
        self.retriever = retriever
        self.generator = generator

    def query(self, question: str, top_k: int) -> dict[str, Any]:
        started = time.perf_counter()
        found = self.retriever.search(question, SearchOptions(top_k=top_k))
        return response(question, found, (time.perf_counter() - started) * 1000)

    def manifest(self) -> dict[str, Any]:
        return dict(self.retriever.manifest)

    def answer(self, question: str, top_k: int) -> dict[str, Any]:
        """POST /answer's response, computed here: the same passages, prompt and check."""
        from index.generated import generate

        if self.generator is None:
            raise CitedError("no chat endpoint configured for the generated answer (llm_base_url)")
        started = time.perf_counter()
        found = self.retriever.search(question, SearchOptions(top_k=top_k))
        return generate(self.retriever, self.generator, question, found, (time.perf_counter() - started) * 1000)


class OverHttp:
    """A running server: POST {url}/query, GET {url}/health. Close it (or use ``with``)."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        import httpx

        self.url = url.rstrip("/")
        self._httpx = httpx
        self._client = httpx.Client(base_url=self.url, timeout=timeout)

    def __enter__(self) -> OverHttp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def query(self, question: str, top_k: int) -> dict[str, Any]:
        body = self._call("POST", "/query", json={"question": question, "top_k": top_k})
        if not isinstance(body.get("results"), list):
            raise ServerError(f"{self.url}/query answered without a 'results' list; is this a cited server?")
        return body

    def manifest(self) -> dict[str, Any]:
        return self._call("GET", "/health")

    def answer(self, question: str, top_k: int) -> dict[str, Any]:
        """The server's generated answer (it needs its own llm_base_url)."""
        body = self._call("POST", "/answer", json={"question": question, "top_k": top_k})
        if not isinstance(body.get("sentences"), list):
            raise ServerError(f"{self.url}/answer answered without a 'sentences' list; is this a cited server?")
        return body

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        where = f"{method} {self.url}{path}"
        try:
            response = self._client.request(method, path, **kwargs)
        except self._httpx.HTTPError as exc:
            raise ServerError(f"cannot reach the server: {where} failed ({exc.__class__.__name__}: {exc})") from None
        if response.status_code != 200:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = " ".join(response.text.split())[:200]
            raise ServerError(f"{where} answered {response.status_code}: {message}")
        try:
            body = response.json()
        except ValueError:
            raise ServerError(f"{where} answered 200 but not with JSON") from None
        if not isinstance(body, dict):
            raise ServerError(f"{where} answered 200 but not with a JSON object")
        return body


def score_question(question: Question, per_gold: SpansPerGold, response: Mapping[str, Any]) -> dict[str, Any]:
    """What came back, where each gold quote was found, and the metrics (None when unanswerable: nothing to find)."""
    if len(per_gold) != len(question.gold):
        raise ValueError(f"question {question.id!r}: {len(question.gold)} gold quotes but spans for {len(per_gold)}")
    results = list(response["results"])
    covers_by_result = [covered_golds(r, per_gold) for r in results]
    found_rank: list[int | None] = [None] * len(per_gold)
    for result, covered in zip(results, covers_by_result, strict=True):
        for i in covered:
            if found_rank[i] is None:
                found_rank[i] = int(result["rank"])
    record: dict[str, Any] = {
        "id": question.id,
        "kind": question.kind,
        "question": question.question,
        "first_relevant_rank": None,
        "gold": [
            {"id": gold_id(i), "source": g.source, "quote": g.quote, "found_rank": found_rank[i]}
            for i, g in enumerate(question.gold)
        ],
        "top_score": float(results[0]["score"]) if results else None,
        # cosine of the best returned passage; unlike a fused score it is comparable across questions
        "best_cosine": response.get("best_cosine"),
        "answer": _answer_record(response.get("answer")),
        "results": [
            {
                "rank": int(r["rank"]),
                "score": float(r["score"]),
                "source": r["citation"]["source"],
                "start": int(r["citation"]["start"]),
                "end": int(r["citation"]["end"]),
                "covers": [gold_id(i) for i in covered],
                "also_in": [f"{c[0]}:{c[1]}-{c[2]}" for c in citations_of(r)[1:]],
                "highlights": [[int(h["start"]), int(h["end"])] for h in r.get("highlights") or ()],
                "text": r["text"][:PREVIEW_CHARS],
            }
            for r, covered in zip(results, covers_by_result, strict=True)
        ],
        "took_ms": response.get("took_ms"),
        "metrics": None,
        "highlight": None,
    }
    if not question.answerable:
        return record
    rels = {gold_id(i): 1 for i in range(len(per_gold))}
    ranking = quote_ranking(results, per_gold)
    values = {f"hit@{k}": metrics.hit_at(rels, ranking, k) for k in HIT_KS}
    for k in RECALL_KS:
        # quote-level recall: gold quotes found within the top k / gold quotes
        values[f"recall@{k}"] = sum(1 for r in found_rank if r is not None and r <= k) / len(per_gold)
    values[f"mrr@{RANK_K}"] = metrics.reciprocal_rank_at(rels, ranking, RANK_K)
    values[f"ndcg@{RANK_K}"] = metrics.ndcg_at(rels, ranking, RANK_K)  # quote-level nDCG
    record["first_relevant_rank"] = metrics.first_relevant_rank(rels, ranking)
    record["metrics"] = {name: values[name] for name in METRICS}
    record["highlight"] = score_highlights(response, per_gold)
    return record


def _answer_record(answer: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Where the answer sentence is and (a preview of) what it says."""
    if not answer:
        return None
    c = answer["citation"]
    return {"source": c["source"], "start": int(c["start"]), "end": int(c["end"]), "text": answer["text"][:PREVIEW_CHARS]}


def _distribution(values: Sequence[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "min": None, "median": None, "max": None}
    return {"n": len(values), "min": min(values), "median": statistics.median(values), "max": max(values)}


def aggregate(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Macro averages over answerable questions, overall and per kind; the score distributions and the
    detection sweep compare answerable with unanswerable questions, to see whether a threshold could tell them apart."""
    records = list(records)
    answerable = {r["id"]: r["metrics"] for r in records if r["metrics"] is not None}
    if not answerable:
        raise ValueError("no answerable question to score")
    by_kind = {}
    for kind in KINDS:
        of_kind = {r["id"]: r["metrics"] for r in records if r["kind"] == kind and r["metrics"] is not None}
        if of_kind:
            by_kind[kind] = {"n": len(of_kind), **metrics.mean(of_kind)}
    groups = {
        "answerable": [r for r in records if r["metrics"] is not None],
        UNANSWERABLE: [r for r in records if r["kind"] == UNANSWERABLE],
    }

    def distribution(field: str) -> dict[str, Any]:
        return {name: _distribution([r[field] for r in rs if isinstance(r.get(field), int | float)]) for name, rs in groups.items()}

    return {
        "overall": {"n": len(answerable), **metrics.mean(answerable)},
        "by_kind": by_kind,
        "scores": {
            "top_score": distribution("top_score"),
            "best_cosine": distribution("best_cosine"),
            UNANSWERABLE: {r["id"]: {"top_score": r["top_score"], "best_cosine": r.get("best_cosine")} for r in groups[UNANSWERABLE]},
            "detection": detection_summary([(r["kind"] == UNANSWERABLE, r.get("best_cosine")) for r in records]),
        },
        "highlights": aggregate_highlights(records, KINDS),
    }


@dataclass(frozen=True)
class EvalRun:
    records: list[dict[str, Any]]
    aggregates: dict[str, Any]
    timing: dict[str, float]


def run_eval(
    questions: Sequence[Question],
    spans: Mapping[str, SpansPerGold],
    target: Target,
    top_k: int = DEFAULT_TOP_K,
    progress: Callable[[int, int], None] | None = None,
    generated: bool = False,
) -> EvalRun:
    """Ask every question (one request each, as a client would) and score the answers.

    With ``generated``, each answerable question is also asked for a generated answer
    (``target.answer``, over the top ``ANSWER_TOP_K`` passages, as POST /answer by default), scored by eval/generated.py into ``record["generated"]`` and
    ``aggregates["generated"]``; without it neither key exists, so the report is unchanged.
    """
    records = []
    latencies = []
    started = time.perf_counter()
    for n, question in enumerate(questions, start=1):
        asked = time.perf_counter()
        response = target.query(question.question, top_k)
        latencies.append((time.perf_counter() - asked) * 1000)
        record = score_question(question, spans[question.id] if question.answerable else (), response)
        record["latency_ms"] = round(latencies[-1], 3)
        if generated and question.answerable:
            record["generated"] = score_generated(target.answer(question.question, ANSWER_TOP_K), spans[question.id])
        records.append(record)
        if progress is not None:
            progress(n, len(questions))
    total = time.perf_counter() - started
    server = [r["took_ms"] for r in records if isinstance(r.get("took_ms"), int | float)]
    timing = {
        "total_seconds": round(total, 3),
        "questions": len(records),
        "latency_ms_median": round(statistics.median(latencies), 3) if latencies else 0.0,
        "latency_ms_max": round(max(latencies), 3) if latencies else 0.0,
        "server_ms_mean": round(statistics.fmean(server), 3) if server else 0.0,
    }
    aggregates = aggregate(records)
    if generated:
        aggregates["generated"] = aggregate_generated(records, KINDS)
    return EvalRun(records=records, aggregates=aggregates, timing=timing)

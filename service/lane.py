"""One inference lane: all query-time model work on one long-lived thread, in micro-batches."""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from index import CitedError, Retriever, SearchOptions, SearchResult


def torch_thread_count(setting: int) -> int:
    """The ``torch_threads`` setting made explicit: 0 means one per core."""
    return setting or os.cpu_count() or 1


class LaneError(CitedError):
    """The lane cannot take or finish a question now; the client should retry after ``retry_after`` s."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Overloaded(LaneError):
    pass


class TimedOut(LaneError):
    pass


class NotRunning(LaneError):
    pass


class VectorCache:
    """LRU of question vectors, so repeated questions (dashboards, eval reruns) skip the model.

    Keyed by the model fingerprint and the question with whitespace collapsed (and case folded
    when the model's tokenizer lowercases anyway): only keys that give the same vector meet.
    Used from the lane thread only, so it needs no lock.
    """

    def __init__(self, capacity: int, fingerprint: str, lowercase: bool) -> None:
        self.capacity = capacity
        self.fingerprint = fingerprint
        self.lowercase = lowercase
        self._vectors: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def key(self, question: str) -> tuple[str, str]:
        text = " ".join(question.split())
        return self.fingerprint, text.lower() if self.lowercase else text

    def get(self, key: tuple[str, str]) -> np.ndarray | None:
        vector = self._vectors.get(key)
        if vector is None:
            self.misses += 1
            return None
        self.hits += 1
        self._vectors.move_to_end(key)
        return vector

    def put(self, key: tuple[str, str], vector: np.ndarray) -> None:
        if self.capacity <= 0:
            return
        self._vectors[key] = vector
        self._vectors.move_to_end(key)
        while len(self._vectors) > self.capacity:
            self._vectors.popitem(last=False)

    def stats(self) -> dict[str, float | int | None]:
        asked = self.hits + self.misses
        return {
            "size": len(self._vectors),
            "capacity": self.capacity,
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": round(self.hits / asked, 4) if asked else None,
        }


@dataclass(eq=False)
class _Job:
    question: str
    options: SearchOptions
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[SearchResult]


@dataclass
class _Counters:
    batches: int = 0
    questions: int = 0
    encoded: int = 0
    largest_batch: int = 0
    rejected: int = 0
    timed_out: int = 0
    skipped: int = 0
    busy_seconds: float = field(default=0.0, repr=False)


def _settle(future: asyncio.Future[SearchResult], result: SearchResult | None, error: BaseException | None) -> None:
    if future.done():  # the request gave up meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)  # type: ignore[arg-type]


class InferenceLane:
    """Owns the model on one thread: a forward pass from a thread that stays the same is faster
    than from a pool's changing threads, and questions waiting together share one pass.

    Requests await :meth:`search` on the event loop, which never runs model work. The queue is
    bounded (``max_queue``): beyond it a question is refused at once (:class:`Overloaded`) rather
    than left to wait without limit.
    """

    def __init__(
        self,
        retriever: Retriever,
        max_batch: int = 16,
        batch_wait_ms: float = 0.0,
        max_queue: int = 256,
        cache_size: int = 1024,
        torch_threads: int = 0,
        on_batch: Callable[[int, float, float], None] | None = None,
    ) -> None:
        """``on_batch(size, encode_seconds, search_seconds)`` is called on the lane's thread after each batch (metrics)."""
        self.retriever = retriever
        self.on_batch = on_batch
        self.max_batch = max_batch
        self.batch_wait = batch_wait_ms / 1000
        self.max_queue = max_queue
        self.torch_threads = torch_thread_count(torch_threads)
        tokenizer = retriever.embedder.model.tokenizer
        self.cache = VectorCache(cache_size, retriever.embedder.info.fingerprint, bool(getattr(tokenizer, "do_lower_case", False)))
        self.counters = _Counters()
        self._pending: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="cited-inference", daemon=True)

    # -- the request side (event loop) ----------------------------------------------------------

    def start(self) -> InferenceLane:
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._closed

    def close(self, timeout: float = 10.0) -> None:
        """Finish what is queued, then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)

    async def search(self, question: str, options: SearchOptions, timeout: float) -> SearchResult:
        loop = asyncio.get_running_loop()
        job = _Job(question, options, loop, loop.create_future())
        with self._cond:
            if self._closed:
                raise Overloaded("the server is shutting down", retry_after=1)
            if len(self._pending) >= self.max_queue:
                self.counters.rejected += 1
                raise Overloaded(f"the server is at capacity ({self.max_queue} questions queued); retry shortly", self._retry_after())
            self._pending.append(job)
            self._cond.notify()
        try:
            return await asyncio.wait_for(job.future, timeout)
        except TimeoutError:
            self._abandon(job)
            self.counters.timed_out += 1
            raise TimedOut(f"the question was not answered within {timeout * 1000:.0f} ms; retry shortly", self._retry_after()) from None
        except asyncio.CancelledError:
            self._abandon(job)  # the client went away: do not compute its answer
            raise

    def _abandon(self, job: _Job) -> None:
        """Nobody waits for ``job`` any more: out of the queue now, so it holds no place another
        question could take (a batch already running it just finishes unseen)."""
        with self._cond:
            try:
                self._pending.remove(job)
            except ValueError:
                return  # already taken by the lane
            self.counters.skipped += 1

    def _retry_after(self) -> int:
        """Seconds until the queue as it stands should have drained, at least 1."""
        done = self.counters.questions
        per_question = self.counters.busy_seconds / done if done else 0.05
        return max(1, math.ceil(len(self._pending) * per_question))

    def stats(self) -> dict[str, object]:
        c = self.counters
        return {
            "queued": len(self._pending),
            "max_queue": self.max_queue,
            "max_batch": self.max_batch,
            "batches": c.batches,
            "questions": c.questions,
            "mean_batch": round(c.questions / c.batches, 3) if c.batches else None,
            "largest_batch": c.largest_batch,
            "encoded": c.encoded,
            "rejected": c.rejected,
            "timed_out": c.timed_out,
            "skipped": c.skipped,
            "torch_threads": self.torch_threads,
            "cache": self.cache.stats(),
        }

    # -- the lane thread -------------------------------------------------------------------------

    def _run(self) -> None:
        torch.set_num_threads(self.torch_threads)
        # numpy's BLAS serves small matrix-vector products here; its idle spinning threads would
        # take cores from the next forward pass (eval/bench.py measured ~1.6x slower rows).
        with threadpool_limits(1, "blas"):
            while (batch := self._take()) is not None:
                self._process(batch)

    def _take(self) -> list[_Job] | None:
        """The next batch: what is waiting, up to ``max_batch``. A lone question never waits; a
        batch that already has company waits up to ``batch_wait_ms`` for more."""
        with self._cond:
            while not self._pending and not self._closed:
                self._cond.wait()
            if not self._pending:
                return None
            batch = self._drain(self.max_batch)
            if self.batch_wait > 0 and 1 < len(batch) < self.max_batch:
                deadline = time.monotonic() + self.batch_wait
                while len(batch) < self.max_batch and (left := deadline - time.monotonic()) > 0:
                    if not self._pending:
                        self._cond.wait(left)
                    batch += self._drain(self.max_batch - len(batch))
            return batch

    def _drain(self, room: int) -> list[_Job]:
        batch: list[_Job] = []
        while self._pending and len(batch) < room:
            batch.append(self._pending.popleft())  # abandoned jobs have left the queue already (_abandon)
        return batch

    def _process(self, batch: Sequence[_Job]) -> None:
        if not batch:
            return
        started = time.perf_counter()
        try:
            results = self._search([job.question for job in batch], [job.options for job in batch])
            outcome: list[tuple[SearchResult | None, BaseException | None]] = [(r, None) for r in results]
        except Exception as exc:  # noqa: BLE001 - handed to each waiting request, which reports it
            outcome = [(None, exc)] * len(batch)
        c = self.counters
        c.busy_seconds += time.perf_counter() - started
        c.batches += 1
        c.questions += len(batch)
        c.largest_batch = max(c.largest_batch, len(batch))
        for job, (result, error) in zip(batch, outcome, strict=True):
            try:
                job.loop.call_soon_threadsafe(_settle, job.future, result, error)
            except RuntimeError:  # its event loop has closed: nobody is waiting any more
                pass

    def _search(self, questions: list[str], options: list[SearchOptions]) -> list[SearchResult]:
        """Cached vectors where known; one forward pass for the rest (a question asked twice in
        one batch is encoded once); then one search call for the batch."""
        retriever = self.retriever  # a hot swap (service.swap) takes effect at the next batch
        keys = [self.cache.key(q) for q in questions]
        vectors: dict[tuple[str, str], np.ndarray] = {}
        for key in keys:
            if key not in vectors and (cached := self.cache.get(key)) is not None:
                vectors[key] = cached
        missing = list(dict.fromkeys(k for k in keys if k not in vectors))
        started = time.perf_counter()
        if missing:
            first: dict[tuple[str, str], str] = {}
            for key, question in zip(keys, questions, strict=True):
                first.setdefault(key, question)
            encoded = retriever.embedder.encode([first[k] for k in missing], batch_size=len(missing))
            self.counters.encoded += len(missing)
            for key, vector in zip(missing, encoded, strict=True):
                vectors[key] = vector
                self.cache.put(key, vector)
        queries = np.stack([vectors[k] for k in keys])
        encoded_at = time.perf_counter()
        results = retriever.search_encoded(questions, queries, options)
        if self.on_batch is not None:
            self.on_batch(len(questions), encoded_at - started, time.perf_counter() - encoded_at)
        return results

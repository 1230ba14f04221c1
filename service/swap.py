"""Hot index swap: a running server follows the build that CURRENT names, between requests.

Replicas (``role = "replica"``, docs/replicas.md) are many servers following one index folder
that a separate writer publishes to. They load through :func:`load_published`, which trusts the
published build as it is (no corpus, no build, no tidy) and retries when the build it was
reading was superseded and tidied away under it: with two publishes in quick succession a slow
reader can lose the folder it started on, which is a reason to read the newer one, not to fail.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from index import CitedError, Embedder, RankingConfig, Retriever
from index.config import StoreConfig
from index.errors import ModelError
from index.store import StoredIndex, pointed, read_index
from service.polling import Poller

log = logging.getLogger(__name__)


def published(index_dir: Path) -> str | None:
    """The build folder CURRENT names now, or None while there is none (or it names none: a
    damaged CURRENT must not end the watcher's thread; /health reports it as drift)."""
    try:
        return pointed(index_dir)
    except (CitedError, OSError):
        return None


def same_model(stored: StoredIndex, embedder: Embedder) -> bool:
    return stored.manifest.get("model", {}).get("fingerprint") == embedder.info.fingerprint


def superseded(index_dir: Path, name: str | None) -> bool:
    """CURRENT names another build than ``name`` now: whatever went wrong reading ``name`` is moot."""
    return name is not None and published(index_dir) not in (None, name)


def load_published(index_dir: Path, embedder: Embedder, ranking: RankingConfig, store: StoreConfig = StoreConfig(), attempts: int = 5) -> Retriever:
    """A retriever over the build CURRENT names, as published: what a replica starts with.

    Unlike ``open_index`` it never compares the build with a corpus (a replica may have none:
    the writer decides what is current) and never takes the lock or tidies (the folder may be
    read-only). A read that fails because the build was replaced and removed meanwhile is
    retried on the newer build; any other failure (corrupt, missing, another model) is raised.
    """
    for attempt in range(attempts):
        name = published(index_dir)
        try:
            stored = read_index(index_dir, load_vectors=store.kind == "faiss")
            if not same_model(stored, embedder):
                raise ModelError(f"the published build {stored.path.name} at {index_dir} was made with model "
                                 f"{stored.manifest.get('model', {}).get('name')!r}, not {embedder.info.name!r}: give the replica the writer's model setting")
            return Retriever(embedder, stored, ranking, store)
        except (CitedError, OSError) as exc:
            if attempt + 1 < attempts and superseded(index_dir, name):
                log.info("build %s was replaced while loading it (%s); loading %s", name, exc, published(index_dir))
                continue
            if isinstance(exc, CitedError):
                raise
            raise CitedError(f"cannot read the published build {name} at {index_dir}: {exc}") from exc
    raise AssertionError("unreachable")  # the last attempt returns or raises


class IndexWatcher(Poller):
    """Polls CURRENT; when it names another build, loads it beside the live one and hands it to
    ``swap``. Requests already running keep the retriever they started with, so they finish on
    the old index; the old one is freed when the last of them lets go.

    A new build that cannot be read (corrupt, or made with another model) is logged and the
    live index keeps serving: a bad publish never takes the service down.
    """

    name = "cited-index-watcher"

    def __init__(self, current: Retriever, index_dir: Path, swap: Callable[[Retriever], None], interval: float) -> None:
        super().__init__(interval)
        self.current = current
        self.index_dir = index_dir
        self.swap = swap
        self.swaps = 0
        self._refused: str | None = None  # a build already found unreadable: not retried every poll
        self._lock = threading.Lock()  # the poll and the corpus watcher may both ask at once

    def check(self) -> bool:
        """Swap if CURRENT names a new readable build; True when it did."""
        with self._lock:
            return self._check()

    def _check(self) -> bool:
        name = published(self.index_dir)
        if name is None or name == self.current.stored.path.name or name == self._refused:
            return False
        try:
            stored = read_index(self.index_dir, load_vectors=self.current.store_config.kind == "faiss")
            retriever = self.current.for_build(stored)  # the same model, ranking and kind of store
        except (CitedError, OSError) as exc:
            if superseded(self.index_dir, name):  # published and tidied away while being read: the next poll reads the newer one
                log.info("index build %s was replaced while loading it; switching to the newer one next", name)
                return False
            self._refused = name
            log.error("not switching to the new index build %s: %s", name, exc)
            return False
        if not same_model(stored, self.current.embedder):
            self._refused = name
            log.error("not switching to the new index build %s: it was built with another model", name)
            return False
        self.swap(retriever)
        log.info("switched to index build %s: %d passages", stored.path.name, len(retriever.passages))
        self.current = retriever
        self.swaps += 1
        return True

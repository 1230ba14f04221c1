"""Hot index swap: a running server follows the build that CURRENT names, between requests."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from index import CitedError, Retriever
from index.store import pointed, read_index
from service.polling import Poller

log = logging.getLogger(__name__)


def published(index_dir: Path) -> str | None:
    """The build folder CURRENT names now, or None while there is none (or it names none: a
    damaged CURRENT must not end the watcher's thread; /health reports it as drift)."""
    try:
        return pointed(index_dir)
    except (CitedError, OSError):
        return None


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
        except CitedError as exc:
            self._refused = name
            log.error("not switching to the new index build %s: %s", name, exc)
            return False
        if stored.manifest.get("model", {}).get("fingerprint") != self.current.embedder.info.fingerprint:
            self._refused = name
            log.error("not switching to the new index build %s: it was built with another model", name)
            return False
        self.swap(retriever)
        log.info("switched to index build %s: %d passages", stored.path.name, len(retriever.passages))
        self.current = retriever
        self.swaps += 1
        return True

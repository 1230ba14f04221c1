"""`cited serve --watch`: the corpus folder is polled, and a change is built and published while serving.

The build runs on this watcher's own thread with its own copy of the model: a fast tokenizer
refuses to be used by two threads at once ("Already borrowed"), and the lane's copy must stay
free for questions. Only text that changed is embedded (index.reuse), so a file dropped into
the folder is searchable seconds later; the IndexWatcher then swaps the server to the new build.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from index import CitedError, Embedder, IndexConfig, open_index
from index.ingest import Stat, corpus_stats
from service.swap import published

log = logging.getLogger(__name__)


class CorpusWatcher:
    def __init__(self, config: IndexConfig, interval: float, on_publish: Callable[[], object]) -> None:
        """``on_publish`` runs after each build that published something (to swap at once)."""
        self.config = config
        self.interval = interval
        self.on_publish = on_publish
        self.builds = 0
        self._embedder: Embedder | None = None
        self._seen = self._stats()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cited-corpus-watcher", daemon=True)

    def start(self) -> CorpusWatcher:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(60)  # a build in progress finishes first; it publishes atomically or not at all

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:  # a bug here must not silently end watching, nor the server
                log.exception("corpus watcher failed; still watching")

    def check(self) -> bool:
        """Rebuild if a corpus file was added, changed or removed since the last look; True if it published."""
        stats = self._stats()
        if stats == self._seen:
            return False
        self._seen = stats  # taken before building: a change made during the build is seen next time
        if self._embedder is None:
            self._embedder = Embedder(self.config.model)
        try:
            before = published(self.config.index_dir)
            stored = open_index(self.config, self._embedder, rebuild=True)
        except CitedError as exc:
            log.error("corpus changed but cannot be indexed: %s (still serving the previous build)", exc)
            return False
        if stored.path.name == before:
            return False  # e.g. a file touched without changing its bytes
        self.builds += 1
        self.on_publish()
        return True

    def _stats(self) -> dict[str, Stat] | None:
        try:
            return corpus_stats(self.config.corpus_dir, self.config.files)
        except CitedError:
            return None  # e.g. the folder is empty for a moment; a later look decides


"""`cited serve --watch`: the corpus folder is polled, and a change is built and published while serving.

The build runs on this watcher's own thread with its own copy of the model: a fast tokenizer
refuses to be used by two threads at once ("Already borrowed"), and the lane's copy must stay
free for questions. Only text that changed is embedded (index.reuse), so a file dropped into
the folder is searchable seconds later; the IndexWatcher then swaps the server to the new build.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from index import CitedError, Embedder, IndexConfig, open_index
from index.ingest import Stat, corpus_stats
from service.polling import Poller
from service.swap import published

log = logging.getLogger(__name__)


class CorpusWatcher(Poller):
    name = "cited-corpus-watcher"
    close_timeout = 60.0  # a build in progress finishes first; it publishes atomically or not at all

    def __init__(self, config: IndexConfig, interval: float, on_publish: Callable[[], object]) -> None:
        """``on_publish`` runs after each build that published something (to swap at once)."""
        super().__init__(interval)
        self.config = config
        self.on_publish = on_publish
        self.builds = 0
        self._embedder: Embedder | None = None
        self._seen = self._stats()

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


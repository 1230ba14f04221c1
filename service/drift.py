"""Drift you can see: is the build being served still what CURRENT names, and what the corpus holds?

Citations are offsets into files. When a file changes under a running server, its old offsets
may no longer slice to the text, and a deleted document stays searchable until a new build is
served. None of that may stay silent: a background check compares the served build with CURRENT
and with the corpus (the same staleness test `cited index` rebuilds on), and /health reports
``status: "stale"`` with the reasons. The check runs off the request path; /health only reads
its latest result.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from index import CitedError, IndexConfig, Retriever
from index.build import stale_because
from index.store import pointed
from service.polling import Poller

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Drift:
    build: str  # the served build this was checked against
    published: str | None  # the build CURRENT names
    reasons: tuple[str, ...]  # why the served build is not the truth now; () when it is
    checked_at: float  # time.time()


def drift_of(config: IndexConfig, retriever: Retriever, corpus: bool = True) -> Drift:
    """``corpus`` False (a replica): compare with CURRENT only; the corpus is the writer's to check."""
    build = retriever.stored.path.name
    reasons: list[str] = []
    try:
        named = pointed(config.index_dir)
    except (CitedError, OSError) as exc:
        named = None
        reasons.append(str(exc))
    else:
        if named != build:
            reasons.append(f"CURRENT names {named}, not the served build" if named else "CURRENT names no build")
    if not corpus:
        return Drift(build, named, tuple(reasons), time.time())
    try:
        reasons += stale_because(config, retriever.embedder.info, retriever.stored)
    except (CitedError, OSError) as exc:
        reasons.append(f"the corpus cannot be checked: {exc}")
    return Drift(build, named, tuple(reasons), time.time())


class DriftMonitor(Poller):
    """Re-checks every ``interval`` seconds the build that ``served`` returns at that moment."""

    name = "cited-drift"

    def __init__(self, config: IndexConfig, served: Callable[[], Retriever], interval: float, corpus: bool = True) -> None:
        super().__init__(interval)
        self.config = config
        self.corpus = corpus
        self.served = served
        self.latest: Drift | None = None

    def start(self) -> DriftMonitor:
        self.check()  # before the first request: /health never reports a state nobody checked
        return super().start()

    def check(self) -> Drift:
        drift = drift_of(self.config, self.served(), self.corpus)
        if drift.reasons and (self.latest is None or self.latest.reasons != drift.reasons):
            log.warning("the served build %s is stale: %s", drift.build, "; ".join(drift.reasons))
        self.latest = drift
        return drift

    def reasons_for(self, build: str) -> list[str]:
        """The latest reasons, if they were checked against ``build`` (a swap since makes them moot)."""
        latest = self.latest
        return list(latest.reasons) if latest is not None and latest.build == build else []

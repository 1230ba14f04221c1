"""A background check repeated every few seconds: the shape the index watcher, the corpus watcher
and the drift monitor share."""

from __future__ import annotations

import logging
import threading
from typing import Self

log = logging.getLogger(__name__)


class Poller:
    """Runs :meth:`check` every ``interval`` seconds on a daemon thread until :meth:`close`.

    An exception in one check is logged and the polling goes on: a bug in a watcher must not
    silently end it, nor take the server down.
    """

    name = "cited-poller"
    close_timeout = 10.0  # seconds close() waits for a check in progress

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def check(self) -> object:
        raise NotImplementedError

    def start(self) -> Self:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(self.close_timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:
                log.exception("%s: a check failed; still polling", self.name)

"""Domain errors of the index package. Messages name the file and say what to do."""

from __future__ import annotations


class IndexError_(Exception):
    """Base class; the trailing underscore avoids shadowing the built-in IndexError."""


class CorpusError(IndexError_):
    """The corpus folder cannot be read as a corpus (missing, empty, not UTF-8)."""


class IndexMissing(IndexError_):
    """No index has been built at the configured place yet."""


class IndexCorrupt(IndexError_):
    """An index on disk does not match its own manifest; it must not be served."""

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(
            f"index at {path} is corrupt: {problem}. Refusing to serve it; "
            "rebuild it with `cited index --rebuild` (or delete the folder)."
        )
        self.path = path
        self.problem = problem


class IndexStale(IndexError_):
    """The index was built from other inputs (corpus, model, chunking) and rebuilding is off."""

"""The project's one error family. Messages name the file and say what to do.

Every problem a user can fix (a bad corpus, a missing model, a broken question file, an
unreachable server) is a :class:`CitedError`; the CLI prints it as one line and exits 1. Any
other exception is a bug and shows as one, with its traceback. Each package defines its own
subclasses next to the code that raises them.
"""

from __future__ import annotations


class CitedError(Exception):
    """A problem the user can fix; its message is one line that says what to do."""


class UsageError(CitedError):
    """Arguments that cannot work together, or a result that cannot be written where asked."""


class ModelError(CitedError):
    """The embedding model cannot be loaded offline, or does not match the index."""


class CorpusError(CitedError):
    """The corpus folder cannot be read as a corpus (missing, empty, not UTF-8)."""


class IndexMissing(CitedError):
    """No index has been built at the configured place yet."""


class IndexCorrupt(CitedError):
    """An index on disk does not match its own manifest; it must not be served."""

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(
            f"index at {path} is corrupt: {problem}. Refusing to serve it; "
            "rebuild it with `cited index --rebuild` (or delete the folder)."
        )
        self.path = path
        self.problem = problem


class IndexStale(CitedError):
    """The index was built from other inputs (corpus, model, chunking) and rebuilding is off."""

"""One writer per index folder: an exclusive lock held for a whole build, so two builds can never
interleave their publishes or delete each other's folders.

The lock is an advisory ``flock`` on ``<index_dir>/.lock``: the kernel releases it when the
holder exits, however it exits (kill -9 included), so a crashed build never leaves the folder
locked. The holder's pid is written into the file for the message the next writer gets.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from index.errors import CitedError

LOCK = ".lock"


class IndexBusy(CitedError):
    """Another process is writing this index folder."""


@contextmanager
def index_lock(index_dir: Path) -> Iterator[None]:
    """Hold the folder's write lock, or raise IndexBusy at once (never wait behind an hour-long build)."""
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(index_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise CitedError(f"cannot open {index_dir / LOCK}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise IndexBusy(f"another build (pid {holder}) is writing the index at {index_dir}; wait for it to finish") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock

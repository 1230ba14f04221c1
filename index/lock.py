"""One writer per index folder: an exclusive lock held for a whole build, so two builds can never
interleave their publishes or delete each other's folders.

The lock is an advisory ``flock`` on ``<index_dir>/.lock``: the kernel releases it when the
holder exits, however it exits (kill -9 included), so a crashed build never leaves the folder
locked. The holder's pid is written into the file for the message the next writer gets (and
cleared when it lets go).
"""

from __future__ import annotations

import fcntl
import os
import time
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
            raise IndexBusy(f"another build (pid {_holder(fd)}) is writing the index at {index_dir}; wait for it to finish") from None
        record = f"{os.getpid()}\n".encode()
        os.pwrite(fd, record, 0)  # then cut to length: the file is never empty or half-written while held
        os.ftruncate(fd, len(record))
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # let go cleanly: no pid left behind for the next refused writer to name
    finally:
        os.close(fd)  # releases the lock


def _holder(fd: int) -> str:
    """The pid of the process holding the lock, as it wrote it.

    The holder writes its pid just after it takes the lock, so for a moment the file is empty or
    still names a killed holder (kill -9 leaves its pid): read again until it names a live process.
    """
    deadline = time.monotonic() + 0.5
    while True:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if (text.isdigit() and _alive(int(text))) or time.monotonic() > deadline:
            return text or "unknown"
        time.sleep(0.005)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True

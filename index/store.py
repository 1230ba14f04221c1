"""The on-disk index format: one immutable build folder per build, named by a pointer file.

    <index_dir>/CURRENT                 name of the live build folder (replaced atomically)
    <index_dir>/PREVIOUS                the one before it, kept for `cited index --rollback`
    <index_dir>/.lock                   held by the one process building (index.lock)
    <index_dir>/build-<time>-<id>/
        manifest.json                   inputs, build info, sha256 of every other file (written last)
        faiss.index                     FAISS inner-product index (exact, or IVF past a size); row i ↔ line i of passages.jsonl
        passages.jsonl                  one passage per line: citation fields, text, token count
        ...                             extra artefacts (e.g. a lexical index), hashed like the rest

A build is written into a temporary folder, fsynced, and published by replacing CURRENT, so a
crash at any point leaves the previous build untouched and served. No pickle anywhere.

A pointer that cannot name a build (not UTF-8, a folder, a name that is no build folder's) makes
the index corrupt: it is refused with a message naming the file, and no build is deleted on its
account. Every other file-system error of reading or writing an index is an IndexIOError, one
line naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from index.ann import search_as_built, vector_index
from index.config import EXACT_UP_TO
from index.errors import CitedError, IndexCorrupt, IndexMissing
from index.types import Passage

POINTER = "CURRENT"
PREVIOUS = "PREVIOUS"  # the build CURRENT named before the last publish: what `cited index --rollback` restores
MANIFEST = "manifest.json"
VECTORS = "faiss.index"
PASSAGES = "passages.jsonl"

Writer = Callable[[Path], None]

# What write_index names its build folders; a pointer naming anything else is damaged.
BUILD_NAME = re.compile(r"build-[0-9A-Za-z._-]{1,200}")

# The named points of a build, in order. ``on_step`` is None, and step() does nothing, unless a
# test sets it inside a build's own process: tests/test_chaos.py kills the process (SIGKILL) at a
# chosen step to prove a crash there leaves the previous index served and no debris after the
# next start. A module attribute rather than an environment variable: index/ reads no
# environment, and a deployed process can never be told to kill itself from outside.
STEPS = (
    "locked",              # the index lock is held (index.build)
    "corpus-read",         # corpus files read and decoded
    "embedded",            # every vector made; nothing written yet
    "files-written",       # data files in the temporary folder, manifest not yet
    "synced",              # manifest written, every file and folder fsynced, still .tmp-*
    "renamed",             # the temporary folder renamed to build-*; no pointer names it
    "previous-written",    # PREVIOUS.tmp written and fsynced, not yet renamed
    "previous-published",  # PREVIOUS names the live build; CURRENT unchanged
    "current-written",     # CURRENT.tmp written and fsynced, not yet renamed
    "current-published",   # CURRENT names the new build; old builds not yet removed
    "tidied",              # builds but CURRENT's and PREVIOUS's removed
)
on_step: Callable[[str], None] | None = None


def step(name: str) -> None:
    """Mark the named point (one of STEPS) of a build; a no-op outside tests."""
    if on_step is not None:
        on_step(name)


class IndexIOError(CitedError, OSError):
    """An index file or folder cannot be read or written (permissions, disk full, a folder where a
    file should be). Also an OSError, so code that handles file-system errors still does."""


@contextmanager
def io_errors(fallback: Path, context: str) -> Iterator[None]:
    """Turn an OSError inside into one IndexIOError line saying ``context`` and naming the file
    (``fallback`` if the error names none), e.g. ``cannot build the index: <file>: Permission denied``."""
    try:
        yield
    except IndexIOError:
        raise
    except OSError as exc:
        names = " → ".join(str(n) for n in (exc.filename, exc.filename2) if n is not None) or str(fallback)
        raise IndexIOError(f"{context}: {names}: {exc.strerror or exc}") from exc


@dataclass(frozen=True)
class StoredIndex:
    path: Path
    manifest: dict[str, Any]
    passages: list[Passage]
    vector_index: faiss.Index  # the passages' vectors, row i for passage i


def write_index(
    index_dir: Path,
    manifest: dict[str, Any],
    passages: list[Passage],
    vectors: np.ndarray,
    extras: dict[str, Writer] | None = None,
    exact_up_to: int = EXACT_UP_TO,
    before_publish: Callable[[str], None] | None = None,
    removed: Callable[[str], None] | None = None,
) -> Path:
    """Write a complete build and publish it; returns the build folder.

    ``extras`` maps a sub-folder name to a function that writes into it; every file it writes
    is hashed into the manifest and verified on open like the core files. Past ``exact_up_to``
    passages the vectors go into an approximate index (index.ann). ``before_publish`` is called
    with the new build's name once its folder is complete and before any pointer names it (a
    store outside the folder, Milvus, writes there what the build will need); ``removed`` with
    each old build's name that tidying deletes.
    """
    if len(passages) != vectors.shape[0]:
        raise ValueError(f"{len(passages)} passages but {vectors.shape[0]} vectors")
    with io_errors(index_dir, "cannot write the index"):
        index_dir.mkdir(parents=True, exist_ok=True)
        previous = _replaceable(index_dir)
        tmp = index_dir / f".tmp-{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            # Inner product on L2-normalised vectors is cosine similarity.
            searchable, faiss_entry = vector_index(np.ascontiguousarray(vectors, dtype=np.float32), exact_up_to)
            try:
                faiss.write_index(searchable, str(tmp / VECTORS))
            except RuntimeError as exc:  # FAISS reports a failed write (disk full, say) this way
                raise IndexIOError(f"cannot write the index: {tmp / VECTORS}: {' '.join(str(exc).split())}") from exc
            with open(tmp / PASSAGES, "w", encoding="utf-8") as fh:
                for row, passage in enumerate(passages):
                    fh.write(json.dumps({"row": row, **asdict(passage)}, ensure_ascii=False) + "\n")
            for name, writer in (extras or {}).items():
                (tmp / name).mkdir()
                writer(tmp / name)
            step("files-written")
            full = {
                **manifest,
                "faiss": faiss_entry,
                "files": {rel: _sha256(tmp / rel) for rel in _files(tmp)},
            }
            _write_synced(tmp / MANIFEST, json.dumps(full, indent=2, ensure_ascii=False) + "\n")
            _sync_tree(tmp)  # every data file and the folder on disk before anything names them
            step("synced")
            build = index_dir / f"build-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
            os.rename(tmp, build)
            step("renamed")
            if before_publish is not None:
                before_publish(build.name)
            # PREVIOUS before CURRENT: killed in between, both name the live build and the new one is
            # an orphan the next start removes. The other order would leave the live build named by
            # neither, so the next start would delete it and a rollback would go two builds back.
            if previous and previous != build.name:
                _publish(index_dir, PREVIOUS, previous)
            _publish(index_dir, POINTER, build.name)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)  # a renamed, unpublished build is an orphan the next tidy removes
            raise
        tidy(index_dir, removed)
        step("tidied")
    return build


def _replaceable(index_dir: Path) -> str | None:
    """The live build a new one will replace (None if there is none, or CURRENT is damaged: a
    rebuild repairs it); refuses at once, before any work, if CURRENT cannot be replaced."""
    pointer = index_dir / POINTER
    if pointer.is_dir():
        raise IndexIOError(f"cannot write the index: {pointer} is a folder, not the file naming the live build; remove it")
    try:
        previous = pointed(index_dir, POINTER)
    except IndexCorrupt:
        return None
    return previous if previous and (index_dir / previous).is_dir() else None


def rollback(index_dir: Path) -> Path:
    """Serve the previous build again (it becomes CURRENT, and the current one PREVIOUS)."""
    with io_errors(index_dir, "cannot roll back"):
        current, previous = pointed(index_dir, POINTER), pointed(index_dir, PREVIOUS)
        if not previous or previous == current or not (index_dir / previous).is_dir():
            raise IndexMissing(f"no previous build to roll back to at {index_dir}")
        # CURRENT first, unlike write_index: killed in between, the rollback has happened and both
        # name the build rolled back to (the one rolled away from is lost). PREVIOUS first would
        # lose the build being rolled back to, with the rollback undone.
        _publish(index_dir, POINTER, previous)
        if current:
            _publish(index_dir, PREVIOUS, current)
    return index_dir / previous


def read_index(index_dir: Path, load_vectors: bool = True) -> StoredIndex:
    """Open the live build, verifying every file against the manifest.

    Raises IndexMissing if nothing was ever published here, IndexCorrupt if anything does
    not match (a damaged file is never served, whatever the cause). ``load_vectors`` False
    (a store other than FAISS answers the searches) defers reading faiss.index until something
    asks for ``vector_index``; its bytes are still checked against the manifest now.
    """
    with io_errors(index_dir, "cannot read the index"):
        return _read_index(index_dir, load_vectors)


def _read_index(index_dir: Path, load_vectors: bool = True) -> StoredIndex:
    name = pointed(index_dir, POINTER)
    if name is None:
        raise IndexMissing(f"no index at {index_dir}: build it with `cited index`")
    build = index_dir / name
    if not build.is_dir():
        raise IndexCorrupt(index_dir / POINTER, f"it names {name!r}, which does not exist")
    manifest = _read_manifest(build)
    recorded = manifest.get("files")
    if not isinstance(recorded, dict):
        raise IndexCorrupt(build / MANIFEST, "the manifest lists no files")
    present = set(_files(build)) - {MANIFEST}
    if missing := sorted(set(recorded) - present):
        raise IndexCorrupt(build / missing[0], "file is missing")
    if extra := sorted(present - set(recorded)):
        raise IndexCorrupt(build / extra[0], "file is not listed in the manifest")
    for rel, expected in recorded.items():
        if _sha256(build / rel) != expected:
            raise IndexCorrupt(build / rel, "sha256 differs from the manifest")
    passages = _read_passages(build / PASSAGES)
    vectors = _read_vectors(build, manifest, len(passages)) if load_vectors else _DeferredVectors(build, manifest, len(passages))
    return StoredIndex(path=build, manifest=manifest, passages=passages, vector_index=vectors)


def _read_vectors(build: Path, manifest: dict[str, Any], passages: int) -> faiss.Index:
    try:
        vectors = faiss.read_index(str(build / VECTORS))
    except RuntimeError as exc:
        raise IndexCorrupt(build / VECTORS, f"FAISS cannot read it ({exc})") from exc
    try:
        search_as_built(vectors, manifest.get("faiss") or {})
    except (RuntimeError, TypeError, ValueError) as exc:  # the manifest is the one file not hashed
        raise IndexCorrupt(build / MANIFEST, f"its faiss entry does not fit {VECTORS} ({exc})") from exc
    if vectors.ntotal != passages:
        raise IndexCorrupt(build, f"{vectors.ntotal} vectors but {passages} passages")
    return vectors


class _DeferredVectors:
    """faiss.index, read (with every check of an eager read) the first time anything uses it.

    A server whose store is Milvus never does, so it never holds the vectors twice; a rebuild
    reusing this build's vectors (index.reuse) or an eval tool reading them still can.
    """

    def __init__(self, build: Path, manifest: dict[str, Any], passages: int) -> None:
        self._args = (build, manifest, passages)
        self._index: faiss.Index | None = None

    def __getattr__(self, name: str) -> Any:
        if self._index is None:
            with io_errors(self._args[0], "cannot read the index"):
                self._index = _read_vectors(*self._args)
        return getattr(self._index, name)


def _read_manifest(build: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((build / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise IndexCorrupt(build / MANIFEST, "file is missing") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexCorrupt(build / MANIFEST, f"not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict):
        raise IndexCorrupt(build / MANIFEST, "not a JSON object")
    return manifest


def _read_passages(path: Path) -> list[Passage]:
    passages: list[Passage] = []
    with open(path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            try:
                record = json.loads(line)
                if record.pop("row") != line_no - 1:
                    raise ValueError("rows out of order")
                passages.append(Passage(**record))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise IndexCorrupt(path, f"line {line_no} is not a passage record ({exc})") from exc
    return passages


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def pointed(index_dir: Path, pointer: str = POINTER) -> str | None:
    """The build folder name a pointer file (CURRENT or PREVIOUS) holds; None if there is no such file.

    Raises IndexCorrupt, naming the file, if it cannot name a build: a folder, bytes that are not
    UTF-8, or anything but a build folder's name (a path, 300 characters, an empty file).
    """
    path = index_dir / pointer
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise IndexCorrupt(path, "it is a folder, not the file naming a build; remove it") from None
    try:
        name = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise IndexCorrupt(path, f"it is not UTF-8 text ({len(data)} bytes), so it names no build") from None
    if not BUILD_NAME.fullmatch(name):
        shown = name if len(name) <= 60 else name[:60] + "…"
        raise IndexCorrupt(path, f"it holds {shown!r} ({len(name)} characters), which is not a build folder's name")
    return name


def _publish(index_dir: Path, pointer: str, name: str) -> None:
    """Point ``pointer`` at build ``name`` atomically and durably (the rename itself is fsynced)."""
    _write_synced(index_dir / f"{pointer}.tmp", name + "\n")
    step(f"{pointer.lower()}-written")
    os.replace(index_dir / f"{pointer}.tmp", index_dir / pointer)
    _fsync(index_dir)
    step(f"{pointer.lower()}-published")


def _sync_tree(folder: Path) -> None:
    for path in sorted(folder.rglob("*"), reverse=True):  # files before the folders holding them
        _fsync(path)
    _fsync(folder)


def _fsync(path: Path) -> None:
    """fsync a file or a folder; an error names it (fsync's own does not)."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def _write_synced(path: Path, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:  # a full disk fails the write or the fsync, whose errors name no file
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc


def tidy(index_dir: Path, removed: Callable[[str], None] | None = None) -> None:
    """Every build but the current and the previous one, abandoned temporary folders and pointer
    files; best effort, never fatal. ``removed`` is told each build folder's name as it goes
    (a store drops what it kept for that build). Builds hold the index lock (index.lock) while they call this,
    so nothing removed here is another writer's work in progress.

    A damaged pointer leaves every build in place: which one is live is then unknown, and the
    operator repairing it may need any of them.
    """
    try:
        keep: set[str | None] | None = {pointed(index_dir, POINTER), pointed(index_dir, PREVIOUS)}
    except (IndexCorrupt, OSError):
        keep = None
    for child in index_dir.iterdir():
        if child.is_dir() and not child.is_symlink():
            if child.name.startswith(".tmp-") or (keep is not None and child.name.startswith("build-") and child.name not in keep):
                shutil.rmtree(child, ignore_errors=True)
                if removed is not None and child.name.startswith("build-"):
                    removed(child.name)
        elif child.is_file() and child.name in (f"{POINTER}.tmp", f"{PREVIOUS}.tmp"):
            child.unlink(missing_ok=True)

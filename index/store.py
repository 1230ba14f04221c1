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
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from index.ann import search_as_built, vector_index
from index.config import EXACT_UP_TO
from index.errors import IndexCorrupt, IndexMissing
from index.types import Passage

POINTER = "CURRENT"
PREVIOUS = "PREVIOUS"  # the build CURRENT named before the last publish: what `cited index --rollback` restores
MANIFEST = "manifest.json"
VECTORS = "faiss.index"
PASSAGES = "passages.jsonl"

Writer = Callable[[Path], None]


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
) -> Path:
    """Write a complete build and publish it; returns the build folder.

    ``extras`` maps a sub-folder name to a function that writes into it; every file it writes
    is hashed into the manifest and verified on open like the core files. Past ``exact_up_to``
    passages the vectors go into an approximate index (index.ann).
    """
    if len(passages) != vectors.shape[0]:
        raise ValueError(f"{len(passages)} passages but {vectors.shape[0]} vectors")
    index_dir.mkdir(parents=True, exist_ok=True)
    tmp = index_dir / f".tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        # Inner product on L2-normalised vectors is cosine similarity.
        searchable, faiss_entry = vector_index(np.ascontiguousarray(vectors, dtype=np.float32), exact_up_to)
        faiss.write_index(searchable, str(tmp / VECTORS))
        with open(tmp / PASSAGES, "w", encoding="utf-8") as fh:
            for row, passage in enumerate(passages):
                fh.write(json.dumps({"row": row, **asdict(passage)}, ensure_ascii=False) + "\n")
        for name, writer in (extras or {}).items():
            (tmp / name).mkdir()
            writer(tmp / name)
        full = {
            **manifest,
            "faiss": faiss_entry,
            "files": {rel: _sha256(tmp / rel) for rel in _files(tmp)},
        }
        _write_synced(tmp / MANIFEST, json.dumps(full, indent=2, ensure_ascii=False) + "\n")
        _sync_tree(tmp)  # every data file and the folder on disk before anything names them
        build = index_dir / f"build-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        os.rename(tmp, build)
        previous = _pointed(index_dir, POINTER)
        _publish(index_dir, POINTER, build.name)
        if previous and previous != build.name:
            _publish(index_dir, PREVIOUS, previous)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    tidy(index_dir)
    return build


def rollback(index_dir: Path) -> Path:
    """Serve the previous build again (it becomes CURRENT, and the current one PREVIOUS)."""
    current, previous = _pointed(index_dir, POINTER), _pointed(index_dir, PREVIOUS)
    if not previous or not (index_dir / previous).is_dir():
        raise IndexMissing(f"no previous build to roll back to at {index_dir}")
    _publish(index_dir, POINTER, previous)
    if current:
        _publish(index_dir, PREVIOUS, current)
    return index_dir / previous


def read_index(index_dir: Path) -> StoredIndex:
    """Open the live build, verifying every file against the manifest.

    Raises IndexMissing if nothing was ever published here, IndexCorrupt if anything does
    not match (a damaged file is never served, whatever the cause).
    """
    pointer = index_dir / POINTER
    if not pointer.is_file():
        raise IndexMissing(f"no index at {index_dir}")
    build = index_dir / pointer.read_text(encoding="utf-8").strip()
    if not build.is_dir() or build.parent != index_dir:
        raise IndexCorrupt(index_dir, f"{POINTER} names {build.name!r}, which does not exist")
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
    try:
        vectors = faiss.read_index(str(build / VECTORS))
    except RuntimeError as exc:
        raise IndexCorrupt(build / VECTORS, f"FAISS cannot read it ({exc})") from exc
    try:
        search_as_built(vectors, manifest.get("faiss") or {})
    except (RuntimeError, TypeError, ValueError) as exc:  # the manifest is the one file not hashed
        raise IndexCorrupt(build / MANIFEST, f"its faiss entry does not fit {VECTORS} ({exc})") from exc
    passages = _read_passages(build / PASSAGES)
    if vectors.ntotal != len(passages):
        raise IndexCorrupt(build, f"{vectors.ntotal} vectors but {len(passages)} passages")
    return StoredIndex(path=build, manifest=manifest, passages=passages, vector_index=vectors)


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


def _pointed(index_dir: Path, pointer: str) -> str | None:
    try:
        return (index_dir / pointer).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _publish(index_dir: Path, pointer: str, name: str) -> None:
    """Point ``pointer`` at build ``name`` atomically and durably (the rename itself is fsynced)."""
    _write_synced(index_dir / f"{pointer}.tmp", name + "\n")
    os.replace(index_dir / f"{pointer}.tmp", index_dir / pointer)
    _fsync_dir(index_dir)


def _sync_tree(folder: Path) -> None:
    for path in sorted(folder.rglob("*"), reverse=True):  # files before the folders holding them
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
        else:
            _fsync_dir(path)
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def tidy(index_dir: Path) -> None:
    """Every build but the current and the previous one, abandoned temporary folders and pointer
    files; best effort, never fatal. Builds hold the index lock (index.lock) while they call this,
    so nothing removed here is another writer's work in progress."""
    keep = {_pointed(index_dir, POINTER), _pointed(index_dir, PREVIOUS)}
    for child in index_dir.iterdir():
        if child.is_dir() and child.name not in keep and child.name.startswith(("build-", ".tmp-")):
            shutil.rmtree(child, ignore_errors=True)
        elif child.is_file() and child.name in (f"{POINTER}.tmp", f"{PREVIOUS}.tmp"):
            child.unlink(missing_ok=True)

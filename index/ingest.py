"""Read a corpus folder into Documents, byte-exact, so citations can be checked against the files.

Also knows which files changed since a build without reading them: a build records each file's
size and modification time beside its sha256, and a later check re-hashes only the files whose
stat differs, so start-up time does not grow with corpus bytes.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from index.errors import CorpusError
from index.types import Document

# A file modified this close to the moment it was hashed may change again within the same
# mtime tick (coarse file systems tick in whole seconds) without its stat changing; such a
# file is never trusted by its stat, only by its bytes (git calls these "racily clean").
RACY_NS = 2_000_000_000

Stat = tuple[int, int]  # (size in bytes, mtime in ns)


@dataclass(frozen=True)
class Corpus:
    documents: list[Document]
    files: dict[str, str]  # source -> sha256 of the bytes the documents were decoded from
    stat: dict[str, Any]  # for the manifest: when the files were read and each one's Stat then


@dataclass(frozen=True)
class Digest:
    files: dict[str, str]  # source -> sha256
    hashed: int  # files read to hash them; the others were known by their unchanged stat


def corpus_files(corpus_dir: Path) -> list[Path]:
    """Every ``*.txt`` under the folder, recursively, in a stable order."""
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus folder {corpus_dir} does not exist or is not a folder")
    files = sorted(p for p in corpus_dir.rglob("*.txt") if p.is_file())
    if not files:
        raise CorpusError(f"corpus folder {corpus_dir} holds no .txt files")
    return files


def corpus_stats(corpus_dir: Path) -> dict[str, Stat]:
    """Size and mtime of every corpus file: cheap enough to poll for changes."""
    stats: dict[str, Stat] = {}
    for path in corpus_files(corpus_dir):
        try:
            stats[_source(corpus_dir, path)] = _stat(path)
        except FileNotFoundError:  # deleted between listing and stat: it is simply gone
            continue
    return stats


def decode_document(source: str, data: bytes) -> Document:
    """Decode as UTF-8 without newline translation, so offsets match the bytes on disk."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{source} is not valid UTF-8 (byte {exc.start}); convert it to UTF-8") from exc
    return Document(doc_id=source.removesuffix(".txt"), source=source, text=text)


def read_corpus(corpus_dir: Path) -> Corpus:
    """Every document, with the sha256 of exactly the bytes that were decoded.

    Each file is stat'ed before it is read: if it changes in between, the recorded stat is
    the older one, and the next check re-hashes the file rather than trusting it.
    """
    taken = time.time_ns()
    documents: list[Document] = []
    files: dict[str, str] = {}
    stats: dict[str, Stat] = {}
    for path in corpus_files(corpus_dir):
        source = _source(corpus_dir, path)
        stats[source] = _stat(path)
        data = path.read_bytes()
        documents.append(decode_document(source, data))
        files[source] = hashlib.sha256(data).hexdigest()
    return Corpus(documents, files, {"taken_ns": taken, "files": {s: list(v) for s, v in stats.items()}})


def corpus_digest(corpus_dir: Path, recorded: Mapping[str, Any] | None = None) -> Digest:
    """sha256 of every corpus file; a file whose stat equals the one ``recorded`` (a build
    manifest) saw, and which was not modified just before that build read it, keeps its
    recorded sha256 without being read.

    Like git and rsync, this trusts that changed content changes the size or the mtime: a
    tool that rewrites a file and restores its old mtime defeats it (``cited index
    --rebuild`` always reads everything).
    """
    known = (recorded or {}).get("corpus", {}).get("files", {})
    seen = (recorded or {}).get("corpus_stat") or {}
    taken, seen_files = seen.get("taken_ns", 0), seen.get("files", {})
    files: dict[str, str] = {}
    hashed = 0
    for path in corpus_files(corpus_dir):
        source = _source(corpus_dir, path)
        size, mtime = _stat(path)
        if source in known and seen_files.get(source) == [size, mtime] and mtime < taken - RACY_NS:
            files[source] = known[source]
            continue
        files[source] = hashlib.sha256(path.read_bytes()).hexdigest()
        hashed += 1
    return Digest(files, hashed)


def _source(corpus_dir: Path, path: Path) -> str:
    return path.relative_to(corpus_dir).as_posix()


def _stat(path: Path) -> Stat:
    st = path.stat()
    return st.st_size, st.st_mtime_ns

"""Read a corpus folder into Documents, so citations can be checked against the files (or the text extracted from them).

Which files are documents and how each format becomes text is ``index/formats.py``.

Also knows which files changed since a build without reading them: a build records each file's
size and modification time beside its sha256, and a later check re-hashes only the files whose
stat differs, so start-up time does not grow with corpus bytes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from index.errors import CorpusError
from index.formats import Unreadable, doc_ids, format_of, read_document, supported
from index.types import Document

log = logging.getLogger(__name__)

# A file modified this close to the moment it was hashed may change again within the same
# mtime tick (coarse file systems tick in whole seconds) without its stat changing; such a
# file is never trusted by its stat, only by its bytes (git calls these "racily clean").
RACY_NS = 2_000_000_000

Stat = tuple[int, int]  # (size in bytes, mtime in ns)


@dataclass(frozen=True)
class FilePolicy:
    """Which files of the corpus folder are read at all: the boundary of what can ever be served."""

    max_file_bytes: int = 8 * 2**20  # one larger file would keep a build (and a first start) busy for many minutes
    follow_links: bool = False  # index files that links inside the folder point to outside it


@dataclass(frozen=True)
class Skipped:
    source: str  # as it would be cited; a name that is not UTF-8 is shown with escapes
    reason: str


@dataclass(frozen=True)
class Corpus:
    documents: list[Document]
    files: dict[str, str]  # source -> sha256 of the bytes read (documents, and files skipped for their content)
    stat: dict[str, Any]  # for the manifest: when the files were read and each one's Stat then
    skipped: list[Skipped]


@dataclass(frozen=True)
class Digest:
    files: dict[str, str]  # source -> sha256
    hashed: int  # files read to hash them; the others were known by their unchanged stat


def list_corpus(corpus_dir: Path, policy: FilePolicy = FilePolicy()) -> tuple[list[Path], list[Skipped]]:
    """Every document file under the folder (``.txt``, ``.md``, ``.html``, ``.pdf``, any letter case:
    :data:`index.formats.SUFFIXES`) that the policy lets be read, in a stable order, and the files it
    does not read, each with the reason (another format included, unless the file or a folder above
    it is hidden: ``.git``, ``.DS_Store``).

    Links are resolved: a file whose real path lies outside the folder is not read unless
    ``follow_links`` says so, and links to folders are never walked (no loops, no escape).
    Devices, FIFOs and sockets are never read.
    """
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus folder {corpus_dir} does not exist or is not a folder")
    root = corpus_dir.resolve()
    files: list[Path] = []
    skipped: list[Skipped] = []

    def unlistable(exc: OSError) -> None:  # os.walk would otherwise leave the folder out without a word
        skipped.append(Skipped(_shown(corpus_dir, Path(exc.filename)), f"a folder that cannot be listed ({exc.strerror or exc.__class__.__name__})"))

    for folder, dirs, names in os.walk(corpus_dir, onerror=unlistable):  # followlinks=False: a linked folder is listed, not entered
        dirs.sort()
        for name in sorted(dirs):
            if os.path.islink(os.path.join(folder, name)):
                skipped.append(Skipped(_shown(corpus_dir, Path(folder) / name), "a link to a folder; links to folders are not followed"))
        for name in sorted(names):
            path = Path(folder) / name
            source = _shown(corpus_dir, path)
            if format_of(name) is None:
                # reported, so no file is left out without a word; hidden files and folders (.git, .DS_Store) are not documents
                if not any(part.startswith(".") for part in Path(source).parts):
                    skipped.append(Skipped(source, f"not a supported format ({supported()})"))
            elif reason := _refusal(path, root, policy):
                skipped.append(Skipped(source, reason))
            else:
                files.append(path)
    return files, skipped


def _refusal(path: Path, root: Path, policy: FilePolicy) -> str | None:
    """Why ``path`` may not be read, or None."""
    try:
        path.as_posix().encode("utf-8")
    except UnicodeEncodeError:
        return "the file name is not valid UTF-8; rename it"
    try:
        st = path.stat()
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc.__class__.__name__})"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if not policy.follow_links and not path.resolve().is_relative_to(root):
        return "a link to a file outside the corpus folder (set follow_links to index it)"
    if st.st_size > policy.max_file_bytes:
        return f"{st.st_size} bytes, over max_file_bytes ({policy.max_file_bytes})"
    return None


def corpus_files(corpus_dir: Path, policy: FilePolicy = FilePolicy()) -> list[Path]:
    """The files :func:`list_corpus` lets be read; at least one."""
    files, skipped = list_corpus(corpus_dir, policy)
    if not files:
        refused = f" ({len(skipped)} refused, e.g. {skipped[0].source}: {skipped[0].reason})" if skipped else ""
        raise CorpusError(f"corpus folder {corpus_dir} holds no readable documents ({supported()}){refused}")
    return files


def corpus_stats(corpus_dir: Path, policy: FilePolicy = FilePolicy()) -> dict[str, Stat]:
    """Size and mtime of every corpus file: cheap enough to poll for changes."""
    stats: dict[str, Stat] = {}
    for path in corpus_files(corpus_dir, policy):
        try:
            stats[_source(corpus_dir, path)] = _stat(path)
        except FileNotFoundError:  # deleted between listing and stat: it is simply gone
            continue
    return stats


def decode_document(source: str, data: bytes, doc_id: str | None = None) -> Document:
    """The document a file's bytes make (:func:`index.formats.read_document`): a text format decoded
    without newline translation, so offsets match the file; a derived format's extracted text.
    Raises CorpusError naming the file and why it cannot be read (empty, undecodable, unparseable)."""
    try:
        return read_document(source, doc_ids([source])[source] if doc_id is None else doc_id, data)
    except Unreadable as exc:
        raise CorpusError(f"{source} {exc.reason}") from None


def read_corpus(corpus_dir: Path, policy: FilePolicy = FilePolicy()) -> Corpus:
    """Every document, with the sha256 of exactly the bytes that were decoded.

    A file that cannot be read, decoded or parsed, or that is empty, is skipped with a warning naming
    it, never the whole build: one bad file must not keep every other document out of the index. Each file is
    stat'ed before it is read: if it changes in between, the recorded stat is the older one,
    and the next check re-hashes the file rather than trusting it.
    """
    taken = time.time_ns()
    paths, skipped = list_corpus(corpus_dir, policy)
    documents: list[Document] = []
    files: dict[str, str] = {}
    stats: dict[str, Stat] = {}
    ids = doc_ids(_source(corpus_dir, path) for path in paths)
    for path in paths:
        source = _source(corpus_dir, path)
        try:
            stats[source] = _stat(path)
            data = path.read_bytes()
        except OSError as exc:
            skipped.append(Skipped(source, f"cannot be read ({exc.strerror or exc.__class__.__name__})"))
            continue
        files[source] = hashlib.sha256(data).hexdigest()
        try:
            documents.append(decode_document(source, data, ids[source]))
        except CorpusError as exc:
            skipped.append(Skipped(source, str(exc).removeprefix(f"{source} ")))
    for s in skipped:
        log.warning("skipped %s: %s", s.source, s.reason)
    if not documents:
        refused = f" ({len(skipped)} skipped, e.g. {skipped[0].source}: {skipped[0].reason})" if skipped else ""
        raise CorpusError(f"corpus folder {corpus_dir} holds no readable documents ({supported()}){refused}")
    stat_record = {"taken_ns": taken, "files": {s: list(v) for s, v in stats.items()}}
    return Corpus(documents, files, stat_record, sorted(skipped, key=lambda s: s.source))


def corpus_digest(corpus_dir: Path, recorded: Mapping[str, Any] | None = None, policy: FilePolicy = FilePolicy()) -> Digest:
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
    for path in corpus_files(corpus_dir, policy):
        source = _source(corpus_dir, path)
        try:
            size, mtime = _stat(path)
            if source in known and seen_files.get(source) == [size, mtime] and mtime < taken - RACY_NS:
                files[source] = known[source]
                continue
            data = path.read_bytes()
        except OSError:  # gone or unreadable since it was listed: read_corpus would skip it too, so it is not in the corpus
            continue
        files[source] = hashlib.sha256(data).hexdigest()
        hashed += 1
    return Digest(files, hashed)


def _source(corpus_dir: Path, path: Path) -> str:
    return path.relative_to(corpus_dir).as_posix()


def _shown(corpus_dir: Path, path: Path) -> str:
    """The source name, printable and JSON-safe even when the file name is not UTF-8."""
    return _source(corpus_dir, path).encode("utf-8", "backslashreplace").decode("utf-8")


def _stat(path: Path) -> Stat:
    st = path.stat()
    return st.st_size, st.st_mtime_ns

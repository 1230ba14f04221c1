"""Read a corpus folder into Documents, byte-exact, so citations can be checked against the files."""

from __future__ import annotations

import hashlib
from pathlib import Path

from index.errors import CorpusError
from index.types import Document


def corpus_files(corpus_dir: Path) -> list[Path]:
    """Every ``*.txt`` under the folder, recursively, in a stable order."""
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus folder {corpus_dir} does not exist or is not a folder")
    files = sorted(p for p in corpus_dir.rglob("*.txt") if p.is_file())
    if not files:
        raise CorpusError(f"corpus folder {corpus_dir} holds no .txt files")
    return files


def read_document(corpus_dir: Path, path: Path) -> Document:
    """Decode a file as UTF-8 without newline translation, so offsets match the bytes on disk."""
    source = path.relative_to(corpus_dir).as_posix()
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{source} is not valid UTF-8 (byte {exc.start}); convert it to UTF-8") from exc
    return Document(doc_id=source.removesuffix(".txt"), source=source, text=text)


def read_corpus(corpus_dir: Path) -> list[Document]:
    return [read_document(corpus_dir, p) for p in corpus_files(corpus_dir)]


def corpus_digest(corpus_dir: Path) -> dict[str, str]:
    """sha256 of every corpus file, by source name: the manifest's record of what was indexed."""
    return {
        p.relative_to(corpus_dir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in corpus_files(corpus_dir)
    }
